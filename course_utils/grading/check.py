"""Check your own exercise notebook: ``python -m course_utils check exercises/NN_topic.ipynb``.

Runs the notebook in a fresh course kernel exactly as the instructor's ``grade`` would (the
tests come from ``solutions/``, so an edited test changes nothing) and prints one line per
question: points, pass/fail and the message. Exit code 0 only when every question passes.

On Linux with bubblewrap installed the kernel runs in the same sandbox as ``grade``;
elsewhere (macOS, Windows, no bwrap) it runs without one, since it is your own code on your
own machine, and ``check`` says so in one line.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from course_utils._paths import SOLUTIONS
from course_utils.grading import sandbox
from course_utils.grading.assignment import load_assignments
from course_utils.grading.feedback import format_table
from course_utils.grading.grade import DEFAULT_TIMEOUT_S, grade_notebook
from course_utils.grading.kernel import DEFAULT_MEMORY_MB
from course_utils.grading.records import NotebookResult

__all__ = ["check_notebook", "main"]


def check_notebook(path: Path, solutions: Path = SOLUTIONS, *,
                   timeout: float = DEFAULT_TIMEOUT_S,
                   memory_mb: int = DEFAULT_MEMORY_MB) -> NotebookResult:
    """Grade one notebook with the tests of the solution of the same name."""
    path = Path(path)
    assignments = load_assignments(solutions)
    if path.name not in assignments:
        raise FileNotFoundError(
            f"{path.name}: no solution notebook of that name in {solutions} (known: "
            f"{', '.join(sorted(assignments)) or 'none'}); keep the exercise's file name")
    return grade_notebook(path, assignments[path.name], "you", timeout=timeout,
                          memory_mb=memory_mb)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook", type=Path, help="your exercise notebook")
    parser.add_argument("--solutions", type=Path, default=SOLUTIONS)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help="seconds per cell")
    parser.add_argument("--memory-mb", type=int, default=DEFAULT_MEMORY_MB)
    args = parser.parse_args(argv)
    try:
        readable = args.notebook.is_file() and os.access(args.notebook, os.R_OK)
    except OSError as error:  # a folder on the way that this user cannot enter
        print(f"{args.notebook}: cannot reach it ({error.strerror})", file=sys.stderr)
        return 2
    if not readable:
        reason = "no such file" if not args.notebook.exists() else "you cannot read it"
        print(f"{args.notebook}: {reason}", file=sys.stderr)
        return 2
    if not sandbox.available():
        print("Running without a sandbox (your own code on your own machine; the instructor's "
              "grader uses one).")
    try:
        result = check_notebook(args.notebook, args.solutions, timeout=args.timeout,
                                memory_mb=args.memory_mb)
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 2
    print(format_table(result))
    passed = result.status == "graded" and result.tests and all(
        t.status == "pass" for t in result.tests)
    print("\nAll questions pass." if passed else "\nNot every question passes yet.")
    return 0 if passed else 1
