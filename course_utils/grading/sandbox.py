"""The grading kernel's sandbox: bubblewrap (``bwrap``) namespaces, a system-call filter, an
unprivileged uid of its own and size-capped scratch space.

``wrap(argv, ...)`` turns the kernel's command into one that runs it

- in new PID, IPC, UTS, network and cgroup namespaces (no network, no view of the
  grader's or other kernels' processes); ``--die-with-parent``;
- under ``seccomp``'s filter (no kernel keyring, ``ptrace``, ``perf_event_open``, new
  namespaces, mounts ...), passed to bwrap as ``--seccomp FD``;
- on a read-only view of the system libraries, the interpreter's installation
  (``sys.prefix``, ``sys.base_prefix``) and the ``course_utils`` package: nothing else of
  the host, so no ``solutions/``, submissions, output folder or other kernels' sockets;
- with its own memory-backed scratch space: ``/home/learner``, ``/tmp`` and ``/dev/shm`` are
  three fresh tmpfs of at most ``scratch_mb`` MiB each (``--size``), so a learner who fills
  them gets "No space left on device" in their own cells and nobody else notices; the
  entries of the host's scratch folder (the notebook) appear read-only in ``/home/learner``;
  the kernel's socket folder (``/run/kernel``) is the one host folder it can write to, until
  it has started (``kernel`` then hands the folder back to root);
- as an unprivileged user: run as root, bwrap sets the mounts up and ``setpriv`` drops to a
  uid of its own for each kernel (no capabilities, ``no_new_privs``); ``next_uid`` hands
  out each uid to one kernel on the whole machine at a time (a lock file per uid, held by
  ``flock``, so the kernels of two graders never share ``RLIMIT_NPROC``, and a grader that
  dies frees its uids); run as another user, bwrap maps that user to uid 65534 in a new
  user namespace.

>>> SANDBOX_HOME, DEFAULT_SCRATCH_MB
('/home/learner', 256)
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from course_utils.grading import seccomp

try:
    import fcntl
except ImportError:  # Windows: never sandboxed
    fcntl = None

__all__ = ["SANDBOX_HOME", "SANDBOX_SOCKETS", "UNPROTECTED", "DEFAULT_SCRATCH_MB", "UID_LOCKS",
           "available", "why_unavailable", "wrap", "next_uid", "release_uid", "read_only_paths"]

SANDBOX_HOME = "/home/learner"
SANDBOX_SOCKETS = "/run/kernel"
DEFAULT_SCRATCH_MB = 256  # each of /home/learner, /tmp and /dev/shm, per kernel
UID_LOCKS = "/run/course-grader/uids"  # one lock file per sandbox uid, for every grader here
_UID_BASE, _UID_COUNT = 970_000, 1000  # at most 1000 kernels at once on one machine
_uid_lock = threading.Lock()
_uid_next = [0]
_uid_held: dict[int, int] = {}  # uid -> the descriptor of its locked file, in this process
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf",
        "alternatives", "fonts", "mime.types", "ssl/certs")

UNPROTECTED = """\
WARNING: grading WITHOUT the sandbox (--no-sandbox). Learner code runs as this user, with:
  - read and write access to every file this user can reach (solutions/, other learners'
    submissions, the output folder, the grader itself);
  - the network, and a view of every process on the machine (/proc);
  - processes that can outlive grading (a child in a new session) and signal the grader;
  - no limit on the number of processes, no system-call filter, no cap on disk space.
Limits on memory, file size and CPU time, the per-cell and per-notebook timeouts, the
verdict checks (canaries, nonces, hook audit) and the hidden-test rules still apply."""


def next_uid(locks: str | Path = UID_LOCKS) -> int:
    """A uid no other kernel on this machine holds, by any grader, until ``release_uid``.

    Run as root, the uid is held by an ``flock`` on ``locks/UID`` (the lock goes with the
    process that holds it, so a crashed grader's uids are free again), and a uid some process
    still runs as (a straggler, a grader without these locks) is skipped. As another user
    the uid is unused (the kernel is uid 65534 in a user namespace): a counter.
    """
    if not _is_root() or fcntl is None:
        with _uid_lock:
            _uid_next[0] += 1
            return _UID_BASE + (_uid_next[0] - 1) % _UID_COUNT
    folder = _lock_folder(Path(locks))
    running = _running_uids()
    with _uid_lock:
        for step in range(_UID_COUNT):
            index = (_uid_next[0] + step) % _UID_COUNT
            uid = _UID_BASE + index
            if uid in _uid_held or uid in running:
                continue
            fd = os.open(folder / str(uid), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)  # another kernel's, in this grader or another one
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())  # who holds it, for an instructor
            _uid_held[uid] = fd
            _uid_next[0] = index + 1
            return uid
    raise RuntimeError(f"all {_UID_COUNT} sandbox uids ({_UID_BASE}-{_UID_BASE + _UID_COUNT - 1}) "
                       f"are held by kernels on this machine (lock files in {folder}); wait "
                       "for other graders to finish, or grade with fewer --jobs")


def release_uid(uid: int) -> None:
    """Free ``uid`` for another kernel (call it once every process of that uid is gone)."""
    with _uid_lock:
        fd = _uid_held.pop(uid, None)
    if fd is not None:
        os.close(fd)  # releases the flock


def _running_uids() -> set[int]:
    """The sandbox uids that some process on this machine runs as (real uid, from ``/proc``)."""
    found = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as handle:
                uid = int(next(line for line in handle if line.startswith(b"Uid:")).split()[1])
        except (OSError, ValueError, IndexError, StopIteration):
            continue  # gone meanwhile
        if _UID_BASE <= uid < _UID_BASE + _UID_COUNT:
            found.add(uid)
    return found


def _lock_folder(folder: Path) -> Path:
    """``folder``, created if missing; refuse one that someone else could write to."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(folder)
    if not os.path.isdir(folder) or os.path.islink(folder) or info.st_uid != os.geteuid() \
            or info.st_mode & 0o022:
        raise RuntimeError(f"{folder}: the sandbox's uid locks need a folder of their own, "
                           "owned by this user and writable by no one else; remove it (or fix "
                           "its owner and mode) and grade again")
    return folder


def disk_full_note(evalue: str, scratch_mb: int) -> str:
    """The learner's note when a cell's error says its sandbox's disk is full, else ''.

    ``scratch_mb``: the kernel's tmpfs size (0: not sandboxed, no note).

    >>> disk_full_note("[Errno 28] No space left on device: 'x.pt'", 256).split(":")[0]
    'a cell ran out of disk space'
    """
    if "No space left on device" not in evalue or not scratch_mb:
        return ""
    return (f"a cell ran out of disk space: the grader gives your code {scratch_mb} MiB in each "
            f"of {SANDBOX_HOME}, /tmp and /dev/shm; write smaller files, or delete those you no "
            "longer need")


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


def wrap(argv: list[str], scratch: Path, sockets: Path, uid: int, info_fd: int | None = None, *,
         seccomp_fd: int, scratch_mb: int = DEFAULT_SCRATCH_MB) -> list[str]:
    """The command that runs ``argv`` in the sandbox (see the module docstring).

    ``info_fd``: bwrap writes ``{"child-pid": N}`` there (the host pid of the sandbox's init).
    ``seccomp_fd``: ``seccomp.program_fd()``, passed to bwrap with the command.
    """
    bwrap = shutil.which("bwrap") or "bwrap"
    size = str(int(scratch_mb) * 2**20)
    command = [bwrap, *(["--info-fd", str(info_fd)] if info_fd is not None else []),
               "--seccomp", str(seccomp_fd),
               "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
               "--unshare-net", "--unshare-cgroup-try", "--hostname", "grader"]
    if not _is_root():
        command += ["--unshare-user", "--uid", "65534", "--gid", "65534"]
    # /tmp first: the read-only views mounted after it stay visible even when the course
    # (or its .venv) lives under /tmp, as in a fresh clone there.
    command += ["--proc", "/proc", "--dev", "/dev",
                "--perms", "1777", "--size", size, "--tmpfs", "/tmp",
                "--perms", "1777", "--size", size, "--tmpfs", "/dev/shm"]
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
    # the kernel is the only user in its mount namespace: 0777 lets its uid write
    command += ["--perms", "0777", "--size", size, "--tmpfs", SANDBOX_HOME,
                "--perms", "0777", "--dir", f"{SANDBOX_HOME}/.tmp"]
    for entry in sorted(Path(scratch).iterdir()):
        command += ["--ro-bind", str(entry), f"{SANDBOX_HOME}/{entry.name}"]
    command += ["--bind", str(sockets), SANDBOX_SOCKETS, "--chdir", SANDBOX_HOME, "--"]
    if _is_root():
        command += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                    "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--"]
    return command + list(argv)


def prepare_scratch(scratch: Path, uid: int) -> None:
    """Let the kernel (``uid``) read the host scratch folder's files: they appear read-only
    in its home, writes go to its tmpfs."""
    scratch.mkdir(exist_ok=True)
    for entry in [scratch, *scratch.rglob("*")]:
        if not entry.is_symlink():
            os.chmod(entry, 0o755 if entry.is_dir() else 0o644)


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

    try:
        uid = next_uid()
    except RuntimeError as error:  # the uid lock folder
        return str(error)
    try:
        filter_fd = seccomp.program_fd()
    except seccomp.UnsupportedArchitecture as error:
        release_uid(uid)
        return str(error)
    with tempfile.TemporaryDirectory(prefix="course-probe-") as tmp:
        scratch, sockets = Path(tmp) / "s", Path(tmp) / "k"
        try:
            prepare_scratch(scratch, uid)
            sockets.mkdir()
            command = wrap([sys.executable, "-P", "-c",
                            "import course_utils, os; print(os.getuid())"],
                           scratch, sockets, uid, seccomp_fd=filter_fd)
            done = subprocess.run(command, capture_output=True, text=True, timeout=60,
                                  pass_fds=(filter_fd,))
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"bwrap failed to start: {error}"
        finally:
            os.close(filter_fd)
            release_uid(uid)
    if done.returncode != 0:
        hint = " (bubblewrap 0.5 or later is needed)" if "Unknown option" in done.stderr else ""
        return f"bwrap failed{hint}: {done.stderr.strip()[-300:]}"
    if done.stdout.strip() == "0":
        return "the sandboxed process still ran as root"
    return ""


def available() -> bool:
    """True when kernels can be sandboxed on this machine."""
    return why_unavailable() == ""
