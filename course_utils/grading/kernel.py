"""One course kernel for grading: run a cell, read the reply, survive timeouts and crashes.

Pass/fail comes from the kernel's ``execute_reply`` (status ``ok`` / ``error``), never from
the cell's outputs, so a submission cannot hide an error by redirecting its display. A cell
that runs past its timeout is interrupted (and the kernel restarted if the interrupt does
not work); a kernel that dies is restarted. ``GradingKernel.generation`` counts the
starts, so the caller knows when the state is gone and cells must be replayed.

>>> CellRun("ok", "", "", 0.1).ok
True
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client import KernelManager

from course_utils.notebooks import KERNEL_NAME

__all__ = ["CellRun", "GradingKernel", "kernel_env", "DEFAULT_MEMORY_MB"]

DEFAULT_MEMORY_MB = 2048
_INTERRUPT_GRACE_S = 5.0
_POLL_S = 0.1


@dataclass
class CellRun:
    """What running one cell gave: ``status`` is ok, error, timeout or kernel_died."""

    status: str
    ename: str
    evalue: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def kernel_env() -> dict[str, str]:
    """The kernel's environment: one thread per library, no GUI backend, no colour codes."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                 "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
        env[name] = "1"
    env.update(MPLBACKEND="Agg", PYDEVD_DISABLE_FILE_VALIDATION="1", TERM="dumb")
    return env


class _LimitedKernelManager(KernelManager):
    """A KernelManager whose kernel starts under the launcher's memory limit."""

    memory_mb = DEFAULT_MEMORY_MB

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        if self.memory_mb <= 0:
            return cmd
        return [sys.executable, "-m", "course_utils.grading.launcher", str(self.memory_mb),
                "--", *cmd]


class GradingKernel:
    """A fresh course kernel in ``cwd``; use as a context manager.

    ``memory_mb`` caps the kernel's address space (0: no limit).
    """

    def __init__(self, cwd: Path, *, memory_mb: int = DEFAULT_MEMORY_MB,
                 kernel_name: str = KERNEL_NAME, startup_timeout: float = 120) -> None:
        self.cwd = Path(cwd)
        self.memory_mb = memory_mb
        self.kernel_name = kernel_name
        self.startup_timeout = startup_timeout
        self.generation = 0
        self._km: KernelManager | None = None
        self._kc: Any = None
        self._sockets: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> GradingKernel:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def start(self) -> None:
        """Start a new kernel process (the previous one, if any, is shut down)."""
        self._stop()
        if self._sockets is None:
            self._sockets = tempfile.TemporaryDirectory(prefix="course-kernel-")
        # IPC sockets in a private folder: no TCP port races between parallel kernels.
        km = _LimitedKernelManager(kernel_name=self.kernel_name, transport="ipc",
                                   ip=os.path.join(self._sockets.name, f"k{self.generation}"))
        km.memory_mb = self.memory_mb
        km.start_kernel(cwd=str(self.cwd), env=kernel_env(), stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=self.startup_timeout)
        except RuntimeError:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
            raise
        self._km, self._kc = km, kc
        self.generation += 1
        # exit() / quit() in a cell would end the kernel a moment later; keep it running.
        kc.execute("get_ipython().ask_exit = lambda: None", silent=True, store_history=False)

    def shutdown(self) -> None:
        """Stop the kernel and close its channels (safe to call twice)."""
        self._stop()
        if self._sockets is not None:
            self._sockets.cleanup()
            self._sockets = None

    def _stop(self) -> None:
        if self._kc is not None:
            self._kc.stop_channels()
        if self._km is not None:
            try:
                self._km.shutdown_kernel(now=True)
            except Exception:
                pass
            self._km.cleanup_resources()
        self._km = self._kc = None

    def run(self, code: str, timeout: float) -> CellRun:
        """Execute ``code``; on a timeout or a crash the kernel is usable again afterwards."""
        if self._kc is None:
            self.start()
        start = time.perf_counter()
        msg_id = self._kc.execute(code, store_history=True, allow_stdin=False,
                                  stop_on_error=False)
        reply = self._wait(msg_id, start + timeout)
        seconds = time.perf_counter() - start
        if reply == "died":
            self.start()
            return CellRun("kernel_died", "KernelDied",
                           "the kernel died (a crash, os._exit or running out of memory)",
                           seconds)
        if reply is None:
            self._km.interrupt_kernel()
            if self._wait(msg_id, time.perf_counter() + _INTERRUPT_GRACE_S) in (None, "died"):
                self.start()
            return CellRun("timeout", "Timeout", f"the cell ran longer than {timeout:g} s",
                           seconds)
        content = reply["content"]
        if content.get("status") == "ok":
            return CellRun("ok", "", "", seconds)
        return CellRun("error", str(content.get("ename", "Error")),
                       str(content.get("evalue", "")), seconds)

    def _wait(self, msg_id: str, deadline: float) -> dict | str | None:
        """The shell reply to ``msg_id``; ``"died"`` if the kernel died; None at the deadline."""
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return None
            try:
                reply = self._kc.get_shell_msg(timeout=min(_POLL_S, remaining))
            except queue.Empty:
                self._drain_iopub()
                if not self._km.is_alive():
                    return "died"
                continue
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                self._drain_iopub()
                return reply

    def _drain_iopub(self) -> None:
        """Discard output messages (we never read outputs; this bounds our memory)."""
        for _ in range(10_000):  # bounded: a cell printing in a loop must not trap us here
            try:
                self._kc.get_iopub_msg(timeout=0)
            except queue.Empty:
                return
