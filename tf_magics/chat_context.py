"""What :class:`~tf_magics.Chat` does around a question: attachments, secrets, previews, compare.

A mixin of :class:`~tf_magics.Chat`, kept apart so the class stays readable: turning ``context=``
values into attachments (:mod:`tf_magics.context`), the secret scanner every request goes through,
:meth:`ContextMixin.preview` (the request, not sent) and :meth:`ContextMixin.compare` (one
question to several models or temperatures at once).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._secrets import SecretScanner
from .attachment import Attachment
from .engine import (
    Bridge,
    DirectBridge,
    TurnLoop,
    TurnObserver,
    interrupted_error,
    observer_for,
    run_blocking,
)
from .engine.compare import MAX_VARIANTS, Comparison, run_variants, variant_label
from .engine.preview import build_preview
from .errors import ConfigurationError, StreamInterrupted
from .events import Event, Notice
from .preview import Preview

if TYPE_CHECKING:
    from .client import RequestOptions
    from .client.http import Client
    from .context import CodeCells
    from .conversation import Conversation
    from .reply import Reply
    from .settings import ChatSettings
    from .tools import ToolRegistry
    from .tools.execute import Confirm

__all__ = ["ContextMixin", "check_text", "tool_choice_value", "with_tools"]


def with_tools(registry: ToolRegistry, extra: Iterable[Callable[..., Any]] | None) -> ToolRegistry:
    """The chat's tools, plus functions offered for one call only."""
    if extra is None:
        return registry
    combined = registry.copy()
    for function in extra:
        combined.add(function)
    return combined


def check_text(text: Any) -> None:
    """Refuse a question that is not a string, in one line.

    Raises
    ------
    ConfigurationError
        If ``text`` is not a ``str``.
    """
    if not isinstance(text, str):
        raise ConfigurationError(
            f"The message must be text (a str), not {type(text).__name__}.",
            hint="Pass the question as a string, e.g. chat.ask('What is a p-value?').",
        )


def tool_choice_value(choice: Any) -> Any:
    """Accept a bare tool name as shorthand for forcing that tool."""
    if isinstance(choice, str) and choice not in ("auto", "none", "required"):
        return {"type": "function", "function": {"name": choice}}
    return choice


class ContextMixin:
    """Attachments, secret masking, previews and comparisons for :class:`~tf_magics.Chat`.

    Attributes
    ----------
    code_cells
        Names notebook cells in the tracebacks of attached exceptions (set by the notebook).
    last_comparison
        The last :class:`~tf_magics.Comparison` made with :meth:`compare` (kept after an
        interrupt too, with what had arrived).
    """

    code_cells: CodeCells | None = None
    last_comparison: Comparison | None = None

    if TYPE_CHECKING:
        settings: ChatSettings
        conversation: Conversation
        client: Client
        tools: ToolRegistry
        confirm: Confirm | None
        last_reply: Reply | None

        def _options(self, overrides: dict[str, Any]) -> RequestOptions: ...

        async def _turn(
            self,
            text: str,
            bridge: Bridge,
            options: RequestOptions,
            history: bool,
            tools: Iterable[Callable[..., Any]] | None,
            tool_choice: Any,
            holder: dict[str, TurnLoop],
            question: Mapping[str, Any] | None = None,
        ) -> Reply: ...

    # -- what goes with a question --

    def _blocking(
        self,
        make: Callable[[Bridge], Coroutine[Any, Any, Reply]],
        observer: TurnObserver,
        holder: dict[str, TurnLoop],
    ) -> Reply:
        """Run a turn from synchronous code; after Ctrl-C, keep and report what arrived."""
        try:
            return run_blocking(make, observer)
        except KeyboardInterrupt:
            turn = holder.get("turn")
            if turn is None:
                raise
            self.last_reply = turn.reply
            raise interrupted_error(turn) from None

    def _scanner(self, options: RequestOptions) -> SecretScanner:
        """Masks the configured key and the environment's secrets in everything sent."""
        keys = [(options.key_source or "API key", key) for key in options.secrets()]
        if self.settings.api_key:
            keys.append(("API key", self.settings.api_key))
        return SecretScanner.from_environment(os.environ, keys=keys)

    def _question(
        self,
        text: str,
        context: Any,
        overrides: dict[str, Any],
        observer: TurnObserver | None = None,
    ) -> tuple[RequestOptions, dict[str, Any]]:
        """A question's options (checked first), its attachments and the secret scanner.

        Summarising a big value takes a moment: the observer is told first.
        """
        check_text(text)
        options = self._options(overrides)
        scanner = self._scanner(options)
        if context is not None and observer is not None:
            from .context import context_items

            names = ", ".join(name for name, _ in context_items(context) if name)
            observer.handle(Notice(f"Summarising {names or 'the attached values'}…", "progress"))
        attachments = self._attachments(context, overrides, scanner)
        return options, {"attachments": attachments, "scanner": scanner}

    def _attachments(
        self, context: Any, overrides: Mapping[str, Any], scanner: SecretScanner
    ) -> list[Attachment]:
        """The ``context`` values summarised, within ``context_max_tokens`` each."""
        if context is None:
            return []
        from .context import attach

        budget = overrides.get("context_max_tokens") or self.settings.context_max_tokens
        return attach(context, max_tokens=budget, scanner=scanner, code_cells=self.code_cells)

    # -- a dry run --

    def preview(
        self,
        text: str,
        *,
        history: bool = True,
        tools: Iterable[Callable[..., Any]] | None = None,
        tool_choice: Any = None,
        context: Any = None,
        **overrides: Any,
    ) -> Preview:
        """The request :meth:`ask` would send for ``text``, without sending it.

        Takes the parameters of :meth:`ask`. Nothing is sent (not even ``GET /models``), no
        server is started, and the history is not changed.

        Returns
        -------
        Preview
            The exact JSON body, where it would go, which key would go with it, an estimate
            of its size (and cost, once prices are known), and notes.
        """
        check_text(text)
        options = self._options(overrides)
        scanner = self._scanner(options)
        return build_preview(
            text,
            client=self.client,
            conversation=self.conversation,
            history=history,
            options=options,
            registry=with_tools(self.tools, tools),
            tool_choice=tool_choice_value(tool_choice),
            history_limit=(self.settings.history_max_turns, self.settings.history_max_tokens),
            attachments=self._attachments(context, overrides, scanner),
            scanner=scanner,
        )

    # -- comparisons --

    def compare(
        self,
        text: str,
        variants: Sequence[Mapping[str, Any]],
        *,
        observer: TurnObserver | None = None,
        on_event: Callable[[Event], None] | None = None,
        history: bool = True,
        tools: Iterable[Callable[..., Any]] | None = None,
        tool_choice: Any = None,
        context: Any = None,
        **overrides: Any,
    ) -> Comparison:
        """Send ``text`` to several variants at once; none of the replies enters the history.

        Parameters
        ----------
        text
            The question, the same for every variant.
        variants
            2 to 8 dicts of settings, one per variant: ``[{"temperature": 0}, {"model": "b"}]``.
        observer, on_event
            Follow the variants: each event comes in a :class:`~tf_magics.VariantEvent`.
        history, tools, tool_choice, context, **overrides
            As for :meth:`ask` (the overrides apply to every variant).

        Returns
        -------
        Comparison
            Each variant's reply or error; ``comparison.keep(n)`` puts variant ``n`` (from 1)
            into the history.

        Raises
        ------
        tf_magics.errors.StreamInterrupted
            After Ctrl-C: every variant was stopped; :attr:`last_comparison` holds what arrived.
        """
        plans, scanner, attachments, comparison = self._prepare_comparison(
            text, variants, history, context, overrides
        )
        holders: list[dict[str, TurnLoop]] = [{} for _ in plans]

        def make(bridge: Bridge) -> Coroutine[Any, Any, Comparison]:
            return self._compare(
                comparison, plans, bridge, tools, tool_choice, holders, attachments, scanner
            )

        with self.conversation.turn():  # no other turn may change the history meanwhile
            try:
                run_blocking(make, observer_for(observer, on_event))
            except KeyboardInterrupt:
                comparison.finish_interrupted(holders)
                self.last_comparison = comparison
                raise StreamInterrupted(
                    "Interrupted: every variant was stopped; what had arrived is shown, and none "
                    "was added to the history."
                ) from None
        self.last_comparison = comparison
        return comparison

    async def acompare(
        self,
        text: str,
        variants: Sequence[Mapping[str, Any]],
        *,
        observer: TurnObserver | None = None,
        on_event: Callable[[Event], None] | None = None,
        history: bool = True,
        tools: Iterable[Callable[..., Any]] | None = None,
        tool_choice: Any = None,
        context: Any = None,
        **overrides: Any,
    ) -> Comparison:
        """Async version of :meth:`compare` (same parameters)."""
        plans, scanner, attachments, comparison = self._prepare_comparison(
            text, variants, history, context, overrides
        )
        holders: list[dict[str, TurnLoop]] = [{} for _ in plans]
        bridge = DirectBridge(observer_for(observer, on_event))
        with self.conversation.turn():
            await self._compare(
                comparison, plans, bridge, tools, tool_choice, holders, attachments, scanner
            )
        self.last_comparison = comparison
        return comparison

    def _prepare_comparison(
        self,
        text: str,
        variants: Sequence[Mapping[str, Any]],
        history: bool,
        context: Any,
        overrides: Mapping[str, Any],
    ) -> tuple[
        list[tuple[str, dict[str, Any], RequestOptions]],
        SecretScanner,
        list[Attachment],
        Comparison,
    ]:
        from .engine.compare import Variant

        check_text(text)
        plans = _variants(self._options, variants, overrides)
        scanner = self._scanner(plans[0][2])
        attachments = self._attachments(context, overrides, scanner)
        chosen = [Variant(label, merged) for label, merged, _ in plans]
        return plans, scanner, attachments, Comparison(text, chosen, self.conversation, history)

    async def _compare(
        self,
        comparison: Comparison,
        plans: list[tuple[str, dict[str, Any], RequestOptions]],
        bridge: Bridge,
        tools: Iterable[Callable[..., Any]] | None,
        tool_choice: Any,
        holders: list[dict[str, TurnLoop]],
        attachments: list[Attachment],
        scanner: SecretScanner,
    ) -> Comparison:
        from .engine import start_turn

        async def turn(index: int, tagged: Bridge, fork: Conversation) -> Reply:
            with fork.turn():
                return await start_turn(
                    comparison.question,
                    client=self.client,
                    conversation=fork,
                    settings=self.settings,
                    options=plans[index][2],
                    bridge=tagged,
                    registry=with_tools(self.tools, tools),
                    tool_choice=tool_choice_value(tool_choice),
                    confirm=self.confirm,
                    holder=holders[index],
                    attachments=attachments,
                    scanner=scanner,
                )

        try:
            return await run_variants(comparison, bridge, turn)
        finally:
            # A variant that failed still shows what its turn kept.
            for variant, holder in zip(comparison.variants, holders, strict=True):
                if variant.reply is None and "turn" in holder:
                    variant.reply = holder["turn"].reply


def _variants(
    resolve: Callable[[dict[str, Any]], RequestOptions],
    variants: Sequence[Mapping[str, Any]],
    overrides: Mapping[str, Any],
) -> list[tuple[str, dict[str, Any], RequestOptions]]:
    """Each variant's label, settings and options, all checked before anything is sent."""
    if isinstance(variants, Mapping) or not 2 <= len(variants) <= MAX_VARIANTS:
        raise ConfigurationError(
            f"A comparison needs 2 to {MAX_VARIANTS} variants (a list of settings, e.g. "
            "[{'temperature': 0}, {'temperature': 1}]).",
        )
    varied = list(dict.fromkeys(name for variant in variants for name in variant))
    plans = []
    for variant in variants:
        if not isinstance(variant, Mapping):
            raise ConfigurationError(
                f"Each variant is a dict of settings, not {type(variant).__name__}."
            )
        merged = {**overrides, **variant}
        plans.append((variant_label(merged, varied), merged, resolve(merged)))
    return plans
