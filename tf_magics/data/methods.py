"""``Chat.map`` and ``Chat.amap``: one prompt template over many rows, as methods of a chat.

:class:`~tf_magics.Chat` takes these methods from :class:`MapMethods`, so the whole of ``map``
lives in this package; the chat only lends its settings, its system prompt and its client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tf_magics.engine import DirectBridge, observer_for, run_blocking

from .plan import MapPlan, plan_map, run_plan
from .summary import MapSummary

if TYPE_CHECKING:
    from collections.abc import Callable

    from tf_magics.client.http import Client
    from tf_magics.conversation import Conversation
    from tf_magics.engine import TurnObserver
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
    """

    settings: ChatSettings
    conversation: Conversation
    client: Client
    #: The summary of the chat's last map (rows done and failed, tokens, time), or ``None``.
    last_map: MapSummary | None = None

    def map(
        self,
        template: str,
        data: Any,
        *,
        schema: Any = None,
        concurrency: int = 8,
        requests_per_minute: float | None = None,
        on_error: str = "record",
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
        observer, on_event
            Follow the progress (:class:`~tf_magics.events.MapProgress`) and the notices.
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
            With ``on_error="raise"``, at the first failed row (``error.result`` likewise).
        """
        options = _plan_options(schema, concurrency, requests_per_minute)
        plan = plan_map(template, data, on_error=on_error, **options)
        return self._run_map(plan, observer_for(observer, on_event), overrides)

    async def amap(
        self,
        template: str,
        data: Any,
        *,
        schema: Any = None,
        concurrency: int = 8,
        requests_per_minute: float | None = None,
        on_error: str = "record",
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
            result, _summary = await run_plan(
                plan,
                client=self.client,
                options=resolved,
                system=self.conversation.system,
                bridge=bridge,
                interrupt_error=False,
            )
        finally:
            if plan.outcome is not None:
                self.last_map = plan.outcome[1]
        return result

    def _run_map(self, plan: MapPlan, observer: TurnObserver, overrides: dict[str, Any]) -> Any:
        options = self.settings.resolve(**overrides)
        system = self.conversation.system
        try:
            result, _summary = run_blocking(
                lambda bridge: run_plan(
                    plan, client=self.client, options=options, system=system, bridge=bridge
                ),
                observer,
            )
        finally:
            if plan.outcome is not None:
                self.last_map = plan.outcome[1]
        return result


def _plan_options(
    schema: Any, concurrency: int, requests_per_minute: float | None
) -> dict[str, Any]:
    return {
        "schema": schema,
        "concurrency": concurrency,
        "requests_per_minute": requests_per_minute,
    }
