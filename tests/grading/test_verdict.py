"""How a test earns its verdict, without a kernel: split, instrumentation, clipping, status."""

from __future__ import annotations

import pytest

from course_utils.grading import records, verdict
from course_utils.grading.kernel import CellRun

HIDDEN = "### BEGIN HIDDEN TESTS\nassert b\n### END HIDDEN TESTS"


def _test_cell(source: str = "assert x", hint: str = "", points: float = 2) -> dict:
    meta: dict = {"nbgrader": {"grade": True, "grade_id": "q1_test", "points": points}}
    if hint:
        meta["course_utils"] = {"hint": hint}
    return {"cell_type": "code", "source": source, "metadata": meta}


@pytest.mark.parametrize(("source", "parts"), [
    ("assert a", [("assert a", False)]),
    (HIDDEN, [(HIDDEN, True)]),
    ("assert a\n" + HIDDEN, [("assert a", False), (HIDDEN, True)]),
    ("for i in range(2):\n    assert i >= 0\n    " + HIDDEN.replace("\n", "\n    "),
     [("for i in range(2):\n    assert i >= 0\n    " + HIDDEN.replace("\n", "\n    "), True)]),
])
def test_a_test_splits_into_its_visible_head_and_hidden_rest(source: str, parts: list) -> None:
    assert verdict.split_test(source) == parts


def test_the_instrumented_code_proves_it_ran_to_its_end() -> None:
    source, expected = verdict.instrument("x = 1\nif x:\n    y = 2\nassert y == 2", "N")
    namespace: dict = {}
    exec(source, namespace)
    assert namespace["__grader_proof__"] == expected == ("N", 3)
    magic, proof = verdict.instrument("%time x = 1", "M")
    assert magic.endswith("__grader_proof__ = 'M'\n") and proof == "M"


def test_messages_are_capped_and_withheld_when_they_quote_a_hidden_test() -> None:
    assert verdict.clip("short", ["assertsecret==1"]) == "short"
    assert verdict.clip("x" * 601) == "x" * 600 + " [...]"
    assert verdict.clip("AssertionError: assert  secret == 1", ["assertsecret==1"]) == (
        "(message withheld: it quoted a hidden test)")


@pytest.mark.parametrize("text", [None, "", "__import__('os').system('x')", "[" * 10_000,
                                  "'not json'", "'[1, 2]'"])
def test_values_from_the_kernel_are_literals_or_nothing(text: str | None) -> None:
    assert verdict.json_dict(text) is None
    assert verdict.literal("('N', 3)") == ("N", 3)


def _run(status: str = "error", ename: str = "", evalue: str = "") -> CellRun:
    return CellRun(status, ename, evalue, 0.25)


@pytest.mark.parametrize(("run", "block", "hidden", "status", "message"), [
    (_run("ok"), [], False, "pass", ""),
    (_run(ename="AssertionError", evalue="expected 5"), [], False, "fail",
     "expected 5\nHint: count the biases"),
    (_run(ename="AssertionError"), [], False, "fail",
     "an assert failed (no message)\nHint: count the biases"),
    (_run(ename="AssertionError", evalue="expected 5"), [], True, "fail",
     "a hidden test failed (its message is not shown)\nHint: count the biases"),
    (_run(ename="NotImplementedError"), [], False, "error",
     "not answered yet: the stub still raises NotImplementedError\nHint: count the biases"),
    (_run(ename="NameError", evalue="name 'f' is not defined"), [], False, "error",
     "NameError: name 'f' is not defined\nHint: count the biases"),
    (_run("timeout", evalue="ran over 60 s"), [], False, "timeout", "ran over 60 s\nHint: count the biases"),
    (_run(ename="NameError"), [("q1_answer", "timeout")], False, "timeout",
     "your answer cell 'q1_answer' ran longer than its time limit, so this test could not use it"),
    (_run(ename="NameError"), [("q1_answer", "kernel_died")], False, "kernel_died",
     "your answer cell 'q1_answer' crashed the kernel, so this test could not use it"),
])
def test_each_outcome_gets_its_status_message_and_points(run: CellRun, block: list, hidden: bool,
                                                         status: str, message: str) -> None:
    result = verdict.score(_test_cell(hint="count the biases"), run, block, hidden, [])
    assert (result.status, result.message) == (status, message)
    assert result.points == (2.0 if status == "pass" else 0.0) and result.max_points == 2.0


def test_tests_that_do_not_run_and_tampering() -> None:
    cell = _test_cell()
    missing = verdict.not_run(cell, [("q1_answer", "missing")], 10)
    assert (missing.status, missing.message) == (
        "missing", "answer cell 'q1_answer' is missing, so this test was not run")
    assert verdict.not_run(cell, [], 0).status == "timeout"
    assert verdict.not_run(cell, [("q1_answer", "timeout")], 10) is None
    found = ["during q1_test: sys hooks changed", "b", "c", "d"]
    assert verdict.tampered(cell, found, 1.0).message == "scored 0: " + "; ".join(found[:3])


def test_withheld_messages_come_from_the_clean_rerun_or_are_not_shown() -> None:
    cells = [_test_cell(hint="look at q1"), {**_test_cell(), "metadata": {"nbgrader": {
        "grade": True, "grade_id": "q2_test", "points": 1}}}]
    tests = [records.TestResult("q1_test", 0, 2, "fail", "from the first kernel", 0.1),
             records.TestResult("q2_test", 0, 1, "fail", "from the first kernel", 0.1)]
    rerun = [records.TestResult("q1_test", 0, 2, "fail", "clean message", 0.1)]
    verdict.restore_messages(tests, ["q1_test", "q2_test"], rerun, cells)
    assert [t.message for t in tests] == ["clean message", "(message not shown)"]
    verdict.restore_messages(tests, ["q1_test"], [], cells)
    assert tests[0].message == "(message not shown)\nHint: look at q1"


class _Kernel:
    """Replies like a kernel whose audit expression returns nothing."""

    probe, generation = "__probe__", 1

    def run(self, source: str, timeout: float, **kwargs: object) -> CellRun:
        return CellRun("ok", "", "", 0.0, {})


def test_an_audit_without_a_baseline_is_the_graders_own_failure() -> None:
    audit = verdict.Audit(_Kernel(), _Kernel().run)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="baseline could not be taken"):
        audit.take_baseline()
    audit.baseline = (1, {"sys_hooks": "abc"}, {})
    audit.check(CellRun("ok", "", "", 0.0, {}), "during q1_test")
    assert audit.findings == ["during q1_test: the grader's audit could not run"]
    assert audit.expressions() == {"proof": "__grader_proof__", "audit": "__probe__(False)"}
