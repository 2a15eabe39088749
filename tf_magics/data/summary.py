"""What a map leaves besides its result: one line per failed row, and the run's summary."""

from __future__ import annotations

from dataclasses import dataclass, field

from tf_magics._public import public
from tf_magics._text import one_line
from tf_magics.cost import format_money

__all__ = ["INTERRUPTED", "MapSummary", "RowError"]

#: The ``error`` of a row the user's interrupt stopped before it finished.
INTERRUPTED = "interrupted"


@public
@dataclass(frozen=True, slots=True)
class RowError:
    """Why one row of a map has no result.

    In a list result, a failed row holds its :class:`RowError` where its value would be; in a
    DataFrame, the ``error`` column holds ``str(row_error)`` (``None`` where the row succeeded).

    Attributes
    ----------
    kind
        The error's class (``"RateLimitError"``, ``"StructuredOutputError"``...), or
        ``"interrupted"`` / ``"not run"`` for a row that never finished.
    message
        What went wrong, in one line.
    """

    kind: str
    message: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}" if self.message else self.kind

    def __bool__(self) -> bool:
        return False  # a failed row is falsy: `[v for v in result if v]` keeps the successes

    @classmethod
    def of(cls, error: BaseException) -> RowError:
        """The row error for an exception (its message in one line, no traceback kept)."""
        return cls(type(error).__name__, one_line(str(error), 500))


@public
@dataclass
class MapSummary:
    """How a map went: rows done and failed, requests, tokens, time.

    Attributes
    ----------
    total
        Rows in the input.
    done, failed
        Rows with a result, and rows that failed (their error recorded).
    unfinished
        Rows that did not finish (interrupted, or not run after a failure with
        ``on_error="raise"``).
    prompts
        Distinct prompts sent (identical prompts are sent once).
    requests
        Attempts on the wire (retries and re-asks included).
    rate_limited
        429 answers received (each retried).
    prompt_tokens, completion_tokens
        Tokens the server reported, over every request.
    elapsed
        Seconds from the first request to the last answer.
    concurrency
        The most requests allowed in flight; ``peak`` the most there were.
    errors
        The first failed rows, in input order (``"row 7: RateLimitError: ..."``, at most five).
    cost
        What the map's requests cost at the model's price (``None``: unknown; see ``priced``).
    currency
        The prices' currency, as shown.
    priced
        Whether costs matter here (a price or a money budget is set): an unknown cost is then
        said, not left out.
    batch
        The map went through the Batch API (``requests`` then counts its lines).
    stopped
        Why the map stopped before its end (the budget), or ``None``.
    notes
        Things worth knowing (a structured-output fallback, columns replaced...).
    """

    total: int = 0
    done: int = 0
    failed: int = 0
    unfinished: int = 0
    prompts: int = 0
    requests: int = 0
    rate_limited: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    elapsed: float = 0.0
    concurrency: int = 0
    peak: int = 0
    errors: list[str] = field(default_factory=list)
    cost: float | None = None
    currency: str = "$"
    priced: bool = False
    batch: bool = False
    stopped: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        """Prompt and completion tokens together."""
        return self.prompt_tokens + self.completion_tokens

    @property
    def rows_per_second(self) -> float | None:
        """Rows finished per second of the run."""
        finished = self.done + self.failed
        return finished / self.elapsed if self.elapsed > 0 and finished else None

    def line(self) -> str:
        """The summary in one line: ``1,000 rows in 6.9 s (145 rows/s): 998 done, 2 failed...``."""
        speed = self.rows_per_second
        parts = [f"{self.done:,} done"]
        if self.failed:
            parts.append(f"{self.failed:,} failed")
        if self.unfinished:
            parts.append(f"{self.unfinished:,} not finished")
        head = f"{self.total:,} row{'s' if self.total != 1 else ''} in {self.elapsed:.1f} s"
        if speed is not None:
            head += f" ({speed:,.1f} rows/s)"
        tail = [f"{self.tokens:,} tokens" if self.tokens else "usage not reported"]
        if self.cost is not None:
            tail.append(format_money(self.cost, self.currency))
        elif self.priced and self.tokens:
            tail.append("cost unknown")
        if self.batch:
            tail.append("Batch API")
        if self.prompts < self.total:
            tail.append(f"{self.prompts:,} distinct prompts")
        if self.rate_limited:
            tail.append(f"{self.rate_limited:,} rate-limited requests retried")
        return f"{head}: {', '.join(parts)} · {' · '.join(tail)}"

    def __str__(self) -> str:
        return self.line()
