"""How a test earns its verdict: positive proof, canaries, the hook audit, per-test status.

A test passes only with positive proof: its reply is ``ok`` *and* a per-test nonce, set by a
line the grader appends after the test's last statement (``instrument``), is read back
through ``user_expressions``, together with a count of the top-level statements that ran.
Canary cells (one must fail with a random message, one must pass) run before every test,
and a fingerprint of IPython's hooks (``probe``) is compared with the fresh kernel's before
and after every test (``Audit``); a change zeroes the questions from there on (status
``tampered``, with a note naming what changed).

A test cell's hidden part runs after its visible head (``split_test``). Messages are capped
and withheld when they quote a hidden test (``clip``); a failing hidden test says only that
it failed. Everything here is pure except ``Audit``, which talks to one kernel through
``run``, ``generation`` and ``probe``.

>>> split_test("assert a\\n### BEGIN HIDDEN TESTS\\nassert b\\n### END HIDDEN TESTS")
[('assert a', False), ('### BEGIN HIDDEN TESTS\\nassert b\\n### END HIDDEN TESTS', True)]
>>> clip("x" * 700)[-10:], clip("assert secret_value == 42", ["assertsecret_value==42"])
('xxxx [...]', '(message withheld: it quoted a hidden test)')
"""

from __future__ import annotations

import ast
import json
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from course_utils.grading import notebook_format as fmt
from course_utils.grading.records import NotebookResult, TestResult

if TYPE_CHECKING:
    from course_utils.grading.kernel import CellRun, GradingKernel

__all__ = ["MESSAGE_LIMIT", "split_test", "instrument", "clip", "json_dict", "literal",
           "record", "hint", "not_run", "score", "tampered", "restore_messages", "finish",
           "Audit"]

MESSAGE_LIMIT = 600
_PROOF = "__grader_proof__"
_STEPS = "__grader_steps__"

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


def split_test(source: str) -> list[tuple[str, bool]]:
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


def instrument(code: str, nonce: str) -> tuple[str, object]:
    """``code`` with a step counter after each top-level statement and the proof line at
    the end; and the proof expected when the code ran through. A trace function that jumps
    over statements, or a hook that swallows an error, leaves the proof missing or short.

    >>> print(instrument("x = 1\\nassert x", "N")[0])
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


def clip(text: str, hidden_lines: list[str] | tuple[str, ...] = (),
         limit: int = MESSAGE_LIMIT) -> str:
    """Cap a message, and withhold it when it quotes a hidden test."""
    squashed = re.sub(r"\s+", "", text)
    if any(line in squashed for line in hidden_lines):
        return "(message withheld: it quoted a hidden test)"
    return text if len(text) <= limit else text[:limit] + " [...]"


def json_dict(text: str | None) -> dict | None:
    """The dict that a fingerprint expression's repr holds, or None (missing, malformed).

    >>> json_dict(repr('{"a": 1}')), json_dict("'[1]'"), json_dict(None)
    ({'a': 1}, None, None)
    """
    value = literal(text)
    try:
        found = json.loads(value) if isinstance(value, str) else None
    except (ValueError, RecursionError):
        return None
    return found if isinstance(found, dict) else None


def literal(text: str | None) -> object:
    """A value the kernel sent back (learner-controlled text); None unless a plain literal.

    >>> literal("('N', 2)"), literal("__import__('os')")
    (('N', 2), None)
    """
    if not text:
        return None
    try:
        with _AST_LOCK:
            return ast.literal_eval(text)
    except Exception:  # SyntaxError, ValueError, RecursionError, SystemError (deep nesting)
        return None


# ---------------------------------------------------------------------- per-test status


def record(cell: Mapping, status: str, message: str, seconds: float) -> TestResult:
    """The record of one test cell: its points when it passed, else 0."""
    max_points = float(fmt.nbgrader_meta(cell)["points"])
    points = max_points if status == "pass" else 0.0
    return TestResult(fmt.grade_id(cell), points, max_points, status, message, round(seconds, 3))


def hint(cell: Mapping) -> str:
    """The test cell's ``metadata.course_utils.hint`` ('' when it has none)."""
    found = fmt.course_meta(cell).get("hint")
    return str(found) if found else ""


def not_run(cell: Mapping, block: list[tuple[str, str]], time_left: float) -> TestResult | None:
    """The verdict of a test that is not run (an answer cell is missing, or no time is left);
    None when it runs."""
    if any(problem == "missing" for _, problem in block):
        message = f"answer cell {block[-1][0]!r} is missing, so this test was not run"
        return record(cell, "missing", message, 0.0)
    if time_left <= 0:
        return record(cell, "timeout", "not run: the notebook ran past its total time limit",
                           0.0)
    return None


def score(cell: Mapping, run: CellRun, block: list[tuple[str, str]], hidden: bool,
          hidden_lines: list[str]) -> TestResult:
    """The verdict of a test that ran: ``run`` is its last part's reply, ``block`` the
    problems of this question's answer cells, ``hidden`` whether the hidden part failed."""
    if run.ok:
        return record(cell, "pass", "", run.seconds)
    if block and run.status == "error":
        gid, problem = block[-1]
        what = "ran longer than its time limit" if problem == "timeout" else "crashed the kernel"
        return record(cell, problem, f"your answer cell {gid!r} {what}, so this test "
                           "could not use it", run.seconds)
    if run.status in ("timeout", "kernel_died"):
        status, text = run.status, run.evalue
    elif run.ename == "NotImplementedError":
        status, text = "error", "not answered yet: the stub still raises NotImplementedError"
    elif hidden:
        status = "fail" if run.ename == "AssertionError" else "error"
        text = "a hidden test failed (its message is not shown)"
    elif run.ename == "AssertionError":
        status, text = "fail", clip(run.evalue or "an assert failed (no message)", hidden_lines)
    else:
        status, text = "error", clip(f"{run.ename}: {run.evalue}", hidden_lines)
    shown = hint(cell)
    return record(cell, status, f"{text}\nHint: {shown}" if shown else text, run.seconds)


def tampered(cell: Mapping, findings: list[str], seconds: float) -> TestResult:
    """A test scored 0 because tampering was found (fixed grader text only)."""
    return record(cell, "tampered", "scored 0: " + "; ".join(findings[:3]), seconds)


def restore_messages(tests: list[TestResult], withheld: list[str], rerun: list[TestResult],
                     cells: list) -> None:
    """Give the ``withheld`` tests their message from the ``rerun`` in a kernel that never
    ran a hidden test, or none ("message not shown", and the hint) when it has none."""
    messages = {t.grade_id: t.message for t in rerun if t.status in ("fail", "error")}
    for test in tests:
        if test.grade_id in withheld:
            cell = next(c for c in cells if fmt.grade_id(c) == test.grade_id)
            shown = hint(cell)
            test.message = messages.get(test.grade_id) or (
                "(message not shown)" + (f"\nHint: {shown}" if shown else ""))


def finish(result: NotebookResult, audit: Audit, withheld: list[str],
           rerun: Callable[[NotebookResult], object], time_left: float, cells: list) -> None:
    """After the notebook ran: name any tampering (fixed grader text; the kernel's words go
    to the instructor only), and give the ``withheld`` visible failures their messages from
    ``rerun``, a kernel that never runs a hidden test (none when tampering was found or no
    time is left: then the messages are not shown)."""
    if audit.findings:
        result.notes.append("tampering detected, questions from there on scored 0: "
                            + "; ".join(audit.findings[:5]))
        result.tamper_details = list(audit.details)
    if withheld:
        clean = NotebookResult(result.student_id, result.notebook, 0.0, 0.0, "graded")
        if not audit.findings and time_left > 0:
            rerun(clean)
        restore_messages(result.tests, withheld, clean.tests, cells)


# ---------------------------------------------------------------------- the audit


class Audit:
    """The hook audit and the canaries of one kernel, and what they found.

    ``run`` is the grader's way of running a cell (it replays the notebook after a restart
    and calls ``take_baseline``). ``findings`` is fixed grader text; ``details`` is what the
    kernel said about it, escaped and capped, for the instructor only.
    """

    def __init__(self, kernel: GradingKernel, run: Callable[..., CellRun]) -> None:
        self.kernel, self._run = kernel, run
        self.baseline: tuple[int, dict, dict] = (-1, {}, {})
        self.findings: list[str] = []
        self.details: list[str] = []

    def _probe(self, full: bool) -> str:
        """The expression that runs the audit (``probe.install``'s private built-in)."""
        return f"{self.kernel.probe}({full})"

    def expressions(self) -> dict[str, str]:
        """The ``user_expressions`` of a test: its proof and the fingerprint after it."""
        return {"proof": _PROOF, "audit": self._probe(False)}

    def take_baseline(self) -> None:
        run = self.kernel.run("", 30, store_history=False, user_expressions={
            "full": self._probe(True), "digest": self._probe(False)})
        full = json_dict(run.expressions.get("full")) or {}
        digest = json_dict(run.expressions.get("digest")) or {}
        if not digest:  # a fresh kernel, before any learner code: the grader's own failure
            raise RuntimeError("the audit's baseline could not be taken in a fresh kernel")
        self.baseline = (self.kernel.generation, digest, full)

    def check(self, run: CellRun, when: str) -> None:
        """Compare the fingerprint in ``run``'s expressions with the fresh kernel's.

        Only the baseline's categories (taken before any learner code ran) are compared, and
        the finding names the category; the changed items, which learner code may have
        named (class names, globals ...), go to ``details`` for the instructor."""
        generation, digest, full = self.baseline
        if generation != self.kernel.generation:
            return  # the kernel was restarted during this cell; the replay re-baselined
        now_digest = json_dict(run.expressions.get("audit"))
        if now_digest is None:
            self.findings.append(f"{when}: the grader's audit could not run")
            return
        changed = [k for k, v in digest.items() if now_digest.get(k) != v]
        if not changed:
            return
        now = self.kernel.run("", 30, store_history=False,
                              user_expressions={"full": self._probe(True)})
        details = json_dict(now.expressions.get("full")) or {}
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

    def check_test(self, run: CellRun, expected: object, gid: str) -> None:
        """After a part of a test that ran through in one kernel: its proof, then the hooks."""
        if literal(run.expressions.get("proof")) != expected:
            self.findings.append(f"{gid}: the test reported success but did not run to its end")
        self.check(run, f"during {gid}")

    def _detail(self, text: str) -> None:
        """Keep what the kernel said for the instructor: escaped (ASCII) and capped."""
        if len(self.details) < 20:
            self.details.append(ascii(text)[1:-1][:300])

    def canaries(self, gid: str) -> None:
        """One cell that must fail and one that must pass, shaped like tests, random order;
        then the hook audit (from the passing canary, or a request of its own). Once
        tampering was found, none: the questions from there on score 0 anyway."""
        if self.findings:
            return
        word, value = secrets.token_hex(8), secrets.token_hex(8)
        failing, _ = instrument(f"assert False, {word!r}", secrets.token_hex(16))
        passing, expected = instrument(f"__grader_canary__ = {value!r}\n"
                                       f"assert __grader_canary__ == {value!r}",
                                       secrets.token_hex(16))
        order = [("fail", failing), ("pass", passing)]
        if secrets.randbelow(2):
            order.reverse()
        audited = False
        for kind, source in order:
            generation = self.kernel.generation
            run = self._run(source, 30, store_history=False, user_expressions=self.expressions())
            if self.kernel.generation != generation:
                audited = True  # a fresh kernel: the replay took a new baseline
                continue
            if kind == "fail" and (run.ename, run.evalue) != ("AssertionError", word):
                self.findings.append(f"before {gid}: a canary cell that must fail with an "
                                     "AssertionError did not")
                self._detail(f"before {gid}: failing canary gave {run.status} "
                             f"{run.ename}: {run.evalue}")
            elif kind == "pass":
                if not run.ok or literal(run.expressions.get("proof")) != expected:
                    self.findings.append(f"before {gid}: a canary cell that must pass did not "
                                         "run to its end")
                else:
                    self.check(run, f"before {gid}")
                    audited = True
        if not audited:
            self.check(self.kernel.run("", 30, store_history=False, user_expressions={
                "audit": self._probe(False)}), f"before {gid}")
