"""Server-sent events framing: bytes from the network in, events out.

Follows the SSE spec (https://html.spec.whatwg.org/multipage/server-sent-events.html) with the
leniencies real servers need: lines end in LF, CRLF or a bare CR (and a CR may end one network read
while its LF starts the next); text is decoded per complete line, never per read, so a multibyte
character cut by a read boundary survives; ``str.splitlines`` is never used because it also splits
on U+2028 inside JSON strings. At the end of the body a last event without its blank line is still
delivered (``data: [DONE]`` often arrives that way). A UTF-8 byte order mark at the very start
of the stream is dropped, as the spec asks.

:meth:`SSEDecoder.feed_json` is :meth:`~SSEDecoder.feed` plus JSON decoding, with a fast path for
the shape nearly every chat stream has (one ``data: {...}`` line per event, LF line ends): a fast
server packs a hundred such events into one read, and parsing them in one pass costs a fraction of
splitting lines, building events and calling :func:`json.loads` for each.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

__all__ = ["SSEDecoder", "SSEEvent"]

_BOM = b"\xef\xbb\xbf"
# The C scanner behind json.loads, without its per-call Python wrappers (same strictness).
_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_FRAME_START = "data: {"


class SSEEvent(NamedTuple):
    """One dispatched event: ``event`` is ``"message"`` unless the server named it.

    A named tuple rather than a frozen dataclass: one is built per token, and tuples are the
    cheapest immutable value to build.
    """

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Incremental SSE parser.

    Feed it network reads of any size with :meth:`feed`, then call :meth:`flush` at the end of the
    body. ``comments`` counts comment lines (``: ping``), which carry no data but show the server is
    alive; ``lines`` counts every line seen, so a caller can tell an empty body from a silent one.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._skip_lf = False
        self._started = False
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None
        self._after: list[SSEEvent] | None = None  # see feed_json()
        self.comments = 0
        self.lines = 0

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume one network read; return the events it completed."""
        if not chunk:
            return []  # an empty read must not forget a pending CR (see below)
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
            if not chunk:
                self._skip_lf = False
                return []
        self._skip_lf = False
        buffer = self._buffer + chunk if self._buffer else chunk
        if not self._started:
            if len(buffer) < len(_BOM) and _BOM.startswith(buffer):
                self._buffer = buffer  # may still be the start of a byte order mark
                return []
            self._started = True
            if buffer.startswith(_BOM):
                buffer = buffer[len(_BOM) :]
        elif b"\n" not in chunk and b"\r" not in chunk:
            # What was buffered holds no line break (it would have been split already): a long
            # line arriving in many reads is only scanned once its end arrives (linear time).
            self._buffer = buffer
            return []
        # For bytes, splitlines breaks only at LF, CRLF and a bare CR (never at U+2028, which
        # str.splitlines would split JSON strings at), and does it in C.
        lines = buffer.splitlines(keepends=True)
        if not lines:
            self._buffer = b""
            return []
        last = lines[-1]
        if last.endswith((b"\n", b"\r")):
            self._buffer = b""
            # A CR at the very end may be the first half of a CRLF split across reads.
            self._skip_lf = last.endswith(b"\r")
        else:
            self._buffer = lines.pop()
        events: list[SSEEvent] = []
        for raw in lines:
            line = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
            if line.startswith(b"data:"):
                # The line nearly every event is made of, handled inline for speed.
                self.lines += 1
                value = line[6:] if line.startswith(b"data: ") else line[5:]
                self._data.append(value.decode("utf-8", errors="replace"))
            else:
                self._line(line, events)
        return events

    def feed_json(self, chunk: bytes) -> Iterator[Any]:
        """Consume one network read like :meth:`feed`, decoding the JSON of plain events.

        Yields the decoded payloads of the leading run of plain events (unnamed, one
        ``data: {...}`` line each, ending in LF) one at a time, as they are decoded: a consumer
        that is done with each before taking the next never holds a read's worth of objects
        (a hundred tokens' dicts alive at once set off the garbage collector, and in a kernel
        full of objects a full collection costs tens of milliseconds). Each payload is exactly
        what ``json.loads(event.data)`` gives; an event that does not decode on its own,
        ``[DONE]`` included, ends the run. Iterate to the end, then :meth:`take_events` returns
        the events that followed the run, as :meth:`feed` returns them.
        """
        self._after = None
        if not chunk or self._skip_lf or self._data or self._event:
            self._after = self.feed(chunk)
            return
        buffer = self._buffer + chunk if self._buffer else chunk
        if not self._started:
            if len(buffer) < len(_BOM):
                self._after = self.feed(chunk)  # may still be the start of a byte order mark
                return
            self._started = True
            if buffer.startswith(_BOM):
                buffer = buffer[len(_BOM) :]
        end = buffer.rfind(b"\n\n") + 2
        text = ""
        if end >= 2 and buffer.startswith(b"data: {") and b"\r" not in buffer:
            # Not UTF-8: feed() decodes what it can, line by line.
            with contextlib.suppress(UnicodeDecodeError):
                text = buffer[:end].decode()
        if not text:
            self._buffer = b""
            self._after = self.feed(buffer)
            return
        scan, frame_start = _scan_json, _FRAME_START
        start, stop = 0, len(text)  # start: where the first event not decoded here begins
        while start < stop and text.startswith(frame_start, start):
            try:
                payload, after = scan(text, start + 6)
            except (StopIteration, ValueError):
                break  # not JSON: that event takes the line-by-line path
            if not text.startswith("\n\n", after):
                break  # more on the line, or a second data line: not a plain event
            start = after + 2
            self.lines += 2
            yield payload
        # What was not decoded goes through feed(); ``start`` indexes characters, not bytes.
        rest = text[start:].encode() + buffer[end:] if start < stop else buffer[end:]
        self._buffer = b""
        self._after = self.feed(rest)

    def take_events(self) -> list[SSEEvent]:
        """The events that followed the plain ones of the last :meth:`feed_json` read."""
        if self._after is None:
            raise RuntimeError("iterate SSEDecoder.feed_json() to the end before take_events()")
        events, self._after = self._after, None
        return events

    def flush(self) -> list[SSEEvent]:
        """End of body: deliver a last line and event that had no terminator."""
        events: list[SSEEvent] = []
        if self._buffer:
            self._line(self._buffer, events)
            self._buffer = b""
        self._dispatch(events)
        return events

    def _line(self, raw: bytes, events: list[SSEEvent]) -> None:
        self.lines += 1
        if not raw:
            self._dispatch(events)
            return
        line = raw.decode("utf-8", errors="replace")
        if line.startswith(":"):
            self.comments += 1
            return
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():  # "²".isdigit() is true too
                self._retry = int(value)
        elif name == "error":
            # Old llama.cpp servers report failures as a bare ``error: {...}`` line.
            self._data.append(value)
            self._event = "error"

    def _dispatch(self, events: list[SSEEvent]) -> None:
        if self._data:
            data = self._data[0] if len(self._data) == 1 else "\n".join(self._data)
            events.append(SSEEvent(data, self._event or "message", self._id, self._retry))
        self._data = []
        self._event = ""
        self._retry = None
