"""The record/replay layer every chat request passes through (a client :class:`ChatHook`).

========  ============================================================================
mode      what a request does
========  ============================================================================
off       goes to the server (no layer at all)
auto      answered from the recording when it was recorded, else sent and recorded
record    always sent, and recorded (a later line replaces an older one)
replay    answered from the recording, or fails the cell saying what differs; the
          network is never touched (no base URL, key or model server needed)
========  ============================================================================

The endpoint of a request (the local model server, the server's default model) is only filled
in when the request is really sent: the engine defers it (:attr:`RequestOptions.deferred`), and
this layer runs it for a request it lets through. A reply that failed, was cut off or was
interrupted is not recorded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from tf_magics.client import ChunkAccumulator, RequestOptions
from tf_magics.client.request import SendLive
from tf_magics.errors import CacheMissError
from tf_magics.events import Event, Notice
from tf_magics.options import LOCAL_SOURCE
from tf_magics.types import Completion

from .canonical import canonical_request, request_key
from .differences import closest, describe_differences
from .entry import Entry
from .location import locate
from .mode import CacheMode
from .replay import EventRecorder, replay
from .store import RecordingFile, problems_line, recording_file

__all__ = ["RecordReplay", "layer_for"]

_FINISHED = ("done", "finished", "complete")
_QUESTION_CHARS = 50


class RecordReplay:
    """Answers requests from a recording file, or sends and records them.

    Parameters
    ----------
    mode
        ``auto``, ``record`` or ``replay``.
    file
        The recording.
    paced
        Replay at the recorded pace instead of at once.
    clock, sleep, now
        The event loop's clock and sleep, and the wall clock (injected for tests).
    """

    def __init__(
        self,
        mode: CacheMode,
        file: RecordingFile,
        *,
        paced: bool = False,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.mode = mode
        self.file = file
        self.paced = paced
        self._clock = clock
        self._sleep = sleep
        self._now = now

    def __repr__(self) -> str:
        return f"<RecordReplay {self.mode} {self.file.path}>"

    @property
    def offline(self) -> bool:
        """Replay mode never lets a request reach the network."""
        return self.mode == "replay"

    def clock(self) -> float:
        """Monotonic seconds: the running event loop's clock unless one was given."""
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    async def exchange(
        self,
        options: RequestOptions,
        body: dict[str, Any],
        accumulator: ChunkAccumulator,
        on_event: Callable[[Event], None] | None,
        send: SendLive,
    ) -> Completion:
        """Answer one request from the recording, or send it (and record the reply)."""
        request = canonical_request(body)
        key = request_key(request)
        problems = self.file.refresh()
        if problems and on_event is not None:
            on_event(Notice(problems_line(problems, self.file.path), "warning"))
        occurrence = self.file.take_occurrence(key)
        if self.mode in ("auto", "replay"):
            entry = self.file.find(key, request.get("model"), occurrence, wrap=self.offline)
            if entry is not None:
                completion = await replay(
                    entry,
                    accumulator,
                    on_event,
                    paced=self.paced,
                    sleep=self._sleep,
                    clock=self.clock,
                    file=self.file.path.name,
                )
                self.file.mark_used(entry)
                self.file.commit_occurrence(key)
                return completion
            if self.offline:
                raise self.miss(request)
        return await self._send(options, request, key, occurrence, on_event, send)

    async def _send(
        self,
        options: RequestOptions,
        request: dict[str, Any],
        key: str,
        occurrence: int,
        on_event: Callable[[Event], None] | None,
        send: SendLive,
    ) -> Completion:
        ready = await options.ready()
        recorder = EventRecorder(on_event, self.clock)
        completion = await send(ready, recorder)
        self.file.commit_occurrence(key)
        if completion.partial or completion.ended not in _FINISHED:
            return completion  # only whole replies are worth replaying
        entry = _entry(ready, request, occurrence, recorder, completion, self._now())
        try:
            self.file.append(entry)
        except OSError as error:
            if on_event is not None:
                why = error.strerror or type(error).__name__
                on_event(
                    Notice(
                        f"This reply could not be recorded in {self.file.path.name} ({why}); "
                        "it will be asked again next time.",
                        "warning",
                    )
                )
        return completion

    def miss(self, request: dict[str, Any]) -> CacheMissError:
        """The error for a request that replay mode cannot answer: what differs, in one line."""
        question = _question(request)
        entries = self.file.entries
        name = self.file.path.name
        hint = (
            "Nothing was sent. Put the cell back as it was recorded, or record it (%chat set "
            "cache=auto, with a model server; TF_MAGICS_CACHE wins if set). %chat cache shows "
            "the recording."
        )
        if not entries:
            why = "it is empty" if self.file.path.exists() else "there is no such file"
            return CacheMissError(
                f"Replay mode: the request for {question} is not recorded in {name} ({why}).",
                hint=hint,
                path=str(self.file.path),
            )
        nearest = closest(request, [entry.request for entry in entries])
        assert nearest is not None
        differences = describe_differences(request, nearest, model_given="model" in request)
        said = "; ".join(differences) or "it differs in a field tf_magics cannot name"
        return CacheMissError(
            f"Replay mode: the request for {question} is not in the recording {name}; "
            f"against the closest recorded request, {said}.",
            hint=hint,
            differences=tuple(differences),
            path=str(self.file.path),
        )


def layer_for(
    mode: CacheMode, *, cache_file: str | None, pace: str, env: Mapping[str, str]
) -> RecordReplay | None:
    """The record/replay layer for a request, or ``None`` when the mode is ``off``."""
    if mode == "off":
        return None
    location = locate(cache_file, env)
    return RecordReplay(mode, recording_file(location.recording), paced=pace == "recorded")


def _entry(
    ready: RequestOptions,
    request: dict[str, Any],
    occurrence: int,
    recorder: EventRecorder,
    completion: Completion,
    now: float,
) -> Entry:
    local = ready.base_url_source == LOCAL_SOURCE
    note = None
    if local:
        from tf_magics.local import LOCAL_MODEL_DESCRIPTION

        note = LOCAL_MODEL_DESCRIPTION
    sent = {**request, "model": ready.model} if ready.model else request
    return Entry(
        request=sent,
        occurrence=occurrence,
        events=tuple(recorder.events),
        completion=completion,
        elapsed=recorder.elapsed(),
        recorded_at=now,
        server="local" if local else _address(ready.base_url),
        model_note=note,
    )


def _address(url: str | None) -> str | None:
    """A base URL without anything secret in it (user, password, query, fragment)."""
    if not url:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _question(request: dict[str, Any]) -> str:
    """The last user message, short and quoted: which cell's request this is."""
    messages = request.get("messages")
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            text = " ".join(content.split()) if isinstance(content, str) else "(not text)"
            short = text[:_QUESTION_CHARS] + ("…" if len(text) > _QUESTION_CHARS else "")
            return repr(short)
    return "(no question)"
