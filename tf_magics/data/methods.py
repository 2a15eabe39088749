"""``Chat.map`` and ``Chat.amap``: one prompt template over many rows, as methods of a chat.

:class:`~tf_magics.Chat` takes these methods from :class:`MapMethods`, so the whole of ``map``
lives in this package; the chat only lends its settings, its system prompt and its client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tf_magics.engine import DirectBridge, observer_for, run_blocking

from .batch_methods import batch_options
from .plan import MapPlan, plan_map, run_plan
from .spend import SpendCheck
from .summary import MapSummary

if TYPE_CHECKING:
    from collections.abc import Callable

    from tf_magics.client import RequestOptions
    from tf_magics.client.http import Client
    from tf_magics.conversation import Conversation
    from tf_magics.engine import Bridge, TurnObserver
    from tf_magics.events import Event
    from tf_magics.settings import ChatSettings

__all__ = ["MapMethods"]


class MapMethods:
    """The ``map`` methods of :class:`~tf_magics.Chat` (a mixin: it uses the chat's parts).

    Each row is one independent request: the conversation's system prompt and the settings
    apply, the history is neither sent nor changed, no tools are offered, and rows are requested
    without streaming. Identical prompts are sent once. 429 and 5xx answers are retried per row
    by the client's policy (``max_retries``, ``Retry-After`` honoured) while the number of
    requests in flight adapts; a row whose retries run out fails with its error recorded, and
    the others go on. ``chat.last_map`` holds the last run's :class:`~tf_magics.data.MapSummary`.

    Before a map of ``confirm_map_rows`` rows or more (a setting, 1,000 by default; 0 never
    asks), its tokens and cost are estimated and :attr:`confirm_spend` is asked; without one (a
    script, a notebook run headless) such a map is declined with how to allow it. Every request
    counts against the spending cap, and a map stops when the next would not fit.
    """

    settings: ChatSettings
    conversation: Conversation
    client: Client
    #: The summary of the chat's last map (rows done and failed, tokens, time), or ``None``.
    last_map: MapSummary | None = None
    #: Asked before a map of ``confirm_map_rows`` rows or more, with its estimate
    #: (:class:`~tf_magics.cost.MapEstimate`): ``True`` goes on, ``False`` stops, ``None``
    #: means no one could answer. ``None`` here (the default outside a notebook): such maps
    #: are declined, saying how to allow them.
    confirm_spend: SpendCheck | None = None

    def map(
        self,
        template: str,
        data: Any,
        *,
        schema: Any = None,
        concurrency: int = 8,
        requests_per_minute: float | None = None,
        on_error: str = "record",
        batch: bool = False,
        observer: TurnObserver | None = None,
        on_event: Callable[[Event], None] | None = None,
        **overrides: Any,
    ) -> Any:
        """Ask the same question of every row of ``data``, many rows at once.

        Parameters
        ----------
        template
            The prompt, ``{column}`` filled from each row (``{{``, ``}}`` for braces). For a
            list of strings the row is ``{text}``, or follows a template without placeholders.
        data
            A pandas DataFrame, a list of dicts or a list of strings.
        schema
            A dataclass, TypedDict or pydantic model, ``list[...]`` of one, or a JSON-schema
            ``dict``: each row's reply becomes that object (``None``: the reply's text).
        concurrency
            The most requests in flight (1 to 256), lowered while the server answers 429.
        requests_per_minute
            Start requests at most this often (``None``: no cap).
        on_error
            ``"record"`` (a failed row gets its error, the others go on) or ``"raise"``.
        batch
            Send the rows through the provider's Batch API (about half the price, within a
            day) and wait: the same result. Interrupted, the job goes on (see :meth:`collect`).
        observer, on_event
            Follow the progress (``MapProgress``, ``BatchProgress``) and the notices.
        **overrides
            Settings for these requests only (``temperature=0``, ``max_tokens=20``...).

        Returns
        -------
        pandas.DataFrame or list
            For a DataFrame: a copy (same index) with the result column(s) -- one per field of
            an object schema, ``value`` for another schema, ``reply`` for text -- and ``error``
            (``None`` where the row succeeded). For a list: the values in input order, a failed
            row holding a falsy :class:`~tf_magics.data.RowError`.

        Raises
        ------
        tf_magics.errors.MapInterrupted
            On Ctrl-C, once every request is stopped; ``error.result`` holds the rows done.
        tf_magics.errors.MapError
            With ``on_error="raise"``, at the first failed row (``error.result`` likewise); at
            the spending cap (:class:`~tf_magics.errors.MapBudgetExceeded`); or, before anything
            is sent, when a large map is not confirmed (see :attr:`confirm_spend`).
        """
        options = _plan_options(schema, concurrency, requests_per_minute)
        plan = plan_map(template, data, on_error=on_error, **options)
        return self._run_map(plan, observer_for(observer, on_event), overrides, batch=batch)

    async def amap(
        self,
        template: str,
        data: Any,
        *,
        schema: Any = None,
        concurrency: int = 8,
        requests_per_minute: float | None = None,
        on_error: str = "record",
        batch: bool = False,
        observer: TurnObserver | None = None,
        on_event: Callable[[Event], None] | None = None,
        **overrides: Any,
    ) -> Any:
        """Async version of :meth:`map` (same parameters), on the caller's event loop.

        Cancelling the task stops every request and re-raises the cancellation;
        ``chat.last_map`` then says how far it went.
        """
        options = _plan_options(schema, concurrency, requests_per_minute)
        plan = plan_map(template, data, on_error=on_error, **options)
        resolved = self.settings.resolve(**overrides)
        bridge = DirectBridge(observer_for(observer, on_event))
        try:
            result, _summary = await self._start(plan, resolved, bridge, batch, interrupt=False)
        finally:
            if plan.outcome is not None:
                self.last_map = plan.outcome[1]
        return result

    def _run_map(
        self, plan: MapPlan, observer: TurnObserver, overrides: dict[str, Any], *, batch: bool
    ) -> Any:
        options = self.settings.resolve(**overrides)
        try:
            result, _summary = run_blocking(
                lambda bridge: self._start(plan, options, bridge, batch, interrupt=True),
                observer,
            )
        finally:
            if plan.outcome is not None:
                self.last_map = plan.outcome[1]
        return result

    async def _start(
        self,
        plan: MapPlan,
        options: RequestOptions,
        bridge: Bridge,
        batch: bool,
        *,
        interrupt: bool,
    ) -> tuple[Any, MapSummary]:
        """Run the plan on this loop, interactively or as a batch job."""
        system = self.conversation.system
        check, threshold = self.confirm_spend, self.settings.confirm_map_rows
        if not batch:
            return await run_plan(
                plan,
                client=self.client,
                options=options,
                system=system,
                bridge=bridge,
                interrupt_error=interrupt,
                check=check,
                threshold=threshold,
            )
        from .batch_run import run_batch_plan  # the batch machinery loads when first used

        plan.outcome = await run_batch_plan(
            plan,
            client=self.client,
            options=options,
            system=system,
            bridge=bridge,
            batch=batch_options(self.settings),
            check=check,
            threshold=threshold,
            interrupt_error=interrupt,
        )
        return plan.outcome


def _plan_options(
    schema: Any, concurrency: int, requests_per_minute: float | None
) -> dict[str, Any]:
    return {
        "schema": schema,
        "concurrency": concurrency,
        "requests_per_minute": requests_per_minute,
    }
