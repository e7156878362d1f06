"""Grade submissions on the solutions' skeleton (``python -m course_utils grade``).

    python -m course_utils grade SUBMISSIONS_DIR --out OUT_DIR [--jobs N] [--timeout S]
        [--notebook-timeout S] [--memory-mb MB] [--roster FILE] [--no-sandbox]

``SUBMISSIONS_DIR`` holds one folder per learner (its name is the student_id) with notebooks
named as in ``exercises/``. Each notebook, in pipeline order: ``intake`` reads its bytes
safely; ``assemble`` puts the learner's cells on the solution's skeleton (hidden tests
included); a sandboxed ``kernel`` that sees only a scratch copy of that notebook runs it;
``verdict`` scores each test (positive proof, canaries, the hook audit) and ``trusted`` runs
its probes outside the kernel (both must pass). Then ``gradebook``
writes ``OUT_DIR/grades.csv`` (atomically, once every kernel is dead), ``results/`` and
``feedback/``. Submissions are never modified; nothing of them but the notebook is read.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

from course_utils._paths import SOLUTIONS
from course_utils.grading import assemble, gradebook, intake, sandbox, trusted, verdict
from course_utils.grading import notebook_format as fmt
from course_utils.grading.assignment import Assignment, gradebook_columns, load_assignments, visible_tests
from course_utils.grading.intake import read_roster, read_submission  # noqa: F401  (old imports)
from course_utils.grading.kernel import DEFAULT_MEMORY_MB, GradingKernel, grading_limits, live_kernels
from course_utils.grading.records import CellOutcome, NotebookResult, TestResult
from course_utils.grading.verdict import MESSAGE_LIMIT

if TYPE_CHECKING:
    from course_utils.grading.kernel import CellRun

__all__ = ["DEFAULT_TIMEOUT_S", "DEFAULT_NOTEBOOK_TIMEOUT_S", "MESSAGE_LIMIT", "TestResult",
           "NotebookResult", "CellOutcome", "Assignment", "load_assignments", "read_submission",
           "grade_notebook", "grade_submissions"]

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_NOTEBOOK_TIMEOUT_S = 600.0


class _Grader:
    """Runs one rebuilt notebook in one kernel and fills ``result``; after a restart it
    replays the cells that ran fine. The verdicts and the audit are ``verdict``'s."""

    def __init__(self, kernel: GradingKernel, assignment: Assignment, answers: dict[str, str],
                 extras: dict[str | None, list[str]], result: NotebookResult, *,
                 timeout: float, deadline: float, visible_only: bool = False,
                 references: trusted.References | None = None) -> None:
        self.kernel, self.assignment, self.result = kernel, assignment, result
        self.references = references  # the trusted verdict's kernels (None: in-kernel only)
        self.answers, self.extras = answers, extras
        self.timeout, self.deadline, self.visible_only = timeout, deadline, visible_only
        self.history: list[str] = []  # cells that ran fine, replayed after a restart
        self.audit = verdict.Audit(kernel, self._run)
        self.hidden_ran = False
        self.withheld: list[str] = []  # tests whose visible message must come from a rerun

    def _remaining(self) -> float:
        return self.deadline - time.perf_counter()

    def _run(self, source: str, timeout: float, **kwargs: object) -> CellRun:
        generation = self.kernel.generation
        run = self.kernel.run(source, max(0.1, min(timeout, self._remaining())), **kwargs)
        note = sandbox.disk_full_note(run.evalue, self.kernel.scratch_mb) if run.status == "error" else ""
        if note and note not in self.result.notes:  # the learner's own disk, said plainly
            self.result.notes.append(note)
        if self.kernel.generation != generation:
            self._replay()
        return run

    def _replay(self) -> None:
        """Re-run the cells that built the lost state; keep those that still run."""
        self.audit.take_baseline()
        self.history = [s for s in self.history
                        if self._remaining() > 0 and self.kernel.run(
                            s, max(0.1, min(self.timeout, self._remaining()))).ok]

    def _cell_timeout(self, index: int) -> float:
        cell = self.assignment.solution.cells[index]
        return float(fmt.course_meta(cell).get("timeout", self.timeout))

    def run(self) -> None:
        self.audit.take_baseline()
        block: list[tuple[str, str]] = []  # (grade_id, problem) of this question's answer cells
        for index, kind, gid, source in assemble.steps(self.assignment, self.answers,
                                                       self.extras):
            if kind == "test":
                self._test(index, gid, block)
                block = []
                continue
            if kind == "answer" and gid not in self.answers:
                block.append((gid, "missing"))
            if self._remaining() <= 0:
                continue
            run = self._run(source, self._cell_timeout(index) if index >= 0 else self.timeout)
            self.result.cells.append(CellOutcome(index, gid, run.status, run.ename))
            if run.ok:
                self.history.append(source)
            elif kind != "locked" and run.status in ("timeout", "kernel_died"):
                block.append((gid or "a cell you added", run.status))

    def _test(self, index: int, gid: str, block: list[tuple[str, str]]) -> None:
        cell = self.assignment.solution.cells[index]
        skipped = verdict.not_run(cell, block, self._remaining())
        if skipped:
            self.result.tests.append(skipped)
            return
        self.audit.canaries(gid)
        started = time.perf_counter()
        outcome: CellRun | None = None
        hidden_failed = False
        for code, hidden in verdict.split_test(cell.source):
            if hidden and self.visible_only:
                break
            source, expected = verdict.instrument(code, secrets.token_hex(16))
            generation = self.kernel.generation
            run = self._run(source, self._cell_timeout(index), store_history=False,
                            user_expressions=self.audit.expressions())
            self.hidden_ran |= hidden
            if run.ok and self.kernel.generation == generation:
                self.audit.check_test(run, expected, gid)
            outcome = run
            if not run.ok:
                hidden_failed = hidden
                break
        seconds = time.perf_counter() - started
        self.result.cells.append(CellOutcome(index, gid, outcome.status, outcome.ename))
        if self.audit.findings:
            self.result.tests.append(verdict.tampered(cell, self.audit.findings, seconds))
            return
        result = verdict.score(cell, outcome, block, hidden_failed, self.assignment.hidden_lines)
        if result.status in ("fail", "error") and not hidden_failed and self.hidden_ran:
            self.withheld.append(gid)
        if self.references is not None and result.status not in ("missing", "tampered"):
            result = trusted.judge_question(  # the verdict outside the kernel must agree
                cell, result, functools.partial(self._run, store_history=False),
                self.references, self.assignment, self._cell_timeout(index))
        self.result.tests.append(result)


def grade_notebook(path: Path, assignment: Assignment, student_id: str = "you", *,
                   timeout: float = DEFAULT_TIMEOUT_S, memory_mb: int = DEFAULT_MEMORY_MB,
                   notebook_timeout: float = DEFAULT_NOTEBOOK_TIMEOUT_S,
                   sandboxed: bool | None = None,
                   references: trusted.References | None = None) -> NotebookResult:
    """Grade one submitted notebook against its assignment (see the module docstring).

    ``sandboxed``: None uses the sandbox when this machine has it; ``references``: the
    trusted verdict's kernels, to share across calls. Never raises: a failure of the grader
    itself gives status ``grader_error`` with the reason in the notes.
    """
    path = Path(path)
    result = NotebookResult(student_id, path.name, 0.0, assignment.max_score, "graded")
    try:
        data = intake.read_bytes_safely(path)
        submission = intake.parse_submission(data)
    except (OSError, ValueError) as error:
        result.status, result.notes = "unreadable", [f"{path.name}: {error}"]
        return result
    use_sandbox = sandbox.available() if sandboxed is None else sandboxed
    shared = references or trusted.References(use_sandbox, memory_mb, notebook_timeout)
    with contextlib.nullcontext() if references else shared:
        try:
            _grade_in_kernels(data, submission, assignment, result, timeout=timeout,
                              memory_mb=memory_mb, notebook_timeout=notebook_timeout,
                              sandboxed=use_sandbox, references=shared)
        except Exception as error:  # the batch must go on; say what happened
            result.status = "grader_error"
            result.notes.append(f"grader error: {type(error).__name__}: {str(error)[:300]}")
            result.tests = []
    result.score = float(sum(t.points for t in result.tests))
    if any(t.status == "tampered" for t in result.tests) and result.status == "graded":
        result.status = "tampered"
    return result


def _grade_in_kernels(data: bytes, submission: nbformat.NotebookNode, assignment: Assignment,
                      result: NotebookResult, *, timeout: float, memory_mb: int,
                      notebook_timeout: float, sandboxed: bool,
                      references: trusted.References) -> None:
    answers, extras, result.notes = assemble.read_answers(submission, assignment)
    result.answers = dict(answers)
    limits = grading_limits(memory_mb, notebook_timeout)
    deadline = time.perf_counter() + notebook_timeout

    def one_kernel(target: NotebookResult, visible_only: bool) -> _Grader:
        with tempfile.TemporaryDirectory(prefix="course-grade-") as tmp:
            scratch = Path(tmp) / "home"  # holds only the notebook, afresh at every start
            with GradingKernel(scratch, sandboxed=sandboxed, limits=limits,
                               files={assignment.name: data}) as kernel:
                grader = _Grader(kernel, assignment, answers, extras, target, timeout=timeout,
                                 deadline=deadline, visible_only=visible_only,
                                 references=None if visible_only else references)
                grader.run()
        return grader

    grader = one_kernel(result, False)
    verdict.finish(result, grader.audit, grader.withheld, lambda clean: one_kernel(clean, True),
                   deadline - time.perf_counter(), assignment.solution.cells)
    if not sandboxed:
        result.notes.append("graded without the sandbox")


def grade_submissions(submissions: Path, out: Path, *, solutions: Path = SOLUTIONS, jobs: int = 1,
                      timeout: float = DEFAULT_TIMEOUT_S, memory_mb: int = DEFAULT_MEMORY_MB,
                      notebook_timeout: float = DEFAULT_NOTEBOOK_TIMEOUT_S,
                      sandboxed: bool | None = None, roster: list[str] | None = None,
                      include: Callable[[str], bool] | None = None,
                      progress: bool = False) -> list[NotebookResult]:
    """Grade every learner's notebooks (those ``include`` accepts) and write the reports."""
    assignments = load_assignments(solutions)
    tasks, results = intake.learner_notebooks(Path(submissions), list(roster or []), include)
    use_sandbox = sandbox.available() if sandboxed is None else sandboxed
    references = trusted.References(use_sandbox, memory_mb, notebook_timeout)

    def one(task: tuple[str, Path]) -> NotebookResult:
        student_id, path = task
        start = time.perf_counter()
        try:
            if path.name not in assignments:
                result = intake.unknown_notebook(student_id, path, sorted(assignments))
            else:
                result = grade_notebook(path, assignments[path.name], student_id,
                                        timeout=timeout, memory_mb=memory_mb,
                                        notebook_timeout=notebook_timeout, sandboxed=use_sandbox,
                                        references=references)
        except Exception as error:  # never lose a row
            result = NotebookResult(student_id, intake.shown_name(path.name), 0.0, 0.0, "grader_error",
                                    notes=[f"grader error: {type(error).__name__}: {error}"])
        if progress:
            print(f"{student_id}/{path.name}: {result.status} {result.score:g}/"
                  f"{result.max_score:g} ({time.perf_counter() - start:.1f} s)", flush=True)
        return result

    with references, ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results += list(pool.map(one, tasks))
    if live_kernels():
        raise RuntimeError(f"{live_kernels()} kernel(s) still running; gradebook not written")
    gradebook.write_reports(results, Path(out), gradebook_columns(assignments),
                            visible_tests(assignments), intake.learner_ids(Path(submissions), roster or []))
    return results
