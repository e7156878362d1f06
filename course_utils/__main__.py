"""Command line: ``python -m course_utils doctor | build | check | grade | regenerate | bench``."""

from __future__ import annotations

import importlib
import sys

# sub-command -> (module that implements it, one-line help). Each module has main(argv) -> int.
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("course_utils.doctor", "check Python, torch, JupyterLab, widgets and the device"),
    "build": ("course_utils.grading.build", "generate exercises/ from solutions/"),
    "check": ("course_utils.grading.check", "run one exercise notebook and show its score"),
    "grade": ("course_utils.grading.grade", "grade a folder of submissions into a gradebook"),
    "report": ("course_utils.grading.instructor_report", "instructor report (plots) of a gradebook"),
    "regenerate": ("course_utils.notebooks", "re-execute and save notebooks (make notebooks)"),
    "bench": ("course_utils.bench", "time and measure every notebook (make bench)"),
}


def usage() -> str:
    lines = ["usage: python -m course_utils COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<11} {text}" for name, (_, text) in COMMANDS.items()]
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
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
