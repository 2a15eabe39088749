"""A real Jupyter kernel driven over its wire protocol, every IOPub message of a cell recorded.

The benchmark talks to the kernel like a frontend does (``jupyter_client``: shell requests, IOPub
subscription) and keeps, for each output message of a cell, its type, when it arrived here
(``time.perf_counter``), when the kernel sent it (the header's ``date``) and the size of its
serialized ``content`` frame exactly as it crossed the wire. Contents are not decoded except where a
figure needs them (status messages, the first message that shows content, the final output), so
reading hundreds of megabytes of naive-baseline traffic stays cheap on this side.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
from jupyter_client.manager import KernelManager
from jupyter_client.session import json_packer

__all__ = [
    "COMM_TYPES",
    "DISPLAY_TYPES",
    "OUTPUT_TYPES",
    "CellRun",
    "Kernel",
    "KernelError",
    "Record",
    "max_in_window",
]

#: Messages that put something in the cell's output area (their content bytes are counted).
OUTPUT_TYPES = frozenset(
    {"display_data", "update_display_data", "clear_output", "stream", "execute_result", "error"}
)
#: Messages a frontend must apply to the output area's display (counted for the rate limit).
DISPLAY_TYPES = frozenset({"display_data", "update_display_data", "clear_output"})
#: Widget traffic (a progress bar): recorded and counted by :attr:`CellRun.all_bytes`.
COMM_TYPES = frozenset({"comm_open", "comm_msg", "comm_close"})


@dataclass
class Record:
    """One IOPub output message of a cell."""

    msg_type: str
    arrived: float  # time.perf_counter() in this process
    sent: float  # header date (kernel clock), POSIX seconds
    size: int  # bytes of the serialized content frame
    content: bytes | None = None  # kept for stream and error messages only


@dataclass
class CellRun:
    """What one ``execute_request`` produced."""

    code: str
    started: float
    finished: float = 0.0
    records: list[Record] = field(default_factory=list)
    reply: dict[str, Any] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    first_content_at: float | None = None  # arrival of the first output showing the marker
    last_display: bytes | None = None  # content of the last display_data or update_display_data

    @property
    def wall(self) -> float:
        """Seconds from sending ``execute_request`` to receiving the cell's ``idle`` status."""
        return self.finished - self.started

    def count(self, *types: str) -> int:
        """How many output messages of these types."""
        return sum(r.msg_type in types for r in self.records)

    @property
    def iopub_bytes(self) -> int:
        """Sum of the serialized ``content`` of every output message (see :data:`OUTPUT_TYPES`)."""
        return sum(r.size for r in self.records if r.msg_type in OUTPUT_TYPES)

    @property
    def all_bytes(self) -> int:
        """Sum of the serialized ``content`` of every output and widget message."""
        return sum(r.size for r in self.records)

    @property
    def display_times(self) -> list[float]:
        """Kernel send times of the display messages, in order."""
        return [r.sent for r in self.records if r.msg_type in DISPLAY_TYPES]

    def final_output(self) -> dict[str, Any]:
        """What the cell shows at the end: the last ``display_data`` or ``update_display_data``."""
        return json.loads(self.last_display) if self.last_display is not None else {}

    @property
    def final_size(self) -> int:
        """Bytes of the final output's ``data`` bundle, serialized as the kernel serializes it."""
        return len(json_packer(self.final_output().get("data", {})))

    def value(self, name: str = "r") -> Any:
        """A ``user_expressions`` result, as a Python literal."""
        found = self.reply.get("user_expressions", {}).get(name, {})
        if found.get("status") != "ok":
            raise RuntimeError(f"user expression {name!r} failed: {found}")
        return ast.literal_eval(found["data"]["text/plain"])

    @property
    def stream_text(self) -> str:
        """Everything the cell printed (stdout and stderr)."""
        return "".join(
            json.loads(r.content).get("text", "")
            for r in self.records
            if r.msg_type == "stream" and r.content is not None
        )


class KernelError(RuntimeError):
    """A cell of the benchmark failed in the kernel."""


class Kernel:
    """A ``python3`` kernel started with ``jupyter_client``, its IOPub read by us.

    Parameters
    ----------
    cwd
        Working directory of the kernel (the repository root, so ``benchmarks`` imports there).
    env
        Extra environment variables for the kernel (``PYTHONPROFILEIMPORTTIME`` for diagnosis).
    """

    def __init__(self, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.cwd = cwd
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in shutdown())
            prefix="bench-kernel-", suffix=".log", delete=False
        )
        self.manager = KernelManager(kernel_name="python3")
        # The kernel's own stderr (a TCP warning, tracebacks) goes to a log, not into the table.
        self.manager.start_kernel(
            cwd=str(cwd),
            env={**os.environ, **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.client = self.manager.client()
        # Our own IOPub subscription: no receive high-water mark, contents left undecoded.
        self.client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        self._iopub = self.client.context.socket(zmq.SUB)
        self._iopub.setsockopt(zmq.RCVHWM, 0)
        self._iopub.setsockopt(zmq.SUBSCRIBE, b"")
        self._iopub.connect(self.client._make_url("iopub"))
        self._session = self.client.session
        self._wait_ready()

    # -- lifecycle

    @property
    def pid(self) -> int:
        """The kernel process id (from the provisioner)."""
        provisioner = self.manager.provisioner
        pid = getattr(provisioner, "pid", None) or provisioner.process.pid  # type: ignore[union-attr]
        return int(pid)

    def _wait_ready(self, timeout: float = 60.0) -> None:
        """Until the kernel answers and our IOPub subscription hears it (slow-joiner safe)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg_id = self.client.kernel_info()
            self._shell_reply(msg_id, timeout=deadline - time.monotonic())
            if self._iopub.poll(200):
                self._drain()
                return
        raise TimeoutError("the kernel did not become ready")

    def _drain(self) -> None:
        while self._iopub.poll(50):
            self._iopub.recv_multipart()

    def shutdown(self) -> None:
        """Stop the kernel we started (by its manager, hence by its pid)."""
        try:
            self._iopub.close(linger=0)
            self.client.stop_channels()
            self.manager.shutdown_kernel(now=False)
        finally:
            self._log.close()
            os.unlink(self._log.name)

    def log_text(self) -> str:
        """What the kernel process wrote to its stdout and stderr so far."""
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")

    # -- measuring

    def cpu_time(self) -> float:
        """User + system CPU seconds the kernel process has used so far."""
        try:
            import psutil

            times = psutil.Process(self.pid).cpu_times()
            return float(times.user + times.system)
        except ImportError:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def run(
        self,
        code: str,
        *,
        expressions: dict[str, str] | None = None,
        marker: str | None = None,
        timeout: float = 1800.0,
    ) -> CellRun:
        """Execute ``code`` and record its IOPub output until the kernel is idle again.

        Parameters
        ----------
        expressions
            ``user_expressions`` evaluated after the cell (read them with :meth:`CellRun.value`).
        marker
            Text whose first appearance in an output's ``text/plain`` sets
            :attr:`CellRun.first_content_at`.

        Raises
        ------
        KernelError
            When the cell raised.
        """
        cpu_before = self.cpu_time()
        run = CellRun(code, started=time.perf_counter())
        msg_id = self.client.execute(
            code, store_history=False, user_expressions=expressions or {}, allow_stdin=False
        )
        deadline = time.monotonic() + timeout
        while True:
            wait_ms = int(max(0.0, deadline - time.monotonic()) * 1000)
            if not self._iopub.poll(wait_ms):
                raise TimeoutError(f"no idle status after {timeout:g} s for: {code[:80]!r}")
            frames = self._iopub.recv_multipart()
            arrived = time.perf_counter()
            _, signed = self._session.feed_identities(frames)
            msg = self._session.deserialize(signed, content=False)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            msg_type = msg["header"]["msg_type"]
            raw: bytes = msg["content"]
            if msg_type == "status":
                if json.loads(raw).get("execution_state") == "idle":
                    run.finished = arrived
                    break
                continue
            if msg_type not in OUTPUT_TYPES and msg_type not in COMM_TYPES:
                continue
            record = Record(msg_type, arrived, msg["header"]["date"].timestamp(), len(raw))
            if msg_type in ("stream", "error"):
                record.content = raw
            if msg_type in ("display_data", "update_display_data"):
                run.last_display = raw
            if (
                marker is not None
                and run.first_content_at is None
                and msg_type in ("display_data", "update_display_data")
                and marker in json.loads(raw).get("data", {}).get("text/plain", "")
            ):
                run.first_content_at = arrived
            run.records.append(record)
        run.reply = self._shell_reply(msg_id, timeout=max(1.0, deadline - time.monotonic()))
        run.cpu_seconds = self.cpu_time() - cpu_before
        if run.reply.get("status") != "ok":
            trace = "\n".join(run.reply.get("traceback", []))
            raise KernelError(
                f"cell failed: {code[:200]!r}\n{run.reply.get('ename')}: "
                f"{run.reply.get('evalue')}\n{trace}\n{run.stream_text}"
            )
        return run

    def value(self, code: str, name: str = "r", expression: str = "_bench_result") -> Any:
        """Run ``code`` (which sets ``_bench_result``) and return that value."""
        return self.run(code, expressions={name: expression}).value(name)

    def _shell_reply(self, msg_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            msg = self.client.shell_channel.get_msg(timeout=max(0.0, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") == msg_id:
                content: dict[str, Any] = msg["content"]
                return content


def max_in_window(times: Sequence[float], window: float = 1.0) -> int:
    """The most events that fall within any ``window``-second span."""
    best, start = 0, 0
    ordered = sorted(times)
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best
