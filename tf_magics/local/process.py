"""The local server's process machinery: spawning, watching and ending a child process.

:class:`tf_magics.local.LocalServer` decides *what* to run; this module knows *how* to run it as
a well-behaved guest of the kernel (the guarantees are listed in :mod:`tf_magics.local`):

- :func:`free_loopback_port` picks a port, and the child's environment is scrubbed of the
  variables llama-cpp-python would read as settings, so it stays on ``127.0.0.1``;
- :func:`spawn_server` starts the child in its own session, with ``PR_SET_PDEATHSIG`` on Linux,
  from a thread that lives as long as the process (:class:`_Launcher`);
- :func:`wait_until_ready` watches the log and probes ``GET /v1/models`` until it answers;
- :func:`terminate` ends its whole process group (SIGTERM, then SIGKILL).

Only the standard library is used, and nothing here imports ``llama_cpp``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from queue import SimpleQueue
from typing import Any

from tf_magics.errors import ConfigurationError

__all__ = [
    "LOOPBACK",
    "free_loopback_port",
    "spawn_server",
    "terminate",
    "thread_counts",
    "wait_until_ready",
]

LOOPBACK = "127.0.0.1"

# llama-cpp-python's server settings are pydantic-settings fields read (case-insensitively, with
# no prefix) from the environment, and uvicorn.run() even prefers $HOST/$PORT over --host/--port.
# These names (llama-cpp-python 0.3.36) are removed from the child's environment.
# fmt: off
_SERVER_SETTING_NAMES = frozenset((
    "api_key", "cache", "cache_size", "cache_type", "chat_format", "chat_template_kwargs",
    "clip_model_path", "config_file", "disable_ping_events", "draft_model",
    "draft_model_num_pred_tokens", "embedding", "flash_attn", "hf_model_repo_id",
    "hf_pretrained_model_name_or_path", "hf_tokenizer_config_path", "host",
    "interrupt_requests", "kv_overrides", "last_n_tokens_size", "logits_all", "lora_base",
    "lora_path", "main_gpu", "model", "model_alias", "models", "mul_mat_q", "n_batch",
    "n_ctx", "n_gpu_layers", "n_threads", "n_threads_batch", "n_ubatch", "numa",
    "offload_kqv", "port", "root_path", "rope_freq_base", "rope_freq_scale",
    "rope_scaling_type", "rpc_servers", "seed", "split_mode", "ssl_certfile", "ssl_keyfile",
    "tensor_split", "type_k", "type_v", "use_mlock", "use_mmap", "verbose", "vocab_only",
    "yarn_attn_factor", "yarn_beta_fast", "yarn_beta_slow", "yarn_ext_factor", "yarn_orig_ctx",
))
# fmt: on

_READY_LINE = re.compile(r"Uvicorn running on")
_PORT_TAKEN = re.compile(
    r"address already in use|errno (98|48|10048)\b|only one usage of each socket address", re.I
)
_ERROR_LINE = re.compile(r"^(ERROR\b|[\w.]*(Error|Exception)\b)")
_POLL_INTERVAL = 0.05
_PR_SET_PDEATHSIG = 1


def free_loopback_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now (the OS picks it).

    Another process may take it before it is used; :class:`~tf_magics.local.LocalServer` retries
    when that happens.

    Returns
    -------
    int
        The port number.
    """
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def thread_counts() -> tuple[int, int]:
    """Generation and batch threads: half the usable CPUs (at most 4), and all of them (at most 8).

    Generating with a 135M model is bound by memory bandwidth, so more threads gain little and
    would compete with the kernel; prompt processing scales better.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus // 2)), max(1, min(8, cpus))


def _server_environment(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in _SERVER_SETTING_NAMES}
    env.update(HOST=LOOPBACK, PORT=str(port), PYTHONUNBUFFERED="1")
    return env


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when its parent thread dies (Linux).

    ``prctl`` is looked up here, in the parent, so the forked child only makes one foreign call
    (no library loading between fork and exec, which is unsafe with other threads running).
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # an unusual libc: fall back to stop() and the finalizer
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def preexec() -> None:
        # SIGKILL rather than SIGTERM: uvicorn's graceful shutdown would wait for a running
        # non-streamed generation, and the server has nothing to save.
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


@dataclass
class _Job:
    run: Callable[[], subprocess.Popen[bytes]]
    done: threading.Event = field(default_factory=threading.Event)
    result: subprocess.Popen[bytes] | None = None
    error: BaseException | None = None


class _Launcher:
    """Forks children from a thread that lives as long as the process.

    PR_SET_PDEATHSIG fires when the forking *thread* exits, so a server started from a
    short-lived worker thread would be killed as soon as that thread finished. The main thread
    forks directly; any other thread hands the fork to one daemon thread that never exits.
    """

    def __init__(self) -> None:
        self._jobs: SimpleQueue[_Job] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def spawn(self, run: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        if threading.current_thread() is threading.main_thread():
            return run()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name="tf_magics-local-launcher", daemon=True
                )
                self._thread.start()
        job = _Job(run)
        self._jobs.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job.result = job.run()
            except BaseException as error:  # handed back to the waiting thread
                job.error = error
            finally:
                job.done.set()


_LAUNCHER = _Launcher()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if process.poll() is not None:
        return
    if os.name == "posix":
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)  # its own session: process group id == pid
    elif sig == signal.SIGTERM:
        process.terminate()
    else:
        process.kill()


def terminate(
    process: subprocess.Popen[bytes], grace: float, log_dir: str | None, owner: int
) -> None:
    """End the server's process group (SIGTERM, then SIGKILL after ``grace`` seconds).

    Only the process that started the server does this: a child forked from the kernel (which
    inherits the :class:`~tf_magics.local.LocalServer` and its finalizer) must not stop the
    kernel's server when it exits.
    """
    if os.getpid() != owner:
        return
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        _signal_group(process, getattr(signal, "SIGKILL", signal.SIGTERM))
        with contextlib.suppress(subprocess.TimeoutExpired):  # a process that survives SIGKILL
            process.wait(grace)
    if log_dir is not None:
        shutil.rmtree(log_dir, ignore_errors=True)


def _error_line(log: str) -> str:
    """The most telling line of a server log: the last error line, else the last line."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if _ERROR_LINE.match(line)]
    line = (errors or lines or ["its log is empty"])[-1]
    return line if len(line) <= 300 else line[:297] + "..."


def _answers(port: int, timeout: float) -> bool:
    import http.client

    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request("GET", "/v1/models")
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def spawn_server(command: list[str], log_path: Path, port: int) -> subprocess.Popen[bytes]:
    """Start the server process, detached from the kernel's signals and tied to its life.

    On POSIX the child gets its own session (so the ``SIGINT`` Jupyter sends to the kernel's
    process group misses it) and, on Linux, ``PR_SET_PDEATHSIG``; it is forked from the main
    thread or the long-lived launcher thread (see :class:`_Launcher`).

    Parameters
    ----------
    command
        The command line.
    log_path
        Where its output goes (stdout and stderr together).
    port
        The port it will listen on (also set as ``$PORT`` in its scrubbed environment).

    Returns
    -------
    subprocess.Popen
        The running process (not yet ready: see :func:`wait_until_ready`).
    """
    if os.name == "posix":
        # Its own session, so the SIGINT Jupyter sends to the kernel's group misses it.
        isolation: dict[str, Any] = {
            "start_new_session": True,
            "preexec_fn": _die_with_parent(),
        }
    else:
        isolation = {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}

    def popen() -> subprocess.Popen[bytes]:
        with open(log_path, "wb") as log:
            return subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_server_environment(port),
                **isolation,
            )

    return _LAUNCHER.spawn(popen)


def wait_until_ready(
    process: subprocess.Popen[bytes], port: int, log_path: Path, *, began: float, timeout: float
) -> bool:
    """Wait until the server started at ``began`` answers on ``port``.

    Parameters
    ----------
    process
        The server process.
    port
        The port it was told to listen on.
    log_path
        Its log file (read for the "running" line and for errors).
    began
        When the start began (:func:`time.monotonic`); the wait ends ``timeout`` seconds later.
    timeout
        The startup timeout in seconds.

    Returns
    -------
    bool
        ``True`` once it answers; ``False`` if it exited because the port was taken.

    Raises
    ------
    tf_magics.errors.ConfigurationError
        It exited for another reason, or did not answer in time.
    """
    deadline = began + timeout
    while True:
        code = process.poll()
        log = log_path.read_text(errors="replace")
        if code is not None:
            if _PORT_TAKEN.search(log):
                return False
            raise ConfigurationError(
                f"The local model server exited while starting (exit code {code}): "
                f"{_error_line(log)}",
                hint=f"Its full log is in {log_path}.",
            )
        # The log line proves that *this* process bound the port: another server already
        # listening there would answer the probe too.
        if _READY_LINE.search(log) and _answers(port, timeout=1.0):
            return True
        if time.monotonic() > deadline:
            raise ConfigurationError(
                "The local model server did not answer within "
                f"{timeout:g} s; last log line: {_error_line(log)}",
                hint=(
                    f"Its full log is in {log_path}; on a slow machine pass a longer "
                    "startup_timeout."
                ),
            )
        time.sleep(_POLL_INTERVAL)
