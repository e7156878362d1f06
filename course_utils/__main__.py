"""Command line: ``python -m course_utils COMMAND``, the commands grouped by who runs them.

- learners: ``doctor``, ``check``;
- instructors: ``build``, ``grade``, ``report``;
- maintainers: ``regenerate``, ``bench`` (in :mod:`course_utils.devtools`).
"""

from __future__ import annotations

import importlib
import sys

# audience -> {sub-command: (what implements it, one-line help)}. "module" means that
# module's main(argv) -> int; "module:function" names another function of the same shape.
GROUPS: dict[str, dict[str, tuple[str, str]]] = {
    "learners": {
        "doctor": ("course_utils.doctor", "check Python, torch, JupyterLab, widgets and the device"),
        "check": ("course_utils.grading.check", "run one exercise notebook and show its score"),
    },
    "instructors": {
        "build": ("course_utils.grading.build", "generate exercises/ from solutions/"),
        "grade": ("course_utils.grading.cli:grade_main", "grade a folder of submissions into a gradebook"),
        "report": ("course_utils.grading.cli:report_main", "instructor report (plots) of a gradebook"),
    },
    "maintainers": {
        "regenerate": ("course_utils.devtools.regenerate", "re-execute and save notebooks (make notebooks)"),
        "bench": ("course_utils.devtools.bench", "time and measure every notebook (make bench)"),
    },
}
COMMANDS: dict[str, tuple[str, str]] = {
    name: entry for commands in GROUPS.values() for name, entry in commands.items()
}


def usage() -> str:
    lines = ["usage: python -m course_utils COMMAND [ARGS...]"]
    for audience, commands in GROUPS.items():
        lines += ["", f"for {audience}:"]
        lines += [f"  {name:<11} {text}" for name, (_, text) in commands.items()]
    lines += ["", "Run 'python -m course_utils COMMAND --help' for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module, _, function = COMMANDS[command][0].partition(":")
    return int(getattr(importlib.import_module(module), function or "main")(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
