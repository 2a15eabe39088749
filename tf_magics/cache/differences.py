"""What differs between a request and the closest recorded one, in a few words.

When replay mode meets a request it has no recording of, the cell fails with one line that says
why, so the person can put the cell back or record it: ``the system prompt changed``,
``temperature 0.7 vs 0``, ``message 3 (user) differs: 'What is she…' vs recorded 'What is he…'``,
``the result of tool get_temperature differs: '18.5' vs recorded '17.0' (the tool returned
something else)``: a tool's result is part of the next request, so a tool that returns something
else makes another request.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

__all__ = ["closest", "describe_differences"]

_SNIPPET = 40
_MAX_DIFFERENCES = 3


def closest(request: dict[str, Any], recorded: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The recorded request most like ``request`` (the latest one on a tie), or ``None``."""
    best: dict[str, Any] | None = None
    best_score: tuple[int, int, int] | None = None
    for candidate in recorded:
        score = _likeness(request, candidate)
        if best_score is None or score >= best_score:
            best, best_score = candidate, score
    return best


def _likeness(request: dict[str, Any], candidate: dict[str, Any]) -> tuple[int, int, int]:
    mine, theirs = _messages(request), _messages(candidate)
    same_places = sum(a == b for a, b in zip(mine, theirs, strict=False))
    same_fields = -len(_field_differences(request, candidate))
    return same_places, same_fields, -abs(len(mine) - len(theirs))


def describe_differences(
    request: dict[str, Any], recorded: dict[str, Any], *, model_given: bool
) -> list[str]:
    """What makes ``request`` another request than ``recorded`` (at most three phrases).

    ``model_given``: whether the request named its model (an unnamed model matches any).
    """
    found: list[str] = []
    if model_given and request.get("model") != recorded.get("model"):
        found.append(
            f"model {_show(request.get('model'))} vs recorded {_show(recorded.get('model'))}"
        )
    found += _message_differences(_messages(request), _messages(recorded))
    found += _field_differences(request, recorded)
    return found[:_MAX_DIFFERENCES]


# -- the messages ---------------------------------------------------------------------------------


def _messages(request: dict[str, Any]) -> list[Any]:
    messages = request.get("messages")
    return messages if isinstance(messages, list) else []


def _role(message: Any) -> str | None:
    return message.get("role") if isinstance(message, dict) else None


def _message_differences(mine: list[Any], theirs: list[Any]) -> list[str]:
    found: list[str] = []
    system_mine = mine[0] if mine and _role(mine[0]) == "system" else None
    system_theirs = theirs[0] if theirs and _role(theirs[0]) == "system" else None
    if system_mine != system_theirs:
        if system_theirs is None:
            found.append("a system prompt was added")
        elif system_mine is None:
            found.append("the system prompt was removed")
        else:
            found.append("the system prompt changed")
    offset = 1 if system_mine is not None else 0
    body_mine = mine[offset:]
    body_theirs = theirs[1:] if system_theirs is not None else theirs
    for position, (a, b) in enumerate(zip(body_mine, body_theirs, strict=False)):
        if a != b:
            found.append(_one_message(position + offset, a, b, mine))
            return found
    if len(body_mine) > len(body_theirs):
        position = len(body_theirs) + offset
        new = mine[position]
        found.append(
            f"message {position} ({_role(new) or 'unknown role'}) was never recorded: "
            f"{_snippet(_content(new))}"
        )
    elif len(body_mine) < len(body_theirs):
        extra = len(body_theirs) - len(body_mine)
        found.append(f"the recording has {extra} more message{'s' if extra > 1 else ''}")
    return found


def _one_message(position: int, mine: Any, theirs: Any, history: list[Any]) -> str:
    role = _role(mine)
    if role == "tool" and _role(theirs) == "tool":
        name = _tool_name(history, position)
        a, b = _contrast(_content(mine), _content(theirs))
        return (
            f"the result of tool {name} differs: {a} vs recorded {b} "
            "(the tool returned something else)"
        )
    if role != _role(theirs):
        return f"message {position} is a {role} message, the recording has a {_role(theirs)} one"
    if role == "assistant" and _content(mine) == _content(theirs):
        return f"message {position} (assistant) calls other tools than the recording"
    a, b = _contrast(_content(mine), _content(theirs))
    return f"message {position} ({role}) differs: {a} vs recorded {b}"


def _tool_name(history: list[Any], position: int) -> str:
    """The name of the function whose result is at ``position``."""
    result = history[position] if position < len(history) else None
    call_id = result.get("tool_call_id") if isinstance(result, dict) else None
    for message in reversed(history[:position]):
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        for call in calls if isinstance(calls, list) else []:
            if isinstance(call, dict) and call.get("id") == call_id:
                function = call.get("function")
                if isinstance(function, dict) and isinstance(function.get("name"), str):
                    return str(function["name"])
    return "call"


def _content(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else message
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)


def _contrast(a: str, b: str) -> tuple[str, str]:
    """Both texts, each cut around where they first differ."""
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    start = max(0, start - 12)
    return _snippet(a, start), _snippet(b, start)


def _snippet(text: str, start: int = 0) -> str:
    piece = " ".join(text[start:].split())
    cut = piece[:_SNIPPET] + ("…" if len(piece) > _SNIPPET else "")
    return repr(("…" if start else "") + cut)


# -- the other fields -----------------------------------------------------------------------------


def _field_differences(request: dict[str, Any], recorded: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for name in sorted((set(request) | set(recorded)) - {"messages", "model"}):
        mine, theirs = request.get(name), recorded.get(name)
        if mine == theirs:
            continue
        if name == "tools":
            found.append(_tools_difference(mine, theirs))
        elif _scalar(mine) and _scalar(theirs):
            found.append(f"{name} {_show(mine)} vs {_show(theirs)}")
        else:
            found.append(f"{name} changed")
    return found


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _show(value: Any) -> str:
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return repr(value) if len(value) <= _SNIPPET else repr(value[:_SNIPPET] + "…")
    return str(value)


def _tool_names(tools: Any) -> list[str]:
    names = []
    for tool in tools if isinstance(tools, list) else []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.append(function["name"])
    return names


def _tools_difference(mine: Any, theirs: Any) -> str:
    a, b = _tool_names(mine), _tool_names(theirs)
    added = [n for n in a if n not in b]
    removed = [n for n in b if n not in a]
    parts = []
    if added:
        parts.append(f"{', '.join(added)} offered")
    if removed:
        parts.append(f"{', '.join(removed)} no longer offered")
    if parts:
        return "the tools changed: " + "; ".join(parts)
    return "a tool's description or parameters changed"
