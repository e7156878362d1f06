"""The grading kernel's sandbox: bubblewrap (``bwrap``) namespaces and an unprivileged uid.

``wrap(argv, ...)`` turns the kernel's command into one that runs it

- in new PID, IPC, UTS, network and cgroup namespaces (no network, no view of the
  grader's or other kernels' processes); ``--die-with-parent``;
- on a read-only view of the system libraries, the interpreter's installation
  (``sys.prefix``, ``sys.base_prefix``) and the ``course_utils`` package: nothing else of
  the host, so no ``solutions/``, submissions, output folder or other kernels' sockets;
- with one writable folder, the scratch folder (``/home/learner``, also behind ``/tmp``
  and ``/dev/shm``), and the kernel's own socket folder (``/run/kernel``);
- as an unprivileged user: run as root, bwrap sets the mounts up and ``setpriv`` drops to a
  uid of its own for each kernel (no capabilities, ``no_new_privs``); run as another user,
  bwrap maps that user to uid 65534 in a new user namespace.

>>> SANDBOX_HOME
'/home/learner'
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

__all__ = ["SANDBOX_HOME", "SANDBOX_SOCKETS", "UNPROTECTED", "available", "why_unavailable",
           "wrap", "next_uid", "read_only_paths"]

SANDBOX_HOME = "/home/learner"
SANDBOX_SOCKETS = "/run/kernel"
_UID_BASE, _UID_COUNT = 970_000, 1000  # one uid per kernel, reused after 1000 kernels
_uid_lock = threading.Lock()
_uid_next = [0]
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf",
        "alternatives", "fonts", "mime.types", "ssl/certs")

UNPROTECTED = """\
WARNING: grading WITHOUT the sandbox (--no-sandbox). Learner code runs as this user, with:
  - read and write access to every file this user can reach (solutions/, other learners'
    submissions, the output folder, the grader itself);
  - the network, and a view of every process on the machine (/proc);
  - processes that can outlive grading (a child in a new session) and signal the grader;
  - no limit on the number of processes.
Limits on memory, file size and CPU time, the per-cell and per-notebook timeouts, the
verdict checks (canaries, nonces, hook audit) and the hidden-test rules still apply."""


def next_uid() -> int:
    """A uid for the next kernel (distinct for every kernel running at the same time)."""
    with _uid_lock:
        uid = _UID_BASE + _uid_next[0] % _UID_COUNT
        _uid_next[0] += 1
    return uid


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def read_only_paths() -> list[str]:
    """Host paths the kernel sees read-only: libraries, the interpreter, ``course_utils``."""
    import course_utils

    package = Path(course_utils.__file__).resolve().parent
    paths = ["/usr", *(f"/{d}" for d in ("lib", "lib32", "lib64", "bin", "sbin")
                       if Path(f"/{d}").exists() and not Path(f"/{d}").is_symlink())]
    paths += [f"/etc/{name}" for name in _ETC if Path(f"/etc/{name}").exists()]
    for prefix in {sys.prefix, sys.base_prefix, str(Path(sys.executable).resolve().parents[1])}:
        paths.append(str(Path(prefix).resolve()))
        if Path(prefix) != Path(prefix).resolve():
            paths.append(prefix)
    paths.append(str(package))
    return sorted(set(paths))


def _parents(paths: list[str]) -> list[str]:
    """Every ancestor folder of ``paths`` (bwrap would create them with mode 0700)."""
    parents = {str(p) for path in paths for p in Path(path).parents if str(p) != "/"}
    return sorted(parents, key=lambda p: (p.count("/"), p))


def wrap(argv: list[str], scratch: Path, sockets: Path, uid: int,
         info_fd: int | None = None) -> list[str]:
    """The command that runs ``argv`` in the sandbox (see the module docstring).

    ``info_fd``: bwrap writes ``{"child-pid": N}`` there (the host pid of the sandbox's init).
    """
    bwrap = shutil.which("bwrap") or "bwrap"
    command = [bwrap, *(["--info-fd", str(info_fd)] if info_fd is not None else []),
               "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
               "--unshare-net", "--unshare-cgroup-try", "--hostname", "grader"]
    if not _is_root():
        command += ["--unshare-user", "--uid", "65534", "--gid", "65534"]
    # /tmp first: the read-only views mounted after it stay visible even when the course
    # (or its .venv) lives under /tmp, as in a fresh clone there.
    command += ["--proc", "/proc", "--dev", "/dev",
                "--bind", str(scratch / ".tmp"), "/tmp",
                "--bind", str(scratch / ".shm"), "/dev/shm"]
    paths = read_only_paths()
    mounts = [p for p in paths if Path(p).exists()]
    for folder in _parents([*mounts, SANDBOX_HOME, SANDBOX_SOCKETS]):
        if folder not in mounts and folder not in ("/tmp", "/dev", "/proc"):
            command += ["--perms", "0755", "--dir", folder]
    for path in mounts:
        command += ["--ro-bind", path, path]
    for name in ("lib", "lib32", "lib64", "bin", "sbin"):
        target = Path(f"/{name}")
        if target.is_symlink():
            command += ["--symlink", os.readlink(target), f"/{name}"]
    command += ["--bind", str(scratch), SANDBOX_HOME,
                "--bind", str(sockets), SANDBOX_SOCKETS,
                "--chdir", SANDBOX_HOME, "--"]
    if _is_root():
        command += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                    "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--"]
    return command + list(argv)


def prepare_scratch(scratch: Path, uid: int) -> None:
    """Create the scratch folder's ``.tmp`` and ``.shm`` and hand it all to ``uid``."""
    for sub in (scratch, scratch / ".tmp", scratch / ".shm"):
        sub.mkdir(exist_ok=True)
        os.chmod(sub, 0o700)
        if _is_root():
            os.chown(sub, uid, uid)


@functools.lru_cache(maxsize=1)
def why_unavailable() -> str:
    """'' when the sandbox works here, else the reason (probed once per process)."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux (this is {sys.platform})"
    if shutil.which("bwrap") is None:
        return "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    if _is_root() and shutil.which("setpriv") is None:
        return "setpriv is not installed (Debian/Ubuntu: apt-get install util-linux)"
    import tempfile

    with tempfile.TemporaryDirectory(prefix="course-probe-") as tmp:
        scratch, sockets = Path(tmp) / "s", Path(tmp) / "k"
        uid = next_uid()
        prepare_scratch(scratch, uid)
        sockets.mkdir()
        command = wrap([sys.executable, "-P", "-c", "import course_utils, os; print(os.getuid())"],
                       scratch, sockets, uid)
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"bwrap failed to start: {error}"
    if done.returncode != 0:
        return f"bwrap failed: {done.stderr.strip()[-300:]}"
    if done.stdout.strip() == "0":
        return "the sandboxed process still ran as root"
    return ""


def available() -> bool:
    """True when kernels can be sandboxed on this machine."""
    return why_unavailable() == ""
