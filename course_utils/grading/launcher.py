"""Start a command under limits it cannot raise: ``python -P -m course_utils.grading.launcher``.

    python -P -m course_utils.grading.launcher --memory-mb 2048 --processes 256 \\
        --file-mb 256 --cpu-s 900 -- COMMAND [ARGS...]

Each limit is set with soft = hard, so the kernel cannot lift it again (raising a hard
limit needs a privilege the sandbox drops): address space (``RLIMIT_AS``), processes and
threads of the kernel's user (``RLIMIT_NPROC``), the size of any file it writes
(``RLIMIT_FSIZE``), CPU seconds (``RLIMIT_CPU``), and no core dumps. Then the launcher
replaces itself with the command (``os.execv``), so the kernel keeps its process id. A
limit of 0 leaves that resource alone. Where ``resource`` is missing (Windows) nothing is
limited. Run it with ``-P``: a ``course_utils`` folder in the working folder must not
shadow this module.

>>> limits_argv({"memory_mb": 100, "processes": 0})
['--memory-mb', '100', '--processes', '0']
"""

from __future__ import annotations

import argparse
import os
import sys

try:
    import resource
except ImportError:  # Windows: no limit
    resource = None

__all__ = ["LIMITS", "apply_limits", "limits_argv", "main"]

# option name -> (resource name, bytes per unit)
LIMITS = {
    "memory_mb": ("RLIMIT_AS", 2**20),
    "processes": ("RLIMIT_NPROC", 1),
    "file_mb": ("RLIMIT_FSIZE", 2**20),
    "cpu_s": ("RLIMIT_CPU", 1),
}


def limits_argv(limits: dict[str, int]) -> list[str]:
    """Command-line options for ``limits`` ({'memory_mb': 2048, ...})."""
    argv = []
    for name, value in limits.items():
        argv += [f"--{name.replace('_', '-')}", str(int(value))]
    return argv


def apply_limits(limits: dict[str, int]) -> list[str]:
    """Set each non-zero limit with soft = hard (never above an existing hard limit).

    Returns the names of the limits set (empty where ``resource`` is missing).
    """
    if resource is None:
        return []
    done = []
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for name, value in limits.items():
        if not value:
            continue
        which, unit = LIMITS[name]
        kind = getattr(resource, which)
        limit = int(value) * unit
        _, hard = resource.getrlimit(kind)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(kind, (limit, limit))
        done.append(which)
    return done


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" not in args or args.index("--") == len(args) - 1:
        print("usage: python -P -m course_utils.grading.launcher [--memory-mb MB] "
              "[--processes N] [--file-mb MB] [--cpu-s S] -- COMMAND [ARGS...]",
              file=sys.stderr)
        return 2
    split = args.index("--")
    parser = argparse.ArgumentParser(prog="launcher")
    for name in LIMITS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=0)
    options = parser.parse_args(args[:split])
    apply_limits({name: getattr(options, name) for name in LIMITS})
    command = args[split + 1:]
    os.execv(command[0], command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
