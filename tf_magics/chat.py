"""The Python face of tf_magics: :class:`Chat`, usable with or without ``await``.

Everything the ``%%chat`` magic does goes through here, so a script or a test can do the same::

    from tf_magics import Chat

    chat = Chat(system="You are terse.", base_url="http://127.0.0.1:8080/v1", temperature=0)
    print(chat.ask("Name a prime number."))           # blocks until the reply is complete
    reply = await chat.aask("And another one?")        # the same, from async code
    chat.conversation.to_markdown()                    # the whole history

``ask`` runs the request on tf_magics' private event loop and serves the turn's observer (tokens,
tool calls) on the calling thread; ``aask`` runs on the caller's loop. Both return a
:class:`~tf_magics.Reply`. ``context=[df, fig]`` attaches values to the question (summarised by
:mod:`tf_magics.context`); :meth:`Chat.preview` shows the request without sending it, and
:meth:`Chat.compare` sends one question to several models or temperatures at once.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ._public import public
from .attachment import Attachment

# The helpers live with the mixin (which needs them too); their old names stay for this module.
from .chat_context import ContextMixin
from .chat_context import tool_choice_value as _tool_choice
from .chat_context import with_tools as _with_tools
from .client import ModelInfo, RequestOptions
from .client.http import Client
from .conversation import Conversation, Turn
from .data import BatchMethods, MapMethods
from .engine import (
    Bridge,
    DirectBridge,
    TurnLoop,
    TurnObserver,
    local_endpoint,
    observer_for,
    run_blocking,
    start_turn,
)
from .errors import ConfigurationError
from .events import Event
from .reply import Reply
from .schema import ResponseSchema
from .settings import ChatSettings

if TYPE_CHECKING:
    from .tools import ToolRegistry
    from .tools.execute import Confirm

__all__ = ["Chat", "shared_client"]

EventHandler = Callable[[Event], None]

_SHARED_CLIENT: Client | None = None


def shared_client() -> Client:
    """The process-wide client (one connection pool per event loop, reused by every chat)."""
    global _SHARED_CLIENT
    if _SHARED_CLIENT is None:
        _SHARED_CLIENT = Client()
    return _SHARED_CLIENT


@public
class Chat(ContextMixin, MapMethods, BatchMethods):
    """A conversation with an OpenAI-compatible model.

    Parameters
    ----------
    system
        The system prompt (kept at index 0 of the history).
    name
        The conversation's name.
    settings
        A shared :class:`ChatSettings`; by default a new one built from ``**settings``.
    tools
        Callables (or a :class:`ToolRegistry`) the model may call. By default the notebook-wide
        registry that ``@tf_magics.tool`` fills.
    conversation
        Start from an existing conversation instead of an empty one.
    client
        The HTTP client (by default one shared by every chat in the process).
    confirm
        Asked before running a tool registered with ``confirm=True``; with none, such tools are
        declined.
    **settings
        Values for a new :class:`ChatSettings` (``model``, ``temperature``, ``base_url``,
        ``api_key``...).
    """

    def __init__(
        self,
        system: str | None = None,
        *,
        name: str = "default",
        settings: ChatSettings | None = None,
        tools: ToolRegistry | Iterable[Callable[..., Any]] | None = None,
        conversation: Conversation | None = None,
        client: Client | None = None,
        confirm: Confirm | None = None,
        **settings_values: Any,
    ) -> None:
        if settings is not None and settings_values:
            raise ConfigurationError(
                "Pass either settings=... or individual settings, not both.",
                hint="Change the shared object instead, e.g. settings.temperature = 0.2.",
            )
        self.settings = settings if settings is not None else ChatSettings(**settings_values)
        self.conversation = conversation if conversation is not None else Conversation(name=name)
        if system is not None:
            self.conversation.system = system
        self.tools = _registry(tools)
        self.client = client if client is not None else shared_client()
        self.confirm = confirm
        self.last_reply: Reply | None = None

    def __repr__(self) -> str:
        return f"<Chat {self.conversation.name!r}: {len(self.conversation.turns())} turns>"

    # -- conveniences --

    @property
    def system(self) -> str | None:
        """The system prompt (index 0 of the history); assign ``None`` to remove it."""
        return self.conversation.system

    @system.setter
    def system(self, text: str | None) -> None:
        self.conversation.system = text

    @property
    def history(self) -> list[dict[str, Any]]:
        """The messages exactly as the next request will send them."""
        return self.conversation.to_wire()

    def undo(self) -> Turn | None:
        """Forget the last turn (question and answer)."""
        return self.conversation.undo()

    def reset(self, *, keep_system: bool = True) -> None:
        """Start the conversation afresh (keeping the system prompt unless told otherwise)."""
        self.conversation.clear(keep_system=keep_system)
        self.last_reply = None

    def fork(self, name: str | None = None) -> Chat:
        """A new chat with a copy of this history and the same settings, tools and client."""
        return Chat(
            settings=self.settings,
            tools=self.tools,
            conversation=self.conversation.fork(name),
            client=self.client,
            confirm=self.confirm,
        )

    # -- talking --

    def ask(
        self,
        text: str,
        *,
        observer: TurnObserver | None = None,
        on_event: EventHandler | None = None,
        history: bool = True,
        tools: Iterable[Callable[..., Any]] | None = None,
        tool_choice: Any = None,
        context: Any = None,
        schema: Any = None,
        **overrides: Any,
    ) -> Reply:
        """Send ``text`` as the next user message and wait for the whole reply.

        Parameters
        ----------
        text
            The user message, sent verbatim.
        observer
            Follows the turn on this thread: its events, idle ticks, and the tool functions
            to run (a live view; see :class:`~tf_magics.engine.TurnObserver`).
        on_event
            Or simply a callback for every event (tokens, tool calls, retries).
        history
            ``False`` for a one-off question: the history is neither sent nor changed (the system
            prompt still applies).
        tools
            Extra callables offered to the model for this call only.
        tool_choice
            ``"auto"``, ``"none"``, ``"required"``, a tool name, or an OpenAI ``tool_choice``
            object; applies to the first request of the turn.
        context
            Values to attach: values, ``(name, value)`` pairs or a dict (:mod:`tf_magics.context`).
        schema
            A dataclass, TypedDict or pydantic model, ``list[...]`` of one, or a JSON-schema
            ``dict``: the answer must be JSON that fits it, and ``reply.value`` is the object.
        **overrides
            Settings for this call only (``temperature=0``, ``model=...``...).

        Returns
        -------
        Reply
            The answer, with usage, timing and tool results.

        Raises
        ------
        tf_magics.errors.TFMagicsError
            On any failure; API errors carry the partial ``reply``. Ctrl-C raises
            :class:`~tf_magics.errors.StreamInterrupted` after keeping the partial reply.
        """
        watcher = observer_for(observer, on_event)
        options, question = self._question(text, context, overrides, watcher)
        question["schema"] = _response_schema(schema)
        holder: dict[str, TurnLoop] = {}

        def make(bridge: Bridge) -> Coroutine[Any, Any, Reply]:
            return self._turn(text, bridge, options, history, tools, tool_choice, holder, question)

        return self._blocking(make, watcher, holder)

    async def aask(
        self,
        text: str,
        *,
        observer: TurnObserver | None = None,
        on_event: EventHandler | None = None,
        history: bool = True,
        tools: Iterable[Callable[..., Any]] | None = None,
        tool_choice: Any = None,
        context: Any = None,
        schema: Any = None,
        **overrides: Any,
    ) -> Reply:
        """Async version of :meth:`ask` (same parameters), for ``await`` in a cell or a script."""
        watcher = observer_for(observer, on_event)
        options, question = self._question(text, context, overrides, watcher)
        question["schema"] = _response_schema(schema)
        bridge = DirectBridge(watcher)
        return await self._turn(text, bridge, options, history, tools, tool_choice, {}, question)

    async def send(self, text: str, **kwargs: Any) -> Reply:
        """Deprecated name of :meth:`aask` (the ``a`` prefix marks the async methods)."""
        warnings.warn(
            "Chat.send is deprecated: use `await chat.aask(...)`.", DeprecationWarning, stacklevel=2
        )
        return await self.aask(text, **kwargs)

    def retry(self, **kwargs: Any) -> Reply:
        """Regenerate the last reply: forget the last turn and send its question again.

        Takes the keyword arguments of :meth:`ask`; if the new attempt fails, the old turn is
        put back. The question's attachments are sent again as they were.
        """
        turn = self._pop_last_turn()
        try:
            return self.ask(**_resend(turn), **kwargs)
        except BaseException:
            _restore(self.conversation, turn)
            raise

    async def aretry(self, **kwargs: Any) -> Reply:
        """Async version of :meth:`retry`."""
        turn = self._pop_last_turn()
        try:
            return await self.aask(**_resend(turn), **kwargs)
        except BaseException:
            _restore(self.conversation, turn)
            raise

    def models(self, **overrides: Any) -> list[ModelInfo]:
        """The models the server offers (``GET /models``); empty when it does not say."""
        options = self._options(overrides)
        return run_blocking(lambda bridge: self._models(bridge, options), observer_for(None, None))

    async def amodels(self, **overrides: Any) -> list[ModelInfo]:
        """Async version of :meth:`models`."""
        bridge = DirectBridge(observer_for(None, None))
        return await self._models(bridge, self._options(overrides))

    # -- internals --

    def _pop_last_turn(self) -> Turn:
        turns = self.conversation.turns()
        if not turns or turns[-1].user is None:
            raise ConfigurationError("There is no previous question to retry.")
        self.settings.resolve()  # a bad setting must fail before the old answer is dropped
        turn = self.conversation.undo()
        assert turn is not None
        return turn

    def _options(self, overrides: dict[str, Any]) -> RequestOptions:
        # Validate before anything is sent or changed (a bad flag must not touch the history).
        return self.settings.resolve(**overrides)

    async def _models(self, bridge: Bridge, options: RequestOptions) -> list[ModelInfo]:
        if options.hook is not None and options.hook.offline:
            raise ConfigurationError(
                "Replay mode never contacts a server, so it cannot list the models.",
                hint="Use %chat set cache=auto (or off) to ask the server; TF_MAGICS_CACHE wins "
                "if it is set.",
            )
        options = await local_endpoint(bridge, options)
        models = await self.client.list_models(options)
        self.client.models_cache[options.base_url or ""] = models
        return models

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
    ) -> Reply:
        conversation = self.conversation
        if not history:
            conversation = Conversation(self.conversation.system, name=self.conversation.name)
        with conversation.turn():  # one turn at a time: a second is refused, not interleaved
            try:
                return await start_turn(
                    text,
                    client=self.client,
                    conversation=conversation,
                    settings=self.settings,
                    options=options,
                    bridge=bridge,
                    registry=_with_tools(self.tools, tools),
                    tool_choice=_tool_choice(tool_choice),
                    confirm=self.confirm,
                    holder=holder,
                    **(question or {}),  # its attachments, the secret scanner, its schema
                )
            finally:
                if "turn" in holder:
                    self.last_reply = holder["turn"].reply

    # -- closing --

    def close(self) -> None:
        """Close the chat's connections (``with Chat(...) as chat:`` does it at the end)."""
        run_blocking(lambda _bridge: self.client.aclose(), observer_for(None, None))

    async def aclose(self) -> None:
        """Close the connections of the running event loop (``async with``)."""
        await self.client.aclose()

    def __enter__(self) -> Chat:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Chat:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _restore(conversation: Conversation, turn: Turn) -> None:
    """Put back a turn that a failed retry was meant to replace (nothing is lost)."""
    turns = conversation.turns()
    if turns and turns[-1].user is not None and turns[-1].user is not turn.user:
        # The failed retry left a partial answer of its own: keep both, oldest first.
        kept = conversation.undo()
        conversation.extend(turn.messages)
        if kept is not None:
            conversation.extend(kept.messages)
        return
    conversation.extend(turn.messages)


def _response_schema(schema: Any) -> ResponseSchema | None:
    """The schema of a structured reply, checked before anything is sent."""
    return ResponseSchema.of(schema) if schema is not None else None


def _registry(tools: Any) -> ToolRegistry:
    from .tools import ToolRegistry, default_registry

    if tools is None:
        return default_registry()
    if isinstance(tools, ToolRegistry):
        return tools
    registry = ToolRegistry()
    for function in tools:
        registry.add(function)
    return registry


def _resend(turn: Turn) -> dict[str, Any]:
    """A retry's question, with its attachments exactly as they were sent."""
    if turn.user is None:
        return {"text": ""}
    parts = turn.user.parts
    return {"text": turn.user.content, "context": Attachment.from_parts(parts) if parts else None}
