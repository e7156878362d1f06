"""Grade submissions on the solutions' skeleton (``python -m course_utils grade``).

    python -m course_utils grade SUBMISSIONS_DIR --out OUT_DIR [--jobs N] [--timeout S]

``SUBMISSIONS_DIR`` holds one folder per learner (its name is the student_id) with
notebooks named as in ``exercises/``. Each notebook is rebuilt on its solution: setup,
locked and test cells (hidden tests included) come from ``solutions/``; the learner's
answer cells are matched by grade_id (the last copy of a duplicated id wins); everything
else in the submission is ignored. The result goes to ``OUT_DIR/grades.csv``,
``OUT_DIR/results/<student>/<notebook>.json`` and ``OUT_DIR/feedback/<student>/<notebook>.html``.
Submissions are never modified: each is graded in a temporary copy of its folder.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from course_utils.grading import notebook_format as fmt
from course_utils.grading import shard
from course_utils.grading.build import ROOT, build_exercise
from course_utils.grading.kernel import DEFAULT_MEMORY_MB, CellRun, GradingKernel
from course_utils.grading.report import write_reports
from course_utils.notebooks import KERNEL_NAME

__all__ = [
    "DEFAULT_TIMEOUT_S", "TestResult", "NotebookResult", "CellOutcome", "Assignment",
    "load_assignments", "read_submission", "grade_notebook", "grade_submissions", "main",
]

DEFAULT_TIMEOUT_S = 60.0


@dataclass
class TestResult:
    """One graded question: ``status`` is pass, fail, error, timeout, kernel_died or missing."""

    grade_id: str
    points: float
    max_points: float
    status: str
    message: str
    seconds: float


@dataclass
class CellOutcome:
    """How one code cell of the rebuilt notebook ran (cell index as in the solution)."""

    index: int
    grade_id: str
    status: str
    ename: str


@dataclass
class NotebookResult:
    """One learner x notebook: ``status`` is graded, unreadable or unknown_notebook."""

    student_id: str
    notebook: str
    score: float
    max_score: float
    status: str
    tests: list[TestResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict, repr=False)
    cells: list[CellOutcome] = field(default_factory=list, repr=False)

    def to_json(self) -> dict:
        """The documented JSON record (plus ``notes``)."""
        record = {k: getattr(self, k) for k in ("student_id", "notebook", "score",
                                                 "max_score", "status")}
        record["tests"] = [asdict(t) for t in self.tests]
        record["notes"] = list(self.notes)
        return record


@dataclass
class Assignment:
    """A solution notebook prepared for grading."""

    name: str
    solution: nbformat.NotebookNode
    exercise: nbformat.NotebookNode

    @property
    def answer_ids(self) -> list[str]:
        return [fmt.grade_id(c) for c in self.solution.cells
                if c.cell_type == "code" and fmt.is_solution(c)]

    @property
    def max_score(self) -> float:
        return float(sum(fmt.nbgrader_meta(c)["points"] for c in self.solution.cells
                         if fmt.is_grade(c)))

    def visible_test(self, gid: str) -> str:
        """The test's source as learners see it (hidden tests removed)."""
        return next(c.source for c in self.exercise.cells if fmt.grade_id(c) == gid)


def load_assignments(solutions: Path) -> dict[str, Assignment]:
    """Every ``*.ipynb`` in ``solutions`` by file name (broken ones raise BuildError)."""
    found = {}
    for path in sorted(Path(solutions).glob("*.ipynb")):
        solution = nbformat.read(path, as_version=4)
        found[path.name] = Assignment(path.name, solution, build_exercise(solution, path.name))
    return found


def read_submission(path: Path) -> nbformat.NotebookNode:
    """Parse a submitted notebook; ``ValueError`` with a readable reason when it is not one."""
    data = Path(path).read_bytes()
    if not data.strip():
        raise ValueError("the file is empty")
    try:
        return nbformat.reads(data.decode("utf-8"), as_version=4)
    except UnicodeDecodeError:
        raise ValueError("the file is not text (not UTF-8)") from None
    except Exception as error:
        raise ValueError(f"not a Jupyter notebook: {type(error).__name__}: "
                         f"{str(error).splitlines()[0][:200] if str(error) else ''}") from None


def _answers(submission: nbformat.NotebookNode, wanted: list[str]) -> tuple[dict, list[str]]:
    """The learner's answer sources by grade_id (last copy wins) and notes about the match."""
    answers: dict[str, str] = {}
    counts: dict[str, int] = {}
    ignored = 0
    for cell in submission.cells:
        gid = fmt.grade_id(cell)
        if cell.get("cell_type") != "code":
            continue
        if gid in wanted:
            answers[gid] = cell.source
            counts[gid] = counts.get(gid, 0) + 1
        elif not gid:
            ignored += 1
    notes = [f"answer cell {gid!r} appears {n} times; the last copy was graded"
             for gid, n in counts.items() if n > 1]
    if ignored:
        notes.append(f"{ignored} code cell(s) without a grade_id were not run: only answer "
                     "cells are graded, so keep helper code inside them")
    notes += [f"answer cell {gid!r} is missing from the notebook" for gid in wanted
              if gid not in answers]
    kernel = submission.metadata.get("kernelspec", {}).get("name")
    if kernel and kernel != KERNEL_NAME:
        notes.append(f"the notebook asks for kernel {kernel!r}; it was graded with "
                     f"{KERNEL_NAME!r}")
    return answers, notes


def _message(run: CellRun, cell: dict) -> tuple[str, str]:
    """(test status, message) for a test cell that did not pass."""
    if run.status in ("timeout", "kernel_died"):
        status, text = run.status, run.evalue
    elif run.ename == "AssertionError":
        status, text = "fail", run.evalue or "an assert failed (no message)"
    elif run.ename == "NotImplementedError":
        status, text = "error", "not answered yet: the stub still raises NotImplementedError"
    else:
        status, text = "error", f"{run.ename}: {run.evalue}"
    hint = fmt.course_meta(cell).get("hint")
    return status, f"{text}\nHint: {hint}" if hint else text


def _timeout(cell: dict, default: float) -> float:
    return float(fmt.course_meta(cell).get("timeout", default))


def grade_notebook(path: Path, assignment: Assignment, student_id: str = "you", *,
                   timeout: float = DEFAULT_TIMEOUT_S,
                   memory_mb: int = DEFAULT_MEMORY_MB) -> NotebookResult:
    """Grade one submitted notebook against its assignment (see the module docstring)."""
    path = Path(path)
    result = NotebookResult(student_id, path.name, 0.0, assignment.max_score, "graded")
    try:
        submission = read_submission(path)
    except (OSError, ValueError) as error:
        result.status, result.notes = "unreadable", [f"{path.name}: {error}"]
        return result
    answers, result.notes = _answers(submission, assignment.answer_ids)
    result.answers = dict(answers)
    with tempfile.TemporaryDirectory(prefix="course-grade-") as tmp:
        workdir = Path(tmp) / "work"
        shutil.copytree(path.parent, workdir, symlinks=True)
        with GradingKernel(workdir, memory_mb=memory_mb) as kernel:
            _run_skeleton(kernel, assignment, answers, result, timeout)
    result.score = float(sum(t.points for t in result.tests))
    return result


def _run_skeleton(kernel: GradingKernel, assignment: Assignment, answers: dict[str, str],
                  result: NotebookResult, timeout: float) -> None:
    history: list[str] = []  # cells that ran fine and would be replayed after a restart
    block: list[tuple[str, str]] = []  # (grade_id, problem) of this question's answer cells
    for index, cell in enumerate(assignment.solution.cells):
        if cell.cell_type != "code":
            continue
        gid = fmt.grade_id(cell)
        if fmt.is_solution(cell):
            source = answers.get(gid, assignment.exercise.cells[index].source)
            if gid not in answers:
                block.append((gid, "missing"))
        else:
            source = cell.source
        if fmt.is_grade(cell) and any(problem == "missing" for _, problem in block):
            message = f"answer cell {block[-1][0]!r} is missing, so this test was not run"
            result.tests.append(_test(cell, "missing", message, 0.0))
            block = []
            continue
        generation = kernel.generation
        run = kernel.run(source, _timeout(cell, timeout))
        result.cells.append(CellOutcome(index, gid, run.status, run.ename))
        if kernel.generation != generation:
            history = _replay(kernel, history, timeout)
        if fmt.is_grade(cell):
            result.tests.append(_grade(cell, run, block))
            block = []
            continue
        if run.ok:
            history.append(source)
        elif fmt.is_solution(cell) and run.status in ("timeout", "kernel_died"):
            block.append((gid, run.status))


def _replay(kernel: GradingKernel, history: list[str], timeout: float) -> list[str]:
    """Re-run the cells that built the lost state; keep those that still run."""
    kept = []
    for source in history:
        if kernel.run(source, timeout).ok:
            kept.append(source)
    return kept


def _test(cell: dict, status: str, message: str, seconds: float) -> TestResult:
    max_points = float(fmt.nbgrader_meta(cell)["points"])
    points = max_points if status == "pass" else 0.0
    return TestResult(fmt.grade_id(cell), points, max_points, status, message, round(seconds, 3))


def _grade(cell: dict, run: CellRun, block: list[tuple[str, str]]) -> TestResult:
    if run.ok:
        return _test(cell, "pass", "", run.seconds)
    if block and run.status == "error":
        gid, problem = block[-1]
        what = "ran longer than its time limit" if problem == "timeout" else "crashed the kernel"
        return _test(cell, problem, f"your answer cell {gid!r} {what}, so this test could "
                     f"not use it ({run.ename}: {run.evalue})", run.seconds)
    status, message = _message(run, cell)
    return _test(cell, status, message, run.seconds)


def _unknown(student_id: str, path: Path, known: list[str]) -> NotebookResult:
    note = (f"{path.name} matches no exercise; expected one of: {', '.join(known)}. "
            "Rename the file to its exercise's name to have it graded.")
    return NotebookResult(student_id, path.name, 0.0, 0.0, "unknown_notebook", notes=[note])


def grade_submissions(submissions: Path, out: Path, *, solutions: Path = ROOT / "solutions",
                      jobs: int = 1, timeout: float = DEFAULT_TIMEOUT_S,
                      memory_mb: int = DEFAULT_MEMORY_MB,
                      progress: bool = False) -> list[NotebookResult]:
    """Grade every learner's notebooks and write the gradebook, JSON results and feedback."""
    assignments = load_assignments(solutions)
    tasks = []
    for folder in sorted(p for p in Path(submissions).iterdir()
                         if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(folder.glob("*.ipynb")):
            tasks.append((folder.name, path))

    def one(task: tuple[str, Path]) -> NotebookResult:
        student_id, path = task
        start = time.perf_counter()
        if path.name not in assignments:
            result = _unknown(student_id, path, sorted(assignments))
        else:
            result = grade_notebook(path, assignments[path.name], student_id,
                                    timeout=timeout, memory_mb=memory_mb)
        if progress:
            print(f"{student_id}/{path.name}: {result.status} {result.score:g}/"
                  f"{result.max_score:g} ({time.perf_counter() - start:.1f} s)", flush=True)
        return result

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(one, tasks))
    write_reports(results, assignments, Path(out))
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["merge"]:  # grade merge OUT_1 ... OUT_N --out MERGED (see shard.py)
        return shard.merge_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m course_utils grade", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submissions", type=Path, help="one folder per learner")
    parser.add_argument("--out", type=Path, required=True, help="where the gradebook goes")
    parser.add_argument("--solutions", type=Path, default=ROOT / "solutions")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks graded at once")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help="seconds per cell (a cell's metadata.course_utils.timeout wins)")
    parser.add_argument("--memory-mb", type=int, default=DEFAULT_MEMORY_MB,
                        help="address-space limit per kernel in MB (0: none)")
    parser.add_argument("--shard", type=shard.shard_argument, metavar="I/N",
                        help="grade only shard I of N (1-based) of the learners; then `grade merge`")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        print(f"{args.submissions}: not a folder of learner folders", file=sys.stderr)
        return 2
    with shard.sharded(args) as submissions:  # without --shard: args.submissions itself
        results = grade_submissions(submissions, args.out, solutions=args.solutions,
                                    jobs=args.jobs, timeout=args.timeout,
                                    memory_mb=args.memory_mb, progress=True)
    statuses = [r.status for r in results]
    print(f"{len(results)} notebook(s): " + ", ".join(
        f"{statuses.count(s)} {s}" for s in ("graded", "unreadable", "unknown_notebook")))
    print(f"gradebook: {args.out / 'grades.csv'}; feedback: {args.out / 'feedback'}")
    return 0
