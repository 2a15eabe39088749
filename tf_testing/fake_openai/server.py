"""The HTTP side: :class:`FakeOpenAI`, a real HTTP/1.1 server on 127.0.0.1 run on a thread.

It answers ``POST /v1/chat/completions`` from a FIFO queue of response specs (or its default
reply), ``GET /v1/models`` from :attr:`FakeOpenAI.models`, records every request as a
:class:`~tf_testing.fake_openai.exchange.RecordedRequest`, and writes each spec's plan with its
pacing, framing (chunked, ``Content-Length`` or until close) and way of ending (complete or cut).

One thread serves each connection, with keep-alive. Pacing stays accurate up to roughly 10,000
paced events per second in total (say 100 streams at 100 tokens/s); beyond that the streams run
slower than asked.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from types import TracebackType
from typing import Any, TypeAlias, cast
from urllib.parse import urlsplit

from .batches import FakeBatches
from .exchange import Call, Plan, RecordedRequest, dumps_compact, error_body, json_plan
from .specs import DEFAULT_MODEL, ErrorReply, ResponseSpec, TextReply

__all__ = ["HOST", "FakeOpenAI", "ModelsSetting", "RecordedRequest"]

HOST = "127.0.0.1"

# Events are grouped into HTTP chunks of about this size when they are all due at once: few
# syscalls for the benchmark's fast path, yet still a streamed, chunked body.
_COALESCE_BYTES = 32 * 1024


#: What ``GET /v1/models`` answers: model ids (or full model dicts), ``None`` for ``data: null``,
#: or any spec (``ErrorReply(404, ...)``).
ModelsSetting: TypeAlias = Sequence[str | Mapping[str, Any]] | ResponseSpec | None


def _frame_chunks(datas: Sequence[bytes], coalesce: bool) -> list[bytes]:
    out: list[bytes] = []
    if not coalesce:
        return [b"%x\r\n%b\r\n" % (len(d), d) for d in datas if d]
    buffer: list[bytes] = []
    size = 0
    for data in datas:
        buffer.append(data)
        size += len(data)
        if size >= _COALESCE_BYTES:
            joined = b"".join(buffer)
            out.append(b"%x\r\n%b\r\n" % (len(joined), joined))
            buffer, size = [], 0
    if size:
        joined = b"".join(buffer)
        out.append(b"%x\r\n%b\r\n" % (len(joined), joined))
    return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-openai"
    # Paced streams write small packets; Nagle plus delayed ACKs would hold them back ~40 ms.
    disable_nagle_algorithm = True
    _selector: selectors.BaseSelector | None = None

    @property
    def fake(self) -> FakeOpenAI:
        return cast(_Server, self.server).fake

    def setup(self) -> None:
        super().setup()
        self.fake._track(self.connection, add=True)

    def finish(self) -> None:
        if self._selector is not None:
            self._selector.close()
        try:
            super().finish()
        except OSError:
            pass  # the client (or an abort) already closed the socket
        finally:
            self.fake._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read recorded requests, not an access log on stderr

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    # -- reading

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            pieces: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(pieces)
                pieces.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        body = self._read_body()
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = None
        request = RecordedRequest(self.command, self.path, headers, body, parsed)
        self.fake._record(request)
        counted = _route(request.path) == "/v1/chat/completions"
        over_limit = self.fake._enter() if counted else False
        left = not counted

        def leave() -> None:
            # Called just before the last bytes go out: a client that reacts to the end of this
            # reply by sending another request must never find this one still counted.
            nonlocal left
            if not left:
                left = True
                self.fake._leave()

        try:
            try:
                plan = self.fake._plan_for(request, over_limit=over_limit)
            except (
                Exception
            ) as exc:  # a Dynamic callback or a bad spec: answer, and let the test see it
                self.fake._record_error(exc)
                plan = json_plan(500, error_body(f"fake server error: {exc!r}", "server_error"))
            self._execute(plan, leave)
        finally:
            leave()

    # -- writing

    def _head(self, plan: Plan) -> bytes:
        try:
            reason = HTTPStatus(plan.status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [
            f"HTTP/1.1 {plan.status} {reason}",
            f"server: {self.server_version}",
            f"date: {self.date_time_string()}",
        ]
        lines += [f"{name}: {value}" for name, value in plan.headers]
        if plan.framing == "chunked":
            lines.append("transfer-encoding: chunked")
        elif plan.framing == "length":
            length = plan.declared_length
            if length is None:
                length = sum(len(p.data) for p in plan.parts)
            lines.append(f"content-length: {length}")
        else:
            lines.append("connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _frame(self, plan: Plan, datas: list[bytes]) -> list[bytes]:
        if plan.framing == "chunked":
            return _frame_chunks(datas, plan.coalesce)
        return datas

    def _execute(self, plan: Plan, ending: Callable[[], None]) -> None:
        """Write ``plan``; ``ending`` is called right before the last write (or the abort)."""
        start = time.perf_counter()
        pending: list[bytes] = [self._head(plan)] if plan.send_head else []
        index, parts = 0, plan.parts
        try:
            while index < len(parts):
                wait = start + parts[index].due - time.perf_counter()
                if wait > 0:
                    self._write(pending)
                    pending = []
                    if not self._wait(wait):
                        ending()
                        self._abort()
                        return
                # Everything already due goes out in one write: a slow wake-up catches up at once.
                now = time.perf_counter() - start + 0.0005
                batch = []
                while index < len(parts) and parts[index].due <= now:
                    batch.append(parts[index].data)
                    index += 1
                pending += self._frame(plan, batch)
            hold = start + plan.end_at - time.perf_counter()
            if hold > 0:
                self._write(pending)
                pending = []
                if not self._wait(hold):
                    ending()
                    self._abort()
                    return
            ending()
            if plan.end == "abort":
                self._write(pending)
                self._abort()
                return
            if plan.framing == "chunked":
                pending.append(b"0\r\n\r\n")
            self._write(pending)
            if plan.framing == "close":
                self._abort()
        except OSError:
            self.close_connection = True  # the client hung up mid-response: not an error here

    def _write(self, datas: list[bytes]) -> None:
        if datas:
            data = b"".join(datas)
            self.wfile.write(data)
            if self.fake.on_write is not None:
                self.fake.on_write(data)

    def _abort(self) -> None:
        """Close the connection now, whatever the framing promised."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)

    def _wait(self, seconds: float) -> bool:
        """Sleep, but wake when the client disconnects or the server closes; ``False`` then."""
        deadline = time.perf_counter() + seconds
        if self._selector is None:
            # One selector per connection: paced streams wait once per token, and setting one up
            # per wait costs more than the wait itself when hundreds of streams run at once.
            self._selector = selectors.DefaultSelector()
            self._selector.register(self.connection, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return True
            if self.fake._stopping.is_set():
                return False
            if self._selector.select(min(remaining, 0.25)):
                try:
                    peeked = self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    return False
                if not peeked:
                    return False  # EOF: the client is gone
                # The client sent more bytes early (a pipelined request): plain sleep.
                return not self.fake._stopping.wait(max(0.0, deadline - time.perf_counter()))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many clients connect at once in concurrency tests

    def __init__(self, fake: FakeOpenAI, port: int) -> None:
        self.fake = fake
        super().__init__((HOST, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can stall; skip it.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = HOST, self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return  # clients that disconnect are part of the tests, not failures
        if exc is not None:
            self.fake._record_error(exc)
        super().handle_error(request, client_address)


class FakeOpenAI:
    """A scripted OpenAI-compatible server on ``127.0.0.1``, running on a background thread.

    Parameters
    ----------
    port : int
        0 picks a free port.
    default : ResponseSpec, optional
        The reply when the queue is empty; ``TextReply("Hello from fake-model.")`` by default.
    models : sequence of str or dict, spec, or None
        What ``GET /v1/models`` answers: model ids (or whole model objects), ``None`` for
        ``{"object": "list", "data": null}``, or a spec such as ``ErrorReply(404, ...)``.
    api_key : str, optional
        When set, every request without ``Authorization: Bearer <api_key>`` gets a 401.
    max_in_flight : int, optional
        Answer :attr:`over_limit` (a 429 by default) to a chat request that arrives while this
        many are already being answered, as a provider's concurrency limit does. ``None``: no
        limit. Can be changed at any time.
    vision : bool
        ``False`` plays a model that reads text only: a chat request with an ``image_url`` part
        gets the 400 OpenAI answers for such a model (the queue is left as it is).

    Attributes
    ----------
    on_write : callable, optional
        Called on the connection's thread with each block of response bytes right after it was
        written (benchmarks timestamp the first content chunk with it).
    over_limit : ResponseSpec
        The answer above :attr:`max_in_flight` (``ErrorReply(429, ...)``; give it a
        ``retry-after-ms`` header to ask clients to wait). It does not use the queue.
    in_flight : int
        Chat requests being answered right now (those refused above the limit included, for the
        instant they are answered).
    peak_in_flight : int
        The most chat requests that were ever being answered at once (see
        :meth:`reset_counters`).
    rejected : int
        Chat requests answered with :attr:`over_limit`.

    Examples
    --------
    >>> with FakeOpenAI() as server:
    ...     server.enqueue(TextReply("Hi there", tokens_per_second=100))
    ...     url = server.base_url  # "http://127.0.0.1:PORT/v1"
    """

    def __init__(
        self,
        *,
        port: int = 0,
        default: ResponseSpec | None = None,
        models: ModelsSetting = (DEFAULT_MODEL,),
        api_key: str | None = None,
        batches: FakeBatches | None = None,
        max_in_flight: int | None = None,
        vision: bool = True,
    ) -> None:
        self._port = port
        self.vision = self._initial_vision = vision
        self._initial = (default or TextReply(), models)
        self.default: ResponseSpec = self._initial[0]
        self.models: ModelsSetting = models
        self.api_key = api_key
        #: The Batch API (files and batches); ``None`` answers 404, like a server without it.
        self.batches = batches
        self.on_write: Callable[[bytes], None] | None = None
        self.max_in_flight = max_in_flight
        self.over_limit: ResponseSpec = ErrorReply(
            429,
            {
                "error": {
                    "message": "Too many requests in flight; slow down.",
                    "type": "rate_limit_error",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            },
        )
        self.in_flight = 0
        self.peak_in_flight = 0
        self.rejected = 0
        self._lock = threading.Condition()
        self._queue: deque[ResponseSpec] = deque()
        self._requests: list[RecordedRequest] = []
        self._errors: list[BaseException] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> FakeOpenAI:
        """Bind the port and start serving (idempotent); returns ``self``."""
        if self._server is None:
            self._stopping.clear()
            self._server = _Server(self, self._port)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                # close() waits up to one poll interval; short, so fixtures tear down quickly.
                kwargs={"poll_interval": 0.01},
                name=f"fake-openai:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, cut open connections (stalled replies end at once) and free the port."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        deadline = time.monotonic() + 5
        with self._lock:
            while self._connections and time.monotonic() < deadline:
                self._lock.wait(0.05)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- addresses

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError(
                "FakeOpenAI is not running; call start() or use it as a context manager"
            )
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no path)."""
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, what an OpenAI client takes as its base URL."""
        return f"{self.url}/v1"

    # -- scripting

    def enqueue(self, *specs: ResponseSpec) -> None:
        """Queue replies for the next chat-completion requests, in order."""
        with self._lock:
            self._queue.extend(specs)

    @property
    def pending(self) -> int:
        """How many queued replies have not been used yet."""
        with self._lock:
            return len(self._queue)

    def reset(self) -> None:
        """Forget recordings, errors and queued replies; restore the default reply and settings.

        The in-flight counters start again too (:meth:`reset_counters`); the limit is kept.
        """
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self._errors.clear()
            self.default, self.models = self._initial
            self.vision = self._initial_vision
        self.reset_counters()

    def reset_counters(self) -> None:
        """Start :attr:`peak_in_flight` and :attr:`rejected` again from what is in flight now."""
        with self._lock:
            self.peak_in_flight = self.in_flight
            self.rejected = 0

    def wait_until_idle(self, timeout: float = 5.0) -> None:
        """Block until no chat request is being answered; raise ``TimeoutError`` if one still is."""
        with self._lock:
            if not self._lock.wait_for(lambda: self.in_flight == 0, timeout):
                raise TimeoutError(f"{self.in_flight} requests still in flight after {timeout} s")

    # -- recording

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[Any]:
        """The JSON bodies of the chat-completion requests, oldest first."""
        return [
            r.json
            for r in self.requests
            if _route(r.path) == "/v1/chat/completions" and r.method == "POST"
        ]

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised while answering (a failing :class:`Dynamic`); empty when healthy."""
        with self._lock:
            return list(self._errors)

    def clear(self) -> None:
        """Forget the recorded requests and errors (the queue is kept)."""
        with self._lock:
            self._requests.clear()
            self._errors.clear()

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests were received; raise ``TimeoutError`` if not."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= count, timeout):
                raise TimeoutError(f"got {len(self._requests)} of {count} requests in {timeout} s")
            return list(self._requests)

    # -- used by the handler

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()

    def _enter(self) -> bool:
        """Count a chat request in; True when it is over the in-flight limit."""
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            limit = self.max_in_flight
            over = limit is not None and self.in_flight > limit
            if over:
                self.rejected += 1
            return over

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1
            self._lock.notify_all()

    def _record_error(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)
                self._lock.notify_all()

    def _plan_for(self, request: RecordedRequest, *, over_limit: bool = False) -> Plan:
        route = _route(request.path)
        call = Call.of(request)
        if (
            self.api_key is not None
            and request.headers.get("authorization") != f"Bearer {self.api_key}"
        ):
            body = error_body(
                "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
            )
            return json_plan(401, body)
        if route == "/v1/chat/completions":
            if request.method != "POST":
                return json_plan(405, error_body(f"Method {request.method} not allowed."))
            if not isinstance(request.json, dict):
                return json_plan(
                    400, error_body("We could not parse the JSON body of your request.")
                )
            if over_limit:
                return self.over_limit._plan(call)
            if not self.vision and _has_image(request.json):
                return json_plan(400, error_body(_NO_VISION, param="messages.content.type"))
            with self._lock:
                spec = self._queue.popleft() if self._queue else self.default
            return spec._plan(call)
        if self.batches is not None and route.startswith(("/v1/files", "/v1/batches")):
            answered = self.batches.answer(request, route)
            if answered is not None:
                return json_plan(*answered)
        if route == "/v1/models" and request.method == "GET":
            models = self.models
            if models is None:
                return json_plan(200, b'{"object":"list","data":null}')
            if isinstance(models, (list, tuple)):
                data = [
                    dict(m)
                    if isinstance(m, Mapping)
                    else {"id": m, "object": "model", "created": 0, "owned_by": "fake-openai"}
                    for m in models
                ]
                return json_plan(200, dumps_compact({"object": "list", "data": data}).encode())
            return cast(ResponseSpec, models)._plan(call)
        return json_plan(
            404, error_body(f"Unknown route: {request.method} {route}", code="not_found")
        )


#: What OpenAI answers when a model that reads text only is sent an image.
_NO_VISION = "Invalid content type. image_url is only supported by certain models."


def _has_image(body: dict[str, Any]) -> bool:
    messages = body.get("messages")
    return isinstance(messages, list) and any(
        isinstance(message, dict)
        and isinstance(message.get("content"), list)
        and any(isinstance(p, dict) and p.get("type") == "image_url" for p in message["content"])
        for message in messages
    )


def _route(path: str) -> str:
    return urlsplit(path).path.rstrip("/") or "/"
