"""The key of a request: its canonical form, what a recording is looked up by.

A request is known by what decides the reply: the model, the messages, the sampling parameters,
the tools and tool choice, the response format, and any provider field (``extra_body``). That is
the JSON body minus what only concerns the transport (``stream``, ``stream_options``); never the
base URL, a key or a header, which are not in the body at all. Two more rules make the key
stable:

- tool-call ids are renumbered by position (``call_1``, ``call_2``... in the order the history
  makes them, tool results following their call): servers invent a fresh random id for every
  call, and a recorded conversation must still match when replayed;
- the model is kept beside the key, not in it (:func:`request_key` leaves it out): a notebook that
  names no model (the server's default, the built-in model, or ``TOKEN_FACTORY_MODEL`` on the
  recording machine only) replays whichever model recorded it; one that names a model must match
  it (see :mod:`tf_magics.cache.store`).
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

__all__ = ["TRANSPORT_FIELDS", "canonical_request", "encode", "request_key"]

#: Body fields that change how a reply travels, not what it says.
TRANSPORT_FIELDS = frozenset(("stream", "stream_options"))


def canonical_request(body: dict[str, Any]) -> dict[str, Any]:
    """The request as a recording knows it (a deep copy; ``body`` is left alone)."""
    request = {k: copy.deepcopy(v) for k, v in body.items() if k not in TRANSPORT_FIELDS}
    messages = request.get("messages")
    if isinstance(messages, list):
        request["messages"] = _renumber_tool_calls(messages)
    if request.get("model") is None:
        request.pop("model", None)
    return request


def encode(value: Any) -> str:
    """Stable JSON text: sorted keys, no spaces, UTF-8 characters as they are."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def request_key(request: dict[str, Any]) -> str:
    """The lookup key of a canonical request: a hash of everything but the model."""
    keyed = {k: v for k, v in request.items() if k != "model"}
    return hashlib.sha256(encode(keyed).encode("utf-8")).hexdigest()[:32]


def _renumber_tool_calls(messages: list[Any]) -> list[Any]:
    """The messages with tool-call ids replaced by their position (``call_1``...)."""
    # The latest number given to each raw id: a server that reuses "call_0" every round still
    # gets one number per call, and each result follows the call just before it.
    numbers: dict[str, str] = {}
    count = [0]
    renumbered: list[Any] = []
    for message in messages:
        if not isinstance(message, dict):
            renumbered.append(message)
            continue
        message = dict(message)
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            message["tool_calls"] = [_renumber_call(call, numbers, count) for call in calls]
        call_id = message.get("tool_call_id")
        if isinstance(call_id, str) and call_id in numbers:
            message["tool_call_id"] = numbers[call_id]
        renumbered.append(message)
    return renumbered


def _renumber_call(call: Any, numbers: dict[str, str], count: list[int]) -> Any:
    if not isinstance(call, dict) or not isinstance(call.get("id"), str):
        return call
    count[0] += 1
    numbers[call["id"]] = number = f"call_{count[0]}"
    return {**call, "id": number}
