"""Drive a real Jupyter kernel from a test: run cells and collect their IOPub messages.

::

    with kernel_session() as kernel:
        run = kernel.run("%load_ext tf_magics")
        assert run.status == "ok", run.error
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.manager import KernelManager

__all__ = ["CellRun", "KernelSession", "kernel_session"]


@dataclass
class CellRun:
    """Everything a cell sent on IOPub, plus its execute_reply."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    reply: dict[str, Any] = field(default_factory=dict)

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        """The messages of these types (``"display_data"``, ``"stream"``...), in order."""
        return [m for m in self.messages if m["msg_type"] in types]

    @property
    def status(self) -> str:
        """The execute_reply's status: ``"ok"``, ``"error"`` or ``"aborted"``."""
        return str(self.reply.get("content", {}).get("status"))

    @property
    def error(self) -> dict[str, Any] | None:
        """The content of the cell's last ``error`` message (``ename``, ``evalue``...), if any."""
        errors = self.of_type("error")
        return errors[-1]["content"] if errors else None

    def outputs(self) -> list[dict[str, Any]]:
        """The cell's outputs as a notebook would keep them (display updates applied)."""
        outputs: list[dict[str, Any]] = []
        clear_pending = False
        for message in self.messages:
            kind, content = message["msg_type"], message["content"]
            if kind == "clear_output":
                if content.get("wait"):
                    clear_pending = True
                else:
                    outputs.clear()
                continue
            if kind in ("display_data", "stream", "error", "execute_result"):
                if clear_pending:
                    outputs.clear()
                    clear_pending = False
                outputs.append({"type": kind, **content})
            elif kind == "update_display_data":
                display_id = content.get("transient", {}).get("display_id")
                for output in outputs:
                    if output.get("transient", {}).get("display_id") == display_id:
                        output["data"] = content["data"]
        return outputs


class KernelSession:
    """One running kernel and a blocking client."""

    def __init__(self, manager: KernelManager) -> None:
        self.manager = manager
        self.client = manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def run(
        self,
        code: str,
        *,
        timeout: float = 60,
        on_message: Callable[[dict[str, Any], float], None] | None = None,
    ) -> CellRun:
        """Execute ``code`` and collect its IOPub messages until the kernel is idle."""
        msg_id = self.client.execute(code, allow_stdin=False)
        run = CellRun()
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"cell did not finish in {timeout} s: {code[:60]!r}")
            try:
                message = self.client.get_iopub_msg(timeout=min(remaining, 1))
            except queue.Empty:
                continue
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            if on_message is not None:
                on_message(message, time.monotonic())
            if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                break
            run.messages.append(message)
        run.reply = self.client.get_shell_msg(timeout=timeout)
        return run

    def restart(self) -> None:
        """Restart the kernel (a new process, same environment), as the front end's button does."""
        self.manager.restart_kernel(now=True)
        self.client.wait_for_ready(timeout=60)

    def close(self) -> None:
        """Stop the client's channels and the kernel (at once, without a polite shutdown)."""
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


@contextmanager
def kernel_session(
    *, env: dict[str, str] | None = None, cwd: str | None = None
) -> Iterator[KernelSession]:
    """Start a fresh kernel (python3 kernelspec of this environment) and stop it afterwards.

    ``env`` replaces the kernel's environment and ``cwd`` is its working directory (a front end
    starts a notebook's kernel in the notebook's folder, with ``JPY_SESSION_NAME`` naming it).
    """
    manager = KernelManager(kernel_name="python3")
    options: dict[str, Any] = {}
    if env is not None:
        options["env"] = env
    if cwd is not None:
        options["cwd"] = cwd
    manager.start_kernel(**options)
    session = KernelSession(manager)
    try:
        yield session
    finally:
        session.close()
