"""Start a kernel under a memory limit: ``python -m course_utils.grading.launcher MB -- CMD...``.

The grader prepends this to the kernel's command. It caps the address space of the kernel
process (``RLIMIT_AS``), then replaces itself with the kernel (``os.execvp``), so the kernel
keeps the launcher's process id and receives interrupts directly. Past the limit an
allocation raises ``MemoryError`` (or torch's ``RuntimeError``) inside the kernel instead
of exhausting the machine. Where ``resource`` is missing (Windows) no limit is set.
"""

from __future__ import annotations

import os
import sys

try:
    import resource
except ImportError:  # Windows: no limit
    resource = None

__all__ = ["limit_memory", "main"]


def limit_memory(megabytes: int) -> bool:
    """Cap this process's address space at ``megabytes``; False where that is unsupported."""
    if resource is None:
        return False
    limit = int(megabytes) * 2**20
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    return True


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3 or args[1] != "--":
        print("usage: python -m course_utils.grading.launcher MEGABYTES -- COMMAND [ARGS...]",
              file=sys.stderr)
        return 2
    if int(args[0]) > 0:
        limit_memory(int(args[0]))
    os.execvp(args[2], args[2:])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
