"""Running one tool call the model made: look it up, decode, validate, confirm, run.

Running a call (:func:`run_tool_call`) never raises for anything the model or the tool did: an
unknown tool, arguments that are not JSON, arguments that do not fit the schema, an exception in the
tool and a declined confirmation each become a :class:`ToolResult` with an ``"error"`` or
``"declined"`` status whose text goes back to the model so it can recover. Only
``KeyboardInterrupt`` and cancellation propagate.

Sync tools run through an injected ``call_sync`` (e.g. on the kernel's main thread); async
tools are awaited on the event loop. The turn that asked for the call reports it to the user.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tf_magics._text import clean_text, exception_text, truncate
from tf_magics.errors import ToolArgumentError
from tf_magics.types import ToolCall, ToolResult

from .arguments import validate_arguments
from .serialize import DEFAULT_MAX_RESULT_CHARS, cap_text, join_notes, serialize_result

if TYPE_CHECKING:
    from .registry import Tool, ToolRegistry

__all__ = ["CallSync", "Confirm", "run_tool_call"]

#: Runs a zero-argument sync callable where it must run (e.g. the kernel's main thread).
CallSync = Callable[[Callable[[], Any]], Awaitable[Any]]
#: Asks the user whether a ``confirm=True`` tool may run with these (decoded JSON) arguments;
#: ``None`` means no one could answer (the call is declined with a note on how to allow it).
Confirm = Callable[["Tool", dict[str, Any]], "bool | Awaitable[bool | None] | None"]

_EXCERPT_CHARS = 200


@dataclass(frozen=True, slots=True)
class _Ready:
    """A call that passed every check and may run."""

    tool: Tool
    call: ToolCall
    arguments: dict[str, Any]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _CallExecution:
    """What running a call needs besides the call itself."""

    registry: ToolRegistry
    call_sync: CallSync
    confirm: Confirm | None
    max_result_chars: int
    timeout: float | None = None

    async def prepare(self, call: ToolCall) -> _Ready | ToolResult:
        """Look the tool up, decode and validate the arguments, ask for confirmation."""
        decoded = _decode_arguments(call)
        found = self.registry.get(call.name)
        if found is None or not found.enabled:
            available = ", ".join(t.name for t in self.registry.enabled()) or "(none)"
            if found is not None:
                text = f"Error: the tool {call.name!r} is switched off; do not call it."
            else:
                text = f"Error: unknown tool {call.name!r}."
            return _error(call, f"{text} Available tools: {available}.")
        if isinstance(decoded, str):
            return _error(
                call,
                f"Error: the arguments for {call.name!r} are not valid JSON ({decoded}); send "
                f"them as one JSON object. Received: {_excerpt(call.arguments)}",
            )
        notes: list[str] = []
        try:
            arguments = validate_arguments(found.fields, decoded, notes=notes)
        except ToolArgumentError as exc:
            return _error(
                call,
                f"Error: invalid arguments for {call.name!r}: {exc}. "
                f"Parameters: {_parameter_summary(found)}.",
            )
        if found.confirm:
            declined = await self._ask(found, call, decoded)
            if declined is not None:
                return declined
        return _Ready(found, call, arguments, notes)

    async def _ask(self, found: Tool, call: ToolCall, decoded: dict[str, Any]) -> ToolResult | None:
        """``None`` when the user allows the call, else the result that says why not."""
        answer: bool | None = None
        if self.confirm is not None:
            try:
                asked = self.confirm(found, decoded)
                answer = await asked if inspect.isawaitable(asked) else asked
            except Exception as exc:
                text = f"Error: could not ask the user to confirm: {exception_text(exc)}"
                return _error(call, text)
        if answer is None:
            # No callback, or it could not reach anyone (a notebook run headless).
            return ToolResult(
                call,
                f"Declined: {call.name!r} needs the user's confirmation and no one could answer "
                "here, so it was not run. To allow it, run the cell where you can answer, set "
                "the chat's confirm callback to approve (chat.confirm = lambda tool, args: True), "
                "or register the tool with confirm=False.",
                status="declined",
            )
        if answer:
            return None
        return ToolResult(
            call, f"Declined by the user: {call.name!r} was not run.", status="declined"
        )

    async def execute(self, outcome: _Ready | ToolResult) -> ToolResult:
        """Run a ready call (a result passes through)."""
        return outcome if isinstance(outcome, ToolResult) else await self._run(outcome)

    async def _run(self, ready: _Ready) -> ToolResult:
        start = time.perf_counter()
        try:
            bound = functools.partial(ready.tool.function, **ready.arguments)
            value = bound() if ready.tool.is_async else await self.call_sync(bound)
            if inspect.isawaitable(value):
                # Only awaitables can be stopped; a sync function runs in the notebook until
                # it returns (or the interrupt button stops the whole turn).
                value = await asyncio.wait_for(value, self.timeout)
        except asyncio.TimeoutError:
            return ToolResult(
                ready.call,
                f"Error: {ready.call.name!r} did not finish within {self.timeout:g} s "
                "(tool_timeout) and was stopped.",
                status="error",
                duration=time.perf_counter() - start,
                note=join_notes(ready.notes),
            )
        except Exception as exc:
            text, note = cap_text(
                clean_text(f"Error: {exception_text(exc)}"), self.max_result_chars
            )
            return ToolResult(
                ready.call,
                text,
                status="error",
                duration=time.perf_counter() - start,
                value=exc,
                note=join_notes([*ready.notes, note]),
            )
        duration = time.perf_counter() - start
        content, note = serialize_result(value, self.max_result_chars)
        return ToolResult(
            ready.call,
            content,
            duration=duration,
            value=value,
            note=join_notes([*ready.notes, note]),
        )


def _decode_arguments(call: ToolCall) -> dict[str, Any] | str:
    """The decoded arguments, or why they cannot be decoded."""
    if call.arguments.strip() == "null":
        return {}
    try:
        return call.parsed_arguments()
    except ValueError as exc:
        return str(exc)


def _error(call: ToolCall, text: str) -> ToolResult:
    return ToolResult(call, text, status="error")


def _parameter_summary(found: Tool) -> str:
    properties = found.schema.get("properties", {})
    if not properties:
        return "(none)"
    required = set(found.schema.get("required", []))
    parts = []
    for name, schema in properties.items():
        kind = schema.get("type", "any") if isinstance(schema, dict) else "any"
        kind = " or ".join(kind) if isinstance(kind, list) else kind
        parts.append(f"{name} ({kind}{', required' if name in required else ''})")
    return ", ".join(parts)


def _excerpt(text: str) -> str:
    """The start of a raw text, marked when cut."""
    return truncate(text, _EXCERPT_CHARS, count=True)


async def run_tool_call(
    registry: ToolRegistry,
    call: ToolCall,
    *,
    call_sync: CallSync,
    confirm: Confirm | None = None,
    max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
    timeout: float | None = None,
) -> ToolResult:
    """Run one tool call and describe what happened.

    Parameters
    ----------
    registry
        The tools that may run; any other name is an error result.
    call
        The call as the model sent it.
    call_sync
        Runs a zero-argument sync callable where sync tools must run and returns its value
        (in tests: ``async def call_sync(f): return f()``). Async tools are awaited directly.
    confirm
        Asked before a ``confirm=True`` tool runs, with the tool and its decoded JSON arguments;
        may return an awaitable. ``None`` means no one can answer: such tools are declined.
    max_result_chars
        Longer result texts are cut with a note.
    timeout
        Seconds an async tool may run before it is cancelled (``None``: no limit).

    Returns
    -------
    ToolResult
        ``"ok"`` with the serialized value; ``"error"`` for an unknown tool, invalid JSON, invalid
        arguments or an exception (kept in ``value``); ``"declined"`` when confirmation is refused.

    Raises
    ------
    KeyboardInterrupt, asyncio.CancelledError
        These propagate; nothing else does.
    """
    execution = _CallExecution(registry, call_sync, confirm, max_result_chars, timeout)
    return await execution.execute(await execution.prepare(call))
