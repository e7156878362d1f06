"""The system-call filter: its decisions (a small BPF interpreter), then a sandboxed kernel.

Issue 25 (red team, round 3): a kernel kept hidden tests in the kernel keyring, where the
clean rerun kernel and other learners' kernels found them.
"""

from __future__ import annotations

import ast
import errno
import struct
from pathlib import Path

import pytest

from course_utils.grading import sandbox, seccomp
from course_utils.grading.kernel import GradingKernel, live_kernels

KILL, ALLOW = 0x80000000, 0x7FFF0000
X86_64, AARCH64, I386 = 0xC000003E, 0xC00000B7, 0x40000003
CLONE_THREAD_FLAGS = 0x3D0F00  # what pthread_create passes to clone
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000


def run_filter(code: bytes, nr: int, arch: int, *args: int) -> int:
    """What the kernel would return for this call: a classic-BPF interpreter (seccomp's subset)."""
    data = struct.pack("<iIQ6Q", nr, arch, 0, *(list(args) + [0] * (6 - len(args))))
    program = [struct.unpack("<HBBI", code[i:i + 8]) for i in range(0, len(code), 8)]
    pc, acc = 0, 0
    while True:
        op, jt, jf, k = program[pc]
        pc += 1
        if op == 0x20:  # ld [k]
            acc = struct.unpack_from("<I", data, k)[0]
        elif op == 0x06:  # ret k
            return k
        elif op in (0x15, 0x35, 0x45):  # jeq, jge, jset
            taken = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[op]
            pc += jt if taken else jf
        else:
            raise AssertionError(f"unexpected instruction {op:#x}")


def denied(code: int) -> int:
    assert code & 0xFFFF0000 == 0x00050000, f"{code:#x} is not SECCOMP_RET_ERRNO"
    return code & 0xFFFF


@pytest.mark.parametrize("machine,arch", [("x86_64", X86_64), ("aarch64", AARCH64)])
def test_the_filter_denies_what_flatpak_denies_and_allows_the_rest(machine: str, arch: int) -> None:
    code = seccomp.program(machine)
    numbers = seccomp.SYSCALLS[machine][2]
    for name in ("keyctl", "add_key", "request_key", "ptrace", "perf_event_open", "unshare",
                 "setns", "mount", "umount2", "pivot_root", "bpf", "userfaultfd", "kexec_load",
                 "init_module", "finit_module", "delete_module"):
        assert denied(run_filter(code, numbers[name], arch)) == errno.EPERM, name
    for name in ("clone3", "fsopen", "io_uring_setup"):
        assert denied(run_filter(code, numbers[name], arch)) == errno.ENOSYS, name
    clone = numbers["clone"]
    assert run_filter(code, clone, arch, CLONE_THREAD_FLAGS) == ALLOW  # threads, fork
    assert run_filter(code, clone, arch, 0x11) == ALLOW  # fork: SIGCHLD
    for flags in (CLONE_NEWUSER | 0x11, CLONE_NEWNET, (1 << 32) | CLONE_NEWUSER):
        assert denied(run_filter(code, clone, arch, flags)) == errno.EPERM, hex(flags)
    personality = numbers["personality"]
    assert run_filter(code, personality, arch, 0) == ALLOW
    assert run_filter(code, personality, arch, 0xFFFFFFFF) == ALLOW  # asks, changes nothing
    assert denied(run_filter(code, personality, arch, 0x0040000)) == errno.EPERM  # no ASLR
    ioctl = numbers["ioctl"]
    assert denied(run_filter(code, ioctl, arch, 0, 0x5412)) == errno.EPERM  # TIOCSTI
    assert run_filter(code, ioctl, arch, 0, 0x5401) == ALLOW  # TCGETS
    for ordinary in (0, 1, 3, 63, 200, 260, 435 - 1):
        if ordinary not in numbers.values():
            assert run_filter(code, ordinary, arch) == ALLOW, ordinary


def test_a_foreign_architecture_or_x32_call_kills_the_process() -> None:
    code = seccomp.program("x86_64")
    assert run_filter(code, 250, I386) == KILL  # an int 0x80 call: i386 numbers
    assert run_filter(code, 0x40000000 | 39, X86_64) == KILL  # x32 getpid
    assert run_filter(seccomp.program("aarch64"), 219, X86_64) == KILL


def test_no_table_means_no_sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    held = dict(sandbox._uid_held)  # uids other tests in this process may hold
    with pytest.raises(seccomp.UnsupportedArchitecture, match="armv7l.*x86_64"):
        seccomp.program("armv7l")
    monkeypatch.setattr(seccomp.platform, "machine", lambda: "riscv64")
    sandbox.why_unavailable.cache_clear()
    try:
        assert "no system-call filter for this machine (riscv64" in sandbox.why_unavailable()
        assert not sandbox.available()
    finally:
        sandbox.why_unavailable.cache_clear()
    with pytest.raises(seccomp.UnsupportedArchitecture):  # never a kernel without the filter
        with GradingKernel(tmp_path / "scratch", sandboxed=True):
            pass
    assert live_kernels() == 0 and sandbox._uid_held == held  # the refused kernel kept no uid


ATTEMPTS = """
import ctypes, errno, os
_libc = ctypes.CDLL(None, use_errno=True)
def _call(nr, *args):
    ctypes.set_errno(0)
    r = _libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return errno.errorcode.get(ctypes.get_errno(), "none") if r == -1 else "ok"
_n = {NUMBERS}
_name = ctypes.c_char_p(b"hidden_test")
_child = os.fork()
if _child == 0:
    import time
    time.sleep(30)
    os._exit(0)
found = {{
    "keyctl": _call(_n["keyctl"], 0, -3),  # KEYCTL_GET_KEYRING_ID, the session keyring
    "add_key": _call(_n["add_key"], ctypes.cast(ctypes.c_char_p(b"user"), ctypes.c_void_p).value,
                     ctypes.cast(_name, ctypes.c_void_p).value, 0, 0, -2),
    "request_key": _call(_n["request_key"], 0, 0, 0, 0),
    "ptrace": _call(_n["ptrace"], 16, _child, 0, 0),  # PTRACE_ATTACH to its own child
    "perf_event_open": _call(_n["perf_event_open"], 0, 0, -1, -1, 0),
    "unshare": _call(_n["unshare"], 0x10000000),  # CLONE_NEWUSER
    "clone3": _call(_n["clone3"], 0, 0),
}}
os.kill(_child, 9)
os.waitpid(_child, 0)
"""

ORDINARY = """
import multiprocessing, subprocess, sys, threading, torch
_t = threading.Thread(target=lambda: None); _t.start(); _t.join()
with multiprocessing.get_context("fork").Pool(2) as _pool:
    assert _pool.map(abs, [-1, -2]) == [1, 2]
with multiprocessing.get_context("spawn").Pool(1) as _pool:
    assert _pool.map(abs, [-3]) == [3]
_x32 = subprocess.run([sys.executable, "-c", "import ctypes; ctypes.CDLL(None).syscall(0x40000027)"])
ordinary = (subprocess.run(["/bin/true"]).returncode, _x32.returncode,
            float(torch.ones(64, 64).matmul(torch.ones(64, 64)).sum()))
"""


@pytest.mark.slow
@pytest.mark.skipif(not sandbox.available(), reason="no bubblewrap sandbox here")
def test_a_sandboxed_kernel_cannot_reach_the_keyring_or_trace_yet_works(tmp_path: Path) -> None:
    numbers = seccomp.SYSCALLS[seccomp.architecture()][2]
    with GradingKernel(tmp_path / "scratch", sandboxed=True) as kernel:
        run = kernel.run(ATTEMPTS.format(NUMBERS=numbers), 30,
                         user_expressions={"found": "found"})
        assert run.ok, run.evalue
        found = ast.literal_eval(run.expressions["found"])
        assert found == {"keyctl": "EPERM", "add_key": "EPERM", "request_key": "EPERM",
                         "ptrace": "EPERM", "perf_event_open": "EPERM", "unshare": "EPERM",
                         "clone3": "ENOSYS"}
        run = kernel.run(ORDINARY, 120, user_expressions={"ordinary": "ordinary"})
        assert run.ok, f"{run.ename}: {run.evalue}"
        assert ast.literal_eval(run.expressions["ordinary"]) == (0, -31, 64.0**3)
