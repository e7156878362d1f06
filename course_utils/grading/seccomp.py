"""The kernel's system-call filter: a classic-BPF program for bubblewrap's ``--seccomp FD``.

Modelled on Flatpak's filter (``setup_seccomp`` in ``flatpak-run.c``), assembled here with
``struct`` (no libseccomp): every system call is allowed except

- the kernel keyring (``add_key``, ``keyctl``, ``request_key``): a key would outlive its
  kernel and reach the next one, or another learner's;
- debugging and profiling other processes (``ptrace``, ``process_vm_readv``/``writev``,
  ``perf_event_open``), new namespaces (``unshare``, ``setns``, ``clone`` with a
  ``CLONE_NEW*`` flag), mounts (``mount``, ``umount2``, ``pivot_root``, ``chroot``, the new
  mount API), ``bpf``, ``userfaultfd``, ``io_uring``, kernel modules, ``kexec``, NUMA
  memory policy, ``syslog``, ``acct``, ``quotactl``, ``personality`` other than the default,
  and faking terminal input (``TIOCSTI``/``TIOCLINUX``): denied with EPERM;
- ``clone3`` (its flags live in memory a filter cannot read) and the new mount API: ENOSYS,
  so the C library falls back to ``clone``, whose flags the filter checks.

A call made for another architecture (i386 or x32 on x86_64) kills the process. The map:
``RULES`` (what is denied and how), ``SYSCALLS`` (the numbers, per architecture),
``program`` (the filter as bytes), ``program_fd`` (a descriptor bwrap reads it from).

>>> len(program("x86_64")) % 8, len(program("aarch64")) > 0
(0, True)
"""

from __future__ import annotations

import errno
import os
import platform
import struct
import sys

__all__ = ["RULES", "SYSCALLS", "UnsupportedArchitecture", "architecture", "program",
           "program_fd"]

# (name, errno, argument check); a check denies only when the call's arguments match it
RULES: list[tuple[str, int, str]] = [
    *[(name, errno.EPERM, "") for name in (
        "add_key", "keyctl", "request_key", "ptrace", "process_vm_readv", "process_vm_writev",
        "perf_event_open", "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "bpf",
        "userfaultfd", "kexec_load", "kexec_file_load", "init_module", "finit_module",
        "delete_module", "syslog", "uselib", "acct", "modify_ldt", "quotactl", "quotactl_fd",
        "move_pages", "mbind", "get_mempolicy", "set_mempolicy", "migrate_pages")],
    *[(name, errno.ENOSYS, "") for name in (
        "clone3", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
        "mount_setattr", "io_uring_setup", "io_uring_enter", "io_uring_register")],
    ("clone", errno.EPERM, "namespace flags"),
    ("ioctl", errno.EPERM, "terminal input"),
    ("personality", errno.EPERM, "not the default"),
]

_COMMON = {"io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
           "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
           "fspick": 433, "clone3": 435, "mount_setattr": 442, "quotactl_fd": 443}
# machine -> (AUDIT_ARCH_*, the x32 bit or 0, {name: number}); from the kernel's unistd headers
SYSCALLS: dict[str, tuple[int, int, dict[str, int]]] = {
    "x86_64": (0xC000003E, 0x40000000, dict(_COMMON, **{
        "ioctl": 16, "clone": 56, "ptrace": 101, "syslog": 103, "uselib": 134, "personality": 135,
        "modify_ldt": 154, "pivot_root": 155, "chroot": 161, "acct": 163, "mount": 165,
        "umount2": 166, "init_module": 175, "delete_module": 176, "quotactl": 179, "mbind": 237,
        "set_mempolicy": 238, "get_mempolicy": 239, "kexec_load": 246, "add_key": 248,
        "request_key": 249, "keyctl": 250, "migrate_pages": 256, "unshare": 272,
        "move_pages": 279, "perf_event_open": 298, "setns": 308, "process_vm_readv": 310,
        "process_vm_writev": 311, "finit_module": 313, "kexec_file_load": 320, "bpf": 321,
        "userfaultfd": 323})),
    "aarch64": (0xC00000B7, 0, dict(_COMMON, **{
        "ioctl": 29, "umount2": 39, "mount": 40, "pivot_root": 41, "chroot": 51, "quotactl": 60,
        "acct": 89, "personality": 92, "unshare": 97, "kexec_load": 104, "init_module": 105,
        "delete_module": 106, "syslog": 116, "ptrace": 117, "add_key": 217, "request_key": 218,
        "keyctl": 219, "clone": 220, "mbind": 235, "get_mempolicy": 236, "set_mempolicy": 237,
        "migrate_pages": 238, "move_pages": 239, "perf_event_open": 241, "setns": 268,
        "process_vm_readv": 270, "process_vm_writev": 271, "finit_module": 273,
        "kexec_file_load": 294, "bpf": 280, "userfaultfd": 282})),
}
_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}
# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 \
    | 0x20000000 | 0x40000000
_TIOCSTI, _TIOCLINUX, _PER_LINUX, _PER_QUERY = 0x5412, 0x541C, 0, 0xFFFFFFFF
# classic BPF opcodes and seccomp return values
_LD, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_KILL_PROCESS, _ERRNO, _ALLOW = 0x80000000, 0x00050000, 0x7FFF0000
# offsets in struct seccomp_data: nr, arch, then the low 32 bits of args[0], args[1]
_NR, _ARCH, _ARG0, _ARG1 = 0, 4, 16, 24


class UnsupportedArchitecture(RuntimeError):
    """No system-call table for this machine: the sandbox refuses to run without a filter."""


def architecture(machine: str | None = None) -> str:
    """The table's name for ``machine`` (``platform.machine()`` by default), or raise.

    >>> architecture("amd64")
    'x86_64'
    """
    name = platform.machine() if machine is None else machine
    name = _ALIASES.get(name.lower(), name.lower())
    if name not in SYSCALLS or (machine is None and sys.maxsize < 2**32):
        raise UnsupportedArchitecture(
            f"the grader has no system-call filter for this machine ({name or 'unknown'}, "
            f"{'64' if sys.maxsize >= 2**32 else '32'}-bit Python); it knows "
            f"{', '.join(sorted(SYSCALLS))}. Grade on one of those, or add this architecture's "
            "numbers to course_utils/grading/seccomp.py")
    return name


def _check(kind: str, deny: int) -> list[tuple[int, int, int, int]]:
    """The instructions after a matching call number: each path ends in a return."""
    allow = (_RET, 0, 0, _ALLOW)
    if kind == "namespace flags":
        return [(_LD, 0, 0, _ARG0), (_JSET, 0, 1, _NAMESPACE_FLAGS), (_RET, 0, 0, deny), allow]
    if kind == "terminal input":
        return [(_LD, 0, 0, _ARG1), (_JEQ, 1, 0, _TIOCSTI), (_JEQ, 0, 1, _TIOCLINUX),
                (_RET, 0, 0, deny), allow]
    if kind == "not the default":
        return [(_LD, 0, 0, _ARG0), (_JEQ, 2, 0, _PER_LINUX), (_JEQ, 1, 0, _PER_QUERY),
                (_RET, 0, 0, deny), allow]
    return [(_RET, 0, 0, deny)]


def program(machine: str | None = None) -> bytes:
    """The filter as an array of ``struct sock_filter`` (what ``seccomp_export_bpf`` writes)."""
    audit_arch, x32_bit, numbers = SYSCALLS[architecture(machine)]
    code = [(_LD, 0, 0, _ARCH), (_JEQ, 1, 0, audit_arch), (_RET, 0, 0, _KILL_PROCESS),
            (_LD, 0, 0, _NR)]
    if x32_bit:
        code += [(_JGE, 0, 1, x32_bit), (_RET, 0, 0, _KILL_PROCESS)]
    for name, error, check in RULES:
        if name not in numbers:  # not a call on this architecture (uselib on aarch64)
            continue
        body = _check(check, _ERRNO | error)
        code += [(_JEQ, 0, len(body), numbers[name]), *body]
    code.append((_RET, 0, 0, _ALLOW))
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in code)


def program_fd(machine: str | None = None) -> int:
    """A pipe's read end holding ``program()``, for ``bwrap --seccomp FD``; close it after the
    start (the program, under 1 KiB, fits in the pipe's buffer)."""
    data = program(machine)
    read, write = os.pipe()
    try:
        os.write(write, data)
    finally:
        os.close(write)
    return read
