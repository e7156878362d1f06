"""The grader's command lines: ``grade``, its sub-command ``grade merge``, and ``report``.

    python -m course_utils grade SUBMISSIONS --out OUT [--shard I/N] [options]
    python -m course_utils grade merge OUT_1 ... OUT_N --out MERGED
    python -m course_utils report OUT

Everything below the command line (grading, sharding, merging, the report) is a library
function with explicit arguments that prints nothing; printing and exit codes live here.

>>> "merge" in grade_parser().format_help()
True
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from course_utils._paths import SOLUTIONS
from course_utils.grading import grade, gradebook, instructor_report, sandbox, shard
from course_utils.grading.intake import read_roster
from course_utils.grading.kernel import DEFAULT_MEMORY_MB
from course_utils.grading.shard import shard_argument

__all__ = ["grade_parser", "grade_main", "merge_main", "report_main"]

#: Parts of the command line that do not change a grade (all other options must agree).
_NOT_OPTIONS = {"submissions", "out", "shard", "jobs", "solutions", "roster", "command"}
_GRADE = "python -m course_utils grade"
_USAGE = (f"{_GRADE} [-h] SUBMISSIONS --out OUT [options]\n"
          f"       {_GRADE} merge OUT_1 ... OUT_N --out MERGED")
_MERGE = "combine the outputs of `grade --shard I/N` (I = 1..N) into one gradebook"


def _grading_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="where the gradebook goes (required)")
    parser.add_argument("--solutions", type=Path, default=SOLUTIONS)
    parser.add_argument("--jobs", type=int, default=1, help="notebooks graded at once")
    parser.add_argument("--timeout", type=float, default=grade.DEFAULT_TIMEOUT_S,
                        help="seconds per cell (a cell's metadata.course_utils.timeout wins)")
    parser.add_argument("--notebook-timeout", type=float, default=grade.DEFAULT_NOTEBOOK_TIMEOUT_S,
                        help="seconds per notebook, kernel restarts included")
    parser.add_argument("--memory-mb", type=int, default=DEFAULT_MEMORY_MB,
                        help="address-space limit per kernel in MB (0: none)")
    parser.add_argument("--shard", type=shard_argument, metavar="I/N",
                        help="grade only shard I of N (1-based) of the learners; then `grade merge`")
    parser.add_argument("--roster", type=Path, help="student ids, one per line: absent "
                        "learners get a 'missing' row")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="grade without bubblewrap (learner code is NOT isolated)")


def _merge_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("outputs", nargs="+", type=Path, help="the shards' --out folders")
    parser.add_argument("--out", type=Path, required=True, help="a new folder for the result")
    return parser


class _AnyWord:
    """The sub-commands' names, yet accepting every word: one that names no sub-command is
    the grading form's first argument."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = names

    def __contains__(self, word: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)


class _SubCommands(argparse._SubParsersAction):
    """The first word of ``grade``: a listed sub-command (``merge``), or else the first of
    the grading form's arguments (``grade SUBMISSIONS --out OUT``), parsed by ``form``."""

    form: argparse.ArgumentParser

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.choices = _AnyWord(self._name_parser_map)  # argparse checks the first word here

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Sequence[str], option_string: str | None = None) -> None:
        if values[0] in self._name_parser_map:
            super().__call__(parser, namespace, values, option_string)
        else:  # options given before SUBMISSIONS are in ``namespace`` already
            self.form.parse_args(values, namespace)


def grade_parser() -> argparse.ArgumentParser:
    """The parser of ``grade`` and ``grade merge`` (``args.command`` is None or "merge")."""
    parser = argparse.ArgumentParser(prog=_GRADE, usage=_USAGE, description=grade.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _grading_options(parser)
    commands = parser.add_subparsers(action=_SubCommands, dest="command", required=True,
                                     metavar="SUBMISSIONS", help="one folder per learner; or:")
    _merge_arguments(commands.add_parser("merge", prog=f"{_GRADE} merge", help=_MERGE,
                                         description=_MERGE[0].upper() + _MERGE[1:] + "."))
    commands.form = argparse.ArgumentParser(prog=_GRADE, usage=_USAGE, description=grade.__doc__,
                                            formatter_class=argparse.RawDescriptionHelpFormatter)
    commands.form.add_argument("submissions", type=Path, help="one folder per learner")
    _grading_options(commands.form)
    return parser


def grade_main(argv: list[str] | None = None) -> int:
    """``python -m course_utils grade`` (and ``grade merge``)."""
    parser = grade_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "merge":
        return _merge(args)
    if args.out is None:
        parser.error("the following arguments are required: --out")
    if not args.submissions.is_dir():
        print(f"{args.submissions}: not a folder of learner folders", file=sys.stderr)
        return 2
    if args.no_sandbox:
        print(sandbox.UNPROTECTED, file=sys.stderr)
    elif not sandbox.available():
        print(f"The sandbox is not available: {sandbox.why_unavailable()}.\nRefusing to run "
              "learner code unsandboxed; install bubblewrap, or pass --no-sandbox to grade "
              "anyway (see what that leaves unprotected with --no-sandbox).", file=sys.stderr)
        return 2
    roster = read_roster(args.roster) if args.roster else []
    options = {k: v for k, v in vars(args).items() if k not in _NOT_OPTIONS}
    with shard.sharded(args.shard, args.submissions, args.out, args.solutions, options,
                       roster) as include:  # without --shard: every learner
        results = grade.grade_submissions(args.submissions, args.out, solutions=args.solutions,
                                          jobs=args.jobs, timeout=args.timeout,
                                          memory_mb=args.memory_mb,
                                          notebook_timeout=args.notebook_timeout,
                                          sandboxed=not args.no_sandbox, roster=roster,
                                          include=include, progress=True)
    if args.shard is not None:
        print(shard.summary(args.out))
    statuses = [r.status for r in results]
    print(f"{len(results)} row(s): " + ", ".join(
        f"{statuses.count(s)} {s}" for s in dict.fromkeys(statuses)))
    print(f"gradebook: {gradebook.gradebook_path(args.out)}; feedback: "
          f"{args.out / gradebook.FEEDBACK}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    try:
        warnings = shard.merge_outputs(args.outputs, args.out)
    except shard.ShardError as error:
        print(f"grade merge: {error}", file=sys.stderr)
        return 2
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"merged {len(args.outputs)} shard(s) into {gradebook.gradebook_path(args.out)}")
    return 0


def merge_main(argv: list[str]) -> int:
    """``python -m course_utils grade merge OUT_1 ... OUT_N --out MERGED``."""
    parser = _merge_arguments(argparse.ArgumentParser(prog=f"{_GRADE} merge",
                                                      description=_MERGE[0].upper() + _MERGE[1:]))
    return _merge(parser.parse_args(argv))


def report_main(argv: list[str] | None = None) -> int:
    """``python -m course_utils report OUT``: the instructor report of a grading output."""
    parser = argparse.ArgumentParser(prog="python -m course_utils report",
                                     description=instructor_report.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the --out folder of grade or grade merge")
    parser.add_argument("--output", type=Path, help="where the page goes (OUT/report.html)")
    args = parser.parse_args(argv)
    if not gradebook.is_output(args.out):
        print(f"{args.out}: no {gradebook.GRADEBOOK} or {gradebook.RESULTS}/ here; pass the "
              "folder that `python -m course_utils grade ... --out` wrote", file=sys.stderr)
        return 2
    target = instructor_report.write_report(args.out, args.output)
    print(f"instructor report: {target}")
    return 0
