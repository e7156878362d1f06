"""Grade submissions on the solutions' skeleton (``python -m course_utils grade``).

    python -m course_utils grade SUBMISSIONS_DIR --out OUT_DIR [--jobs N] [--timeout S]
        [--notebook-timeout S] [--memory-mb MB] [--roster FILE] [--no-sandbox]

``SUBMISSIONS_DIR`` holds one folder per learner (its name is the student_id) with
notebooks named as in ``exercises/``. Each notebook is rebuilt on its solution: setup,
locked and test cells (hidden tests included) come from ``solutions/``; the learner's
answer cells are matched by grade_id (the last copy of a duplicated id wins) and the code
cells the learner added run where the learner put them, as nbgrader does. Each notebook
runs in its own sandboxed kernel (see ``sandbox``) that sees only a scratch copy of that
notebook. A test passes only with positive proof: its reply is ``ok`` *and* a per-test
nonce, set by a line the grader appends after the test's last statement, is read back
through ``user_expressions``. Canary cells (one must fail with a random message, one must
pass) run before every test, and a fingerprint of IPython's hooks (``probe``) is compared
with the fresh kernel's before and after every test; a change zeroes the questions from
there on (status ``tampered``, with a note naming what changed).

The result goes to ``OUT_DIR/grades.csv`` (written atomically once every kernel is dead),
``OUT_DIR/results/<student>/<notebook>.json`` and ``OUT_DIR/feedback/<student>/<nb>.html``.
Submissions are never modified, and nothing of them but the notebook's bytes is read.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import nbformat

from course_utils.grading import notebook_format as fmt
from course_utils.grading import sandbox, shard
from course_utils.grading.build import ROOT, build_exercise
from course_utils.grading.intake import (
    parse_submission,
    read_bytes_safely,
    read_roster,
    read_submission,
    shown_name,
)
from course_utils.grading.kernel import (
    DEFAULT_LIMITS,
    DEFAULT_MEMORY_MB,
    CellRun,
    GradingKernel,
    live_kernels,
)
from course_utils.grading.records import CellOutcome, NotebookResult, TestResult
from course_utils.grading.report import write_reports
from course_utils.notebooks import KERNEL_NAME

__all__ = [
    "DEFAULT_TIMEOUT_S", "DEFAULT_NOTEBOOK_TIMEOUT_S", "MESSAGE_LIMIT", "TestResult",
    "NotebookResult", "CellOutcome", "Assignment", "load_assignments", "read_submission",
    "grade_notebook", "grade_submissions", "main",
]

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_NOTEBOOK_TIMEOUT_S = 600.0
MESSAGE_LIMIT = 600
_PROOF = "__grader_proof__"
_STEPS = "__grader_steps__"


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

    @cached_property
    def hidden_lines(self) -> list[str]:
        """Lines of hidden tests long enough to recognise in a message (no whitespace)."""
        found = []
        for cell in self.solution.cells:
            if not fmt.is_grade(cell):
                continue
            lines = cell.source.split("\n")
            for start, end in fmt.marker_regions(cell.source, fmt.BEGIN_HIDDEN, fmt.END_HIDDEN):
                found += [re.sub(r"\s+", "", line) for line in lines[start + 1:end]]
        return [line for line in found if len(line) >= 12]


def load_assignments(solutions: Path) -> dict[str, Assignment]:
    """Every ``*.ipynb`` in ``solutions`` by file name (broken ones raise BuildError)."""
    found = {}
    for path in sorted(Path(solutions).glob("*.ipynb")):
        solution = nbformat.read(path, as_version=4)
        found[path.name] = Assignment(path.name, solution, build_exercise(solution, path.name))
    return found


# ---------------------------------------------------------------------- the submission


def _answers(submission: nbformat.NotebookNode, assignment: Assignment
             ) -> tuple[dict[str, str], dict[str | None, list[str]], list[str]]:
    """The learner's answers by grade_id (last copy wins), the code cells the learner added
    (keyed by the grade_id of the skeleton cell they follow; None: before all) and notes."""
    wanted = assignment.answer_ids
    known = {fmt.grade_id(c) for c in assignment.solution.cells if fmt.grade_id(c)}
    answers: dict[str, str] = {}
    extras: dict[str | None, list[str]] = {}
    counts: dict[str, int] = {}
    anchor: str | None = None
    for cell in submission.cells:
        gid = fmt.grade_id(cell)
        if gid in known:
            anchor = gid
        if cell.get("cell_type") != "code":
            continue
        if gid in wanted:
            answers[gid] = cell.source
            counts[gid] = counts.get(gid, 0) + 1
        elif gid not in known and cell.source.strip():
            extras.setdefault(anchor, []).append(cell.source)
    notes = [f"answer cell {gid!r} appears {n} times; the last copy was graded"
             for gid, n in counts.items() if n > 1]
    added = sum(len(v) for v in extras.values())
    if added:
        notes.append(f"{added} code cell(s) you added were run where you put them, as nbgrader "
                     "does")
    notes += [f"answer cell {gid!r} is missing from the notebook" for gid in wanted
              if gid not in answers]
    kernel = submission.metadata.get("kernelspec", {}).get("name")
    if kernel and kernel != KERNEL_NAME:
        notes.append(f"the notebook asks for kernel {kernel[:60]!r}; it was graded with "
                     f"{KERNEL_NAME!r}")
    return answers, extras, notes


# CPython 3.11 before 3.11.8 can raise SystemError ("AST constructor recursion depth
# mismatch") when two threads build ASTs at once; the grader's --jobs threads take turns.
_AST_LOCK = threading.Lock()


def _parse(code: str) -> ast.Module:
    with _AST_LOCK:
        return ast.parse(code)


def _parses(code: str) -> bool:
    try:
        _parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def _split_test(source: str) -> list[tuple[str, bool]]:
    """[(code, hidden)]: the visible head, then everything from the first hidden line on
    (the whole cell counts as hidden when the marker sits inside a block)."""
    lines = source.split("\n")
    start = next((i for i, line in enumerate(lines) if fmt.BEGIN_HIDDEN in line), None)
    if start is None:
        return [(source, False)]
    head, rest = "\n".join(lines[:start]), "\n".join(lines[start:])
    if not head.strip():
        return [(rest, True)]
    if _parses(source) and not (_parses(head) and _parses(rest)):
        return [(source, True)]
    return [(head, False), (rest, True)]


def _instrument(code: str, nonce: str) -> tuple[str, object]:
    """``code`` with a step counter after each top-level statement and the proof line at
    the end; and the proof expected when the code ran through. A trace function that jumps
    over statements, or a hook that swallows an error, leaves the proof missing or short.

    >>> print(_instrument("x = 1\\nassert x", "N")[0])
    __grader_steps__ = 0
    x = 1
    __grader_steps__ += 1
    assert x
    __grader_steps__ += 1
    __grader_proof__ = ('N', __grader_steps__)
    <BLANKLINE>
    """
    try:
        body = _parse(code).body
    except (SyntaxError, ValueError):  # IPython syntax (magics): the proof line only
        return f"{code}\n{_PROOF} = {nonce!r}\n", nonce
    lines = code.split("\n")
    for end in sorted((stmt.end_lineno for stmt in body), reverse=True):
        lines.insert(end, f"{_STEPS} += 1")
    text = "\n".join([f"{_STEPS} = 0", *lines])
    return f"{text}\n{_PROOF} = ({nonce!r}, {_STEPS})\n", (nonce, len(body))


def _clip(text: str, hidden_lines: list[str], limit: int = MESSAGE_LIMIT) -> str:
    """Cap a message, and withhold it when it quotes a hidden test."""
    squashed = re.sub(r"\s+", "", text)
    if any(line in squashed for line in hidden_lines):
        return "(message withheld: it quoted a hidden test)"
    return text if len(text) <= limit else text[:limit] + " [...]"


def _json_dict(text: str | None) -> dict | None:
    """The dict that a fingerprint expression's repr holds, or None (missing, malformed)."""
    value = _literal(text)
    try:
        found = json.loads(value) if isinstance(value, str) else None
    except (ValueError, RecursionError):
        return None
    return found if isinstance(found, dict) else None


def _literal(text: str | None) -> object:
    """A value the kernel sent back (learner-controlled text); None unless a plain literal."""
    if not text:
        return None
    try:
        with _AST_LOCK:
            return ast.literal_eval(text)
    except Exception:  # SyntaxError, ValueError, RecursionError, SystemError (deep nesting)
        return None


# ---------------------------------------------------------------------- running the skeleton


class _Grader:
    """Runs one rebuilt notebook in one kernel and fills ``result``."""

    def __init__(self, kernel: GradingKernel, assignment: Assignment, answers: dict[str, str],
                 extras: dict[str | None, list[str]], result: NotebookResult, *,
                 timeout: float, deadline: float, visible_only: bool = False) -> None:
        self.kernel, self.assignment, self.result = kernel, assignment, result
        self.answers, self.extras = answers, extras
        self.timeout, self.deadline, self.visible_only = timeout, deadline, visible_only
        self.history: list[str] = []  # cells that ran fine, replayed after a restart
        self.baseline: tuple[int, dict, dict] = (-1, {}, {})
        self.findings: list[str] = []  # tampering found so far: fixed grader text only
        self.details: list[str] = []  # what the kernel said about it: instructor only
        self.hidden_ran = False
        self.withheld: list[str] = []  # tests whose visible message must come from a rerun

    # -- low level
    def _probe(self, full: bool) -> str:
        """The expression that runs the audit (``probe.install``'s private built-in)."""
        return f"{self.kernel.probe}({full})"

    def _remaining(self) -> float:
        return self.deadline - time.perf_counter()

    def _run(self, source: str, timeout: float, **kwargs: object) -> CellRun:
        generation = self.kernel.generation
        run = self.kernel.run(source, max(0.1, min(timeout, self._remaining())), **kwargs)
        if self.kernel.generation != generation:
            self._replay()
        return run

    def _replay(self) -> None:
        """Re-run the cells that built the lost state; keep those that still run."""
        self._take_baseline()
        self.history = [s for s in self.history
                        if self._remaining() > 0 and self.kernel.run(
                            s, max(0.1, min(self.timeout, self._remaining()))).ok]

    def _take_baseline(self) -> None:
        run = self.kernel.run("", 30, store_history=False, user_expressions={
            "full": self._probe(True), "digest": self._probe(False)})
        full = _json_dict(run.expressions.get("full")) or {}
        digest = _json_dict(run.expressions.get("digest")) or {}
        if not digest:  # a fresh kernel, before any learner code: the grader's own failure
            raise RuntimeError("the audit's baseline could not be taken in a fresh kernel")
        self.baseline = (self.kernel.generation, digest, full)

    def _audit(self, run: CellRun, when: str) -> None:
        """Compare the fingerprint in ``run``'s expressions with the fresh kernel's.

        Only the baseline's categories (taken before any learner code ran) are compared, and
        the finding names the category; the changed items, which learner code may have
        named (class names, globals ...), go to ``details`` for the instructor."""
        generation, digest, full = self.baseline
        if generation != self.kernel.generation:
            return  # the kernel was restarted during this cell; the replay re-baselined
        now_digest = _json_dict(run.expressions.get("audit"))
        if now_digest is None:
            self.findings.append(f"{when}: the grader's audit could not run")
            return
        changed = [k for k, v in digest.items() if now_digest.get(k) != v]
        if not changed:
            return
        now = self.kernel.run("", 30, store_history=False,
                              user_expressions={"full": self._probe(True)})
        details = _json_dict(now.expressions.get("full")) or {}
        for category in changed:
            listed = details.get(category)
            listed = [str(i) for i in listed] if isinstance(listed, list) else []
            added = sorted(set(listed) - set(full.get(category, [])))
            removed = sorted(set(full.get(category, [])) - set(listed))
            if not (added or removed):  # same items in another order: nothing was replaced
                digest[category] = now_digest[category]
                continue
            items = [re.sub(r"#[0-9a-f]+(@[0-9a-f]+)?|=[0-9a-f]+$", "", i)[:80]
                     for i in (added or removed)][:3]
            self.findings.append(f"{when}: {category.replace('_', ' ')} changed")
            self._detail(f"{when}: {category}: " + "; ".join(items))

    def _detail(self, text: str) -> None:
        """Keep what the kernel said for the instructor: escaped (ASCII) and capped."""
        if len(self.details) < 20:
            self.details.append(ascii(text)[1:-1][:300])

    def _canaries(self, gid: str) -> None:
        """One cell that must fail and one that must pass, shaped like tests, random order;
        then the hook audit (from the passing canary, or a request of its own)."""
        word, value = secrets.token_hex(8), secrets.token_hex(8)
        failing, _ = _instrument(f"assert False, {word!r}", secrets.token_hex(16))
        passing, expected = _instrument(f"__grader_canary__ = {value!r}\n"
                                        f"assert __grader_canary__ == {value!r}",
                                        secrets.token_hex(16))
        order = [("fail", failing), ("pass", passing)]
        if secrets.randbelow(2):
            order.reverse()
        audited = False
        for kind, source in order:
            generation = self.kernel.generation
            run = self._run(source, 30, store_history=False, user_expressions={
                "proof": _PROOF, "audit": self._probe(False)})
            if self.kernel.generation != generation:
                audited = True  # a fresh kernel: the replay took a new baseline
                continue
            if kind == "fail" and (run.ename, run.evalue) != ("AssertionError", word):
                self.findings.append(f"before {gid}: a canary cell that must fail with an "
                                     "AssertionError did not")
                self._detail(f"before {gid}: failing canary gave {run.status} "
                             f"{run.ename}: {run.evalue}")
            elif kind == "pass":
                if not run.ok or _literal(run.expressions.get("proof")) != expected:
                    self.findings.append(f"before {gid}: a canary cell that must pass did not "
                                         "run to its end")
                else:
                    self._audit(run, f"before {gid}")
                    audited = True
        if not audited:
            self._audit(self.kernel.run("", 30, store_history=False, user_expressions={
                "audit": self._probe(False)}), f"before {gid}")

    # -- the notebook
    def steps(self) -> list[tuple[int, str, str, str]]:
        """(solution cell index, kind, grade_id, source) in running order."""
        found = [(-1, "extra", "", s) for s in self.extras.get(None, [])]
        for index, cell in enumerate(self.assignment.solution.cells):
            gid = fmt.grade_id(cell)
            if cell.cell_type == "code":
                if fmt.is_solution(cell):
                    source = self.answers.get(gid, self.assignment.exercise.cells[index].source)
                    found.append((index, "answer", gid, source))
                elif fmt.is_grade(cell):
                    found.append((index, "test", gid, cell.source))
                else:
                    found.append((index, "locked", gid, cell.source))
            found += [(-1, "extra", "", s) for s in self.extras.get(gid, [])] if gid else []
        return found

    def run(self) -> None:
        self._take_baseline()
        block: list[tuple[str, str]] = []  # (grade_id, problem) of this question's answer cells
        for index, kind, gid, source in self.steps():
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

    def _cell_timeout(self, index: int) -> float:
        cell = self.assignment.solution.cells[index]
        return float(fmt.course_meta(cell).get("timeout", self.timeout))

    def _test(self, index: int, gid: str, block: list[tuple[str, str]]) -> None:
        cell = self.assignment.solution.cells[index]
        if any(problem == "missing" for _, problem in block):
            message = f"answer cell {block[-1][0]!r} is missing, so this test was not run"
            self.result.tests.append(_test(cell, "missing", message, 0.0))
            return
        if self._remaining() <= 0:
            self.result.tests.append(_test(cell, "timeout", "not run: the notebook ran past "
                                           "its total time limit", 0.0))
            return
        if not self.findings:
            self._canaries(gid)
        started = time.perf_counter()
        outcome: CellRun | None = None
        hidden_failed = False
        for code, hidden in _split_test(cell.source):
            if hidden and self.visible_only:
                break
            source, expected = _instrument(code, secrets.token_hex(16))
            generation = self.kernel.generation
            run = self._run(source, self._cell_timeout(index),
                            store_history=False, user_expressions={
                                "proof": _PROOF, "audit": self._probe(False)})
            self.hidden_ran |= hidden
            restarted = self.kernel.generation != generation
            if run.ok and not restarted:
                if _literal(run.expressions.get("proof")) != expected:
                    self.findings.append(f"{gid}: the test reported success but did not run "
                                         "to its end")
                self._audit(run, f"during {gid}")
            outcome = run
            if not run.ok:
                hidden_failed = hidden
                break
        seconds = time.perf_counter() - started
        self.result.cells.append(CellOutcome(index, gid, outcome.status, outcome.ename))
        if self.findings:
            self.result.tests.append(_test(cell, "tampered", "scored 0: " + "; ".join(
                self.findings[:3]), seconds))
            return
        result = _grade(cell, outcome, block, hidden_failed, self.assignment.hidden_lines)
        if result.status in ("fail", "error") and not hidden_failed and self.hidden_ran:
            self.withheld.append(gid)
        self.result.tests.append(result)


def _test(cell: dict, status: str, message: str, seconds: float) -> TestResult:
    max_points = float(fmt.nbgrader_meta(cell)["points"])
    points = max_points if status == "pass" else 0.0
    return TestResult(fmt.grade_id(cell), points, max_points, status, message, round(seconds, 3))


def _hint(cell: dict) -> str:
    hint = fmt.course_meta(cell).get("hint")
    return str(hint) if hint else ""


def _grade(cell: dict, run: CellRun, block: list[tuple[str, str]], hidden: bool,
           hidden_lines: list[str]) -> TestResult:
    if run.ok:
        return _test(cell, "pass", "", run.seconds)
    if block and run.status == "error":
        gid, problem = block[-1]
        what = "ran longer than its time limit" if problem == "timeout" else "crashed the kernel"
        return _test(cell, problem, f"your answer cell {gid!r} {what}, so this test could "
                     f"not use it", run.seconds)
    if run.status in ("timeout", "kernel_died"):
        status, text = run.status, run.evalue
    elif run.ename == "NotImplementedError":
        status, text = "error", "not answered yet: the stub still raises NotImplementedError"
    elif hidden:
        status = "fail" if run.ename == "AssertionError" else "error"
        text = "a hidden test failed (its message is not shown)"
    elif run.ename == "AssertionError":
        status, text = "fail", _clip(run.evalue or "an assert failed (no message)", hidden_lines)
    else:
        status, text = "error", _clip(f"{run.ename}: {run.evalue}", hidden_lines)
    hint = _hint(cell)
    return _test(cell, status, f"{text}\nHint: {hint}" if hint else text, run.seconds)


# ---------------------------------------------------------------------- one notebook


def grade_notebook(path: Path, assignment: Assignment, student_id: str = "you", *,
                   timeout: float = DEFAULT_TIMEOUT_S, memory_mb: int = DEFAULT_MEMORY_MB,
                   notebook_timeout: float = DEFAULT_NOTEBOOK_TIMEOUT_S,
                   sandboxed: bool | None = None) -> NotebookResult:
    """Grade one submitted notebook against its assignment (see the module docstring).

    ``sandboxed``: None uses the sandbox when this machine has it. Never raises: a failure
    of the grader itself gives status ``grader_error`` with the reason in the notes.
    """
    path = Path(path)
    result = NotebookResult(student_id, path.name, 0.0, assignment.max_score, "graded")
    try:
        data = read_bytes_safely(path)
        submission = parse_submission(data)
    except (OSError, ValueError) as error:
        result.status, result.notes = "unreadable", [f"{path.name}: {error}"]
        return result
    try:
        _grade_in_kernels(data, submission, assignment, result, timeout=timeout,
                          memory_mb=memory_mb, notebook_timeout=notebook_timeout,
                          sandboxed=sandbox.available() if sandboxed is None else sandboxed)
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
                      notebook_timeout: float, sandboxed: bool) -> None:
    answers, extras, result.notes = _answers(submission, assignment)
    result.answers = dict(answers)
    limits = dict(DEFAULT_LIMITS, memory_mb=memory_mb,
                  cpu_s=int(max(DEFAULT_LIMITS["cpu_s"], 2 * notebook_timeout)))
    deadline = time.perf_counter() + notebook_timeout

    def one_kernel(target: NotebookResult, visible_only: bool) -> _Grader:
        with tempfile.TemporaryDirectory(prefix="course-grade-") as tmp:
            scratch = Path(tmp) / "home"  # holds only the notebook, afresh at every start
            with GradingKernel(scratch, sandboxed=sandboxed, limits=limits,
                               files={assignment.name: data}) as kernel:
                grader = _Grader(kernel, assignment, answers, extras, target, timeout=timeout,
                                 deadline=deadline, visible_only=visible_only)
                grader.run()
        return grader

    grader = one_kernel(result, False)
    if grader.findings:  # fixed grader text; the kernel's words go to the instructor only
        result.notes.append("tampering detected, questions from there on scored 0: "
                            + "; ".join(grader.findings[:5]))
        result.tamper_details = list(grader.details)
    if grader.withheld:
        # Hidden tests ran before these visible failures: take their messages from a kernel
        # that never ran a hidden test, so no message can carry a hidden test's source.
        # Without that rerun (tampering found, or no time left) the messages are not shown.
        messages: dict[str, str] = {}
        if not grader.findings and time.perf_counter() < deadline:
            clean = NotebookResult(result.student_id, result.notebook, 0.0, 0.0, "graded")
            one_kernel(clean, True)
            messages = {t.grade_id: t.message for t in clean.tests
                        if t.status in ("fail", "error")}
        for test in result.tests:
            if test.grade_id in grader.withheld:
                cell = next(c for c in assignment.solution.cells
                            if fmt.grade_id(c) == test.grade_id)
                hint = _hint(cell)
                test.message = messages.get(test.grade_id) or (
                    "(message not shown)" + (f"\nHint: {hint}" if hint else ""))
    if not sandboxed:
        result.notes.append("graded without the sandbox")


# ---------------------------------------------------------------------- a batch


def _unknown(student_id: str, path: Path, known: list[str]) -> NotebookResult:
    name = shown_name(path.name)
    note = (f"{name} matches no exercise; expected one of: {', '.join(known)}. "
            "Rename the file to its exercise's name to have it graded.")
    return NotebookResult(student_id, name, 0.0, 0.0, "unknown_notebook", notes=[note])


def _tasks(submissions: Path, roster: list[str],
           include: Callable[[str], bool] | None = None) -> tuple[list, list[NotebookResult]]:
    """(student, path) pairs to grade, and ``missing`` rows (no notebook, not handed in);
    only learners for whom ``include(student_id)`` is true, when it is given."""
    tasks, missing, seen = [], [], set()
    for folder in sorted(Path(submissions).iterdir()):
        student = shown_name(folder.name)  # the folder's name, always valid text
        if folder.name.startswith(".") or (include and not include(student)):
            continue
        seen.add(student)
        if folder.is_symlink() or not folder.is_dir():
            missing.append(NotebookResult(student, "", 0.0, 0.0, "missing", notes=[
                f"{student} is not a folder (a symlink or a file); nothing was graded"]))
            continue
        found = sorted(p for p in folder.iterdir() if p.name.endswith(".ipynb"))
        tasks += [(student, p) for p in found]
        if not found:
            others = sorted(shown_name(p.name) for p in folder.iterdir())[:5]
            missing.append(NotebookResult(student, "", 0.0, 0.0, "missing", notes=[
                "no notebook (*.ipynb) in the folder" + (f"; found: {', '.join(others)}"
                                                         if others else "")]))
    for student in roster:
        if student not in seen and (include is None or include(student)):
            missing.append(NotebookResult(student, "", 0.0, 0.0, "missing",
                                          notes=["on the roster, but no folder was handed in"]))
    return tasks, missing


def grade_submissions(submissions: Path, out: Path, *, solutions: Path = ROOT / "solutions",
                      jobs: int = 1, timeout: float = DEFAULT_TIMEOUT_S,
                      memory_mb: int = DEFAULT_MEMORY_MB,
                      notebook_timeout: float = DEFAULT_NOTEBOOK_TIMEOUT_S,
                      sandboxed: bool | None = None, roster: list[str] | None = None,
                      include: Callable[[str], bool] | None = None,
                      progress: bool = False) -> list[NotebookResult]:
    """Grade every learner's notebooks (those ``include`` accepts, when given) and write the
    gradebook, JSON results and feedback."""
    assignments = load_assignments(solutions)
    tasks, results = _tasks(Path(submissions), list(roster or []), include)
    use_sandbox = sandbox.available() if sandboxed is None else sandboxed

    def one(task: tuple[str, Path]) -> NotebookResult:
        student_id, path = task
        start = time.perf_counter()
        try:
            if path.name not in assignments:
                result = _unknown(student_id, path, sorted(assignments))
            else:
                result = grade_notebook(path, assignments[path.name], student_id,
                                        timeout=timeout, memory_mb=memory_mb,
                                        notebook_timeout=notebook_timeout, sandboxed=use_sandbox)
        except Exception as error:  # never lose a row
            result = NotebookResult(student_id, shown_name(path.name), 0.0, 0.0, "grader_error",
                                    notes=[f"grader error: {type(error).__name__}: {error}"])
        if progress:
            print(f"{student_id}/{path.name}: {result.status} {result.score:g}/"
                  f"{result.max_score:g} ({time.perf_counter() - start:.1f} s)", flush=True)
        return result

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results += list(pool.map(one, tasks))
    if live_kernels():
        raise RuntimeError(f"{live_kernels()} kernel(s) still running; gradebook not written")
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
    parser.add_argument("--notebook-timeout", type=float, default=DEFAULT_NOTEBOOK_TIMEOUT_S,
                        help="seconds per notebook, kernel restarts included")
    parser.add_argument("--memory-mb", type=int, default=DEFAULT_MEMORY_MB,
                        help="address-space limit per kernel in MB (0: none)")
    parser.add_argument("--shard", type=shard.shard_argument, metavar="I/N",
                        help="grade only shard I of N (1-based) of the learners; then `grade merge`")
    parser.add_argument("--roster", type=Path, help="student ids, one per line: absent "
                        "learners get a 'missing' row")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="grade without bubblewrap (learner code is NOT isolated)")
    args = parser.parse_args(argv)
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
    with shard.sharded(args) as include:  # without --shard: every learner
        results = grade_submissions(args.submissions, args.out, solutions=args.solutions,
                                    jobs=args.jobs, timeout=args.timeout,
                                    memory_mb=args.memory_mb,
                                    notebook_timeout=args.notebook_timeout,
                                    sandboxed=not args.no_sandbox, roster=roster,
                                    include=include, progress=True)
    statuses = [r.status for r in results]
    print(f"{len(results)} row(s): " + ", ".join(
        f"{statuses.count(s)} {s}" for s in dict.fromkeys(statuses)))
    print(f"gradebook: {args.out / 'grades.csv'}; feedback: {args.out / 'feedback'}")
    return 0
