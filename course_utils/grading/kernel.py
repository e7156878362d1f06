"""One grading kernel: start it (sandboxed or not), run a cell, survive timeouts and crashes.

The kernel is started from the grader's own interpreter, never through a registered
kernelspec: ``sys.executable -P -m course_utils.grading.launcher LIMITS -- sys.executable
-P -m ipykernel_launcher -f CONNECTION``, wrapped by ``sandbox.wrap`` when sandboxed. It
talks over IPC sockets in a folder of its own. Pass/fail comes from the kernel's
``execute_reply`` plus the values of ``user_expressions`` (the grader's proof that a test
ran to its end, see ``grade``); outputs are never read, so the iopub channel is not even
connected. A cell that runs past its timeout, or a kernel that dies, ends the whole
sandbox (every process in it) and starts a fresh kernel; ``GradingKernel.generation``
counts the starts, so the caller knows when the state is gone and cells must be replayed.

>>> CellRun("ok", "", "", 0.1).ok
True
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

from course_utils.grading import sandbox, seccomp
from course_utils.grading.launcher import LIMITS, limits_argv

__all__ = ["CellRun", "GradingKernel", "KernelStartError", "kernel_env", "DEFAULT_MEMORY_MB",
           "DEFAULT_LIMITS", "live_kernels"]

DEFAULT_MEMORY_MB = 2048
DEFAULT_LIMITS = {"memory_mb": DEFAULT_MEMORY_MB, "processes": 256, "file_mb": 256,
                  "cpu_s": 1800, "scratch_mb": sandbox.DEFAULT_SCRATCH_MB}
_POLL_S = 0.05
_THREADS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
            "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
_live: set[int] = set()  # outer process ids of the kernels this process started, still alive
_live_lock = threading.Lock()


class KernelStartError(RuntimeError):
    """The kernel did not start (the message ends with its last log lines)."""


@dataclass
class CellRun:
    """What running one cell gave: ``status`` is ok, error, timeout or kernel_died."""

    status: str
    ename: str
    evalue: str
    seconds: float
    expressions: dict[str, str] = field(default_factory=dict)  # user_expressions: text/plain

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def grading_limits(memory_mb: int, notebook_timeout: float) -> dict[str, int]:
    """The launcher's limits for a grading kernel: ``memory_mb``, and CPU time for twice the
    notebook's time limit (at least the default)."""
    return dict(DEFAULT_LIMITS, memory_mb=memory_mb,
                cpu_s=int(max(DEFAULT_LIMITS["cpu_s"], 2 * notebook_timeout)))


def live_kernels() -> int:
    """How many kernels started by this process are not yet confirmed dead."""
    with _live_lock:
        return len(_live)


def kernel_env(home: str, sandboxed: bool) -> dict[str, str]:
    """The kernel's environment: one thread per library, no GUI backend, no colour codes.

    Sandboxed, nothing of the grader's environment is passed on (it may hold secrets).
    """
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"} if sandboxed else dict(
        os.environ)
    env.update({name: "1" for name in _THREADS})
    env.update(MPLBACKEND="Agg", PYDEVD_DISABLE_FILE_VALIDATION="1", TERM="dumb",
               PYTHONSAFEPATH="1", PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1")
    if sandboxed:
        env.update(HOME=home, USER="learner", LOGNAME="learner", TMPDIR="/tmp",
                   MPLCONFIGDIR=f"{home}/.tmp/matplotlib", IPYTHONDIR=f"{home}/.tmp/ipython",
                   JUPYTER_RUNTIME_DIR=f"{home}/.tmp/jupyter")
    return env


class GradingKernel:
    """A fresh kernel whose working folder is ``scratch``; use as a context manager.

    ``sandboxed`` runs it under ``sandbox.wrap`` (Linux with bubblewrap); ``limits`` are the
    launcher's (``memory_mb``, ``processes``, ``file_mb``, ``cpu_s``; 0 = none) and, sandboxed,
    ``scratch_mb``: the size of each of its tmpfs (``/home/learner``, ``/tmp``, ``/dev/shm``).
    Sandboxed, the kernel cannot write to ``scratch`` (its files appear read-only in its home).
    """

    def __init__(self, scratch: Path, *, sandboxed: bool, limits: dict[str, int] | None = None,
                 startup_timeout: float = 60, files: dict[str, bytes] | None = None) -> None:
        self.scratch = Path(scratch)
        self.files = dict(files or {})  # the scratch folder's content at every start
        self.sandboxed = sandboxed
        self.limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self.startup_timeout = startup_timeout
        self.generation = 0
        self._proc: subprocess.Popen | None = None
        self._kc: Any = None
        self._private: Path | None = None  # sockets and log: never visible to the kernel
        self._init_pid = 0
        self._uid = 0  # the sandbox uid this kernel holds (sandbox.next_uid), 0 when none
        # The built-in through which the grader's audit runs (``probe.install``): a random
        # name per start, bound to private copies of the probe's code.
        self.probe = ""

    @property
    def scratch_mb(self) -> int:
        """The size of each of the kernel's tmpfs in MiB (0 unsandboxed: no tmpfs)."""
        return int(self.limits.get("scratch_mb", sandbox.DEFAULT_SCRATCH_MB)) if self.sandboxed else 0

    def __enter__(self) -> GradingKernel:
        try:
            self.start()
        except BaseException:  # __exit__ will not run: free the uid and the private folder
            self.shutdown()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # ------------------------------------------------------------------ start and stop

    def start(self) -> None:
        """Start a new kernel (the previous one, with every process it started, is killed)."""
        self._stop()
        self._reset_scratch()
        self._private = Path(tempfile.mkdtemp(prefix="course-kernel-"))
        sockets = self._private / "sockets"
        sockets.mkdir()
        key = secrets.token_hex(32)
        inside = sandbox.SANDBOX_SOCKETS if self.sandboxed else str(sockets)
        kernel_file, info = write_connection_file(
            str(sockets / "kernel.json"), ip=f"{inside}/k", transport="ipc", key=key.encode())
        client_info = dict(info, ip=str(sockets / "k"))
        home = sandbox.SANDBOX_HOME if self.sandboxed else str(self.scratch)
        # Unsandboxed, RLIMIT_NPROC would count every process of this user (a browser's
        # too), so it is left alone there.
        limits = {name: value for name, value in self.limits.items() if name in LIMITS}
        limits = limits if self.sandboxed else dict(limits, processes=0)
        inner = [sys.executable, "-P", "-s", "-m", "course_utils.grading.launcher",
                 *limits_argv(limits), "--", sys.executable, "-P", "-s", "-m",
                 "ipykernel_launcher", "-f", f"{inside}/kernel.json",
                 "--HistoryManager.enabled=False", "--IPKernelApp.quiet=True"]
        if self.sandboxed:
            self._uid = sandbox.next_uid()  # released once the kernel is dead (_stop)
            sandbox.prepare_scratch(self.scratch, self._uid)
            os.chmod(sockets, 0o700)
            if os.geteuid() == 0:
                os.chown(sockets, self._uid, self._uid)
                os.chown(kernel_file, self._uid, self._uid)
        command, fds = inner, ()
        filter_fd = seccomp.program_fd() if self.sandboxed else -1  # raises where there is none
        info_read, info_write = os.pipe()  # after the filter: nothing to close if it raised
        if self.sandboxed:
            fds = (filter_fd, info_write)
            command = sandbox.wrap(inner, self.scratch, sockets, self._uid, info_fd=info_write,
                                   seccomp_fd=fds[0], scratch_mb=self.scratch_mb)
        log = open(self._private / "kernel.log", "wb")
        try:
            self._proc = subprocess.Popen(
                command, cwd=str(self.scratch), env=kernel_env(home, self.sandboxed),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                pass_fds=fds)
        finally:
            log.close()
            for fd in {*fds, info_write}:
                os.close(fd)
        self._init_pid = _read_init_pid(info_read) if self.sandboxed else 0
        with _live_lock:
            _live.add(self._proc.pid)
        kc = BlockingKernelClient()
        kc.load_connection_info(client_info)
        kc.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        self._kc = kc
        try:
            self._wait_ready()
        except KernelStartError:
            self._stop()
            raise
        if self.sandboxed and os.geteuid() == 0:  # its sockets exist: no more writes there
            for path in (sockets, Path(kernel_file)):
                os.chown(path, 0, 0)
        self.generation += 1

    def _reset_scratch(self) -> None:
        """Every start gets a pristine scratch folder: nothing a previous kernel wrote there
        (IPython startup files, config, ``.pth`` files ...) can run before the baseline."""
        if self.scratch.exists() and self.files:
            shutil.rmtree(self.scratch)
        self.scratch.mkdir(parents=True, exist_ok=True)
        for name, data in self.files.items():
            (self.scratch / name).write_bytes(data)

    def _wait_ready(self) -> None:
        deadline = time.perf_counter() + self.startup_timeout
        msg_id = self._kc.kernel_info()
        while time.perf_counter() < deadline:
            if self._proc.poll() is not None:
                raise KernelStartError(f"the kernel exited at start ({self._log_tail()})")
            try:
                reply = self._kc.get_shell_msg(timeout=_POLL_S)
            except queue.Empty:
                continue
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                probe = "grader_probe_" + secrets.token_hex(8)
                run = self.run("get_ipython().ask_exit = lambda: None\n"
                               "import course_utils.grading.probe\n"
                               "course_utils.grading.probe.import_libraries()\n"
                               f"course_utils.grading.probe.install({probe!r})",
                               self.startup_timeout,
                               store_history=False, _restart=False)
                if not run.ok:
                    raise KernelStartError(f"the kernel could not be prepared: {run.evalue}")
                self.probe = probe
                return
        raise KernelStartError(f"the kernel did not answer within {self.startup_timeout:g} s "
                               f"({self._log_tail()})")

    def _log_tail(self) -> str:
        try:
            with open(self._private / "kernel.log", "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - 600))
                return handle.read().decode("utf-8", "replace").strip() or "no log"
        except OSError:
            return "no log"

    def shutdown(self) -> None:
        """Kill the kernel and every process it started; safe to call twice."""
        self._stop()

    def _stop(self) -> None:
        if self._kc is not None:
            self._kc.stop_channels()
            self._kc = None
        if self._proc is not None:
            _kill_tree(self._proc, self._init_pid)
            with _live_lock:
                _live.discard(self._proc.pid)
            self._proc = None
        if self._uid:  # every process of that uid is gone
            sandbox.release_uid(self._uid)
            self._uid = 0
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)
            self._private = None

    # ------------------------------------------------------------------ running cells

    def run(self, code: str, timeout: float, *, user_expressions: dict[str, str] | None = None,
            store_history: bool = True, _restart: bool = True) -> CellRun:
        """Execute ``code``; after a timeout or a crash a fresh kernel is ready."""
        if self._kc is None:
            self.start()
        start = time.perf_counter()
        msg_id = self._kc.execute(code, store_history=store_history, allow_stdin=False,
                                  stop_on_error=False, user_expressions=user_expressions or {})
        reply = self._wait(msg_id, start + timeout)
        seconds = time.perf_counter() - start
        if reply in ("died", None):
            if _restart:
                self.start()
            if reply == "died":
                return CellRun("kernel_died", "KernelDied", "the kernel died (a crash, "
                               "os._exit, a killed process or running out of memory)", seconds)
            return CellRun("timeout", "Timeout", f"the cell ran longer than {timeout:g} s",
                           seconds)
        content = reply["content"]
        expressions = {}
        for name, value in (content.get("user_expressions") or {}).items():
            if isinstance(value, dict) and value.get("status") == "ok":
                expressions[name] = str(value.get("data", {}).get("text/plain", ""))
        if content.get("status") == "ok":
            return CellRun("ok", "", "", seconds, expressions)
        return CellRun("error", str(content.get("ename", "Error"))[:200],
                       str(content.get("evalue", "")), seconds, expressions)

    def _wait(self, msg_id: str, deadline: float) -> dict | str | None:
        """The shell reply to ``msg_id``; ``"died"`` if the kernel died; None at the deadline."""
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return None
            try:
                reply = self._kc.get_shell_msg(timeout=min(_POLL_S, remaining))
            except queue.Empty:
                if self._proc.poll() is not None:
                    return "died"
                continue
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                return reply


def _read_init_pid(fd: int) -> int:
    """The host pid of the sandbox's init, from bwrap's ``--info-fd`` (0 when unknown)."""
    data = b""
    try:
        with os.fdopen(fd, "rb") as handle:
            ready, _, _ = select.select([handle], [], [], 30)
            if ready:
                data = handle.read(4096)
        return int(json.loads(data or b"{}").get("child-pid", 0))
    except (OSError, ValueError):
        return 0


def _kill_tree(proc: subprocess.Popen, init_pid: int) -> None:
    """Kill the kernel and every process it started, and wait until they are gone.

    Sandboxed: killing the PID namespace's init makes the kernel kill every process in the
    namespace; its exit completes only once they are all gone, and then bwrap's outer
    process (``proc``, its parent, so the pid cannot be reused before) reaps it and exits.
    Unsandboxed: the process group (a child in a new session escapes it).
    """
    if init_pid and proc.poll() is None:
        try:
            os.kill(init_pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    else:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


