"""Grading real notebooks: full marks, zero, partial, and adversarial submissions.

Two batches, each graded once per module with ``--jobs 2`` (see the fixtures):
- ``course``: every solution (full marks), every exercise (zero; exactly the tagged cells
  raise NotImplementedError) and a partly answered exercise;
- ``attacks``: submissions built from the real lesson-01 notebooks that try to break or fool
  the grader. Each gets its documented status and score, and no submission file changes.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import html
import json
from pathlib import Path

import nbformat
import pytest

from course_utils.grading import grade
from course_utils.grading import notebook_format as fmt
from course_utils.grading.build import RAISES_TAG, raising_cells
from course_utils.grading.check import main as check_main
from course_utils.grading.cli import grade_main

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
NB01 = "01_layers_of_a_model.ipynb"

pytestmark = pytest.mark.slow


def _read(folder: str, name: str = NB01) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / folder / name, as_version=4)


def _cell(nb: nbformat.NotebookNode, gid: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if fmt.grade_id(c) == gid)


def _write(root: Path, student: str, nb: nbformat.NotebookNode | bytes,
           name: str = NB01) -> None:
    folder = root / student
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(nb, bytes):
        (folder / name).write_bytes(nb)
    else:
        nbformat.write(nb, folder / name)


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _by_student(results: list[grade.NotebookResult]) -> dict[str, grade.NotebookResult]:
    return {r.student_id: r for r in results if r.notebook == NB01}


def _statuses(result: grade.NotebookResult) -> dict[str, str]:
    return {t.grade_id: t.status for t in result.tests}


# ---------------------------------------------------------------- the course batch


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    root = tmp_path_factory.mktemp("course_submissions")
    for path in SOLUTIONS:
        _write(root, "solutions", path.read_bytes(), path.name)
        _write(root, "exercises", (ROOT / "exercises" / path.name).read_bytes(), path.name)
    partial = _read("exercises")
    _cell(partial, "q1_answer").source = _cell(_read("solutions"), "q1_answer").source
    _write(root, "partial", partial)
    out = tmp_path_factory.mktemp("course_out")
    results = grade.grade_submissions(root, out, solutions=ROOT / "solutions", jobs=2,
                                      timeout=120)
    return out, results


def test_every_solution_scores_full_marks(course: tuple[Path, list]) -> None:
    _, results = course
    solved = [r for r in results if r.student_id == "solutions"]
    assert sorted(r.notebook for r in solved) == [p.name for p in SOLUTIONS]
    for r in solved:
        failing = {t.grade_id: t.message for t in r.tests if t.status != "pass"}
        assert r.status == "graded" and not failing, f"{r.notebook}: {failing}"
        assert {t.trusted for t in r.tests} == {"pass"}, f"{r.notebook}: {r.tests}"
        assert r.score == r.max_score > 0
        # every cell runs cleanly, as nbval would check (solutions/ is not run under nbval:
        # this grading executes each solution whole, in the sandbox, through the grader)
        raised = {c.index: c.ename for c in r.cells if c.status != "ok"}
        assert not raised and len(r.cells) == sum(
            c.cell_type == "code" for c in _read("solutions", r.notebook).cells), raised


def test_every_exercise_scores_zero_and_raises_exactly_in_its_tagged_cells(
        course: tuple[Path, list]) -> None:
    _, results = course
    blank = [r for r in results if r.student_id == "exercises"]
    assert len(blank) == len(SOLUTIONS)
    for r in blank:
        assert r.status == "graded" and r.score == 0, f"{r.notebook}: {r.score}"
        exercise = _read("exercises", r.notebook)
        tagged = {i for i, c in enumerate(exercise.cells)
                  if RAISES_TAG in c.metadata.get("tags", [])}
        raised = {c.index: c.ename for c in r.cells if c.status != "ok"}
        assert set(raised) == tagged, f"{r.notebook}: raised in {raised}, tagged {tagged}"
        reasons = raising_cells(exercise.cells)
        for index, ename in raised.items():
            expected = reasons[index].split(":")[0]
            assert ename == expected, f"{r.notebook} cell {index}: {ename}, expected {expected}"


def test_a_partly_answered_exercise_scores_partially(course: tuple[Path, list]) -> None:
    _, results = course
    partial = _by_student(results)["partial"]
    q1 = fmt.nbgrader_meta(_cell(_read("solutions"), "q1_test"))["points"]
    assert partial.score == q1 < partial.max_score
    assert _statuses(partial)["q1_test"] == "pass"
    assert {s for g, s in _statuses(partial).items() if g != "q1_test"} == {"error"}


def test_gradebook_rows_and_columns(course: tuple[Path, list]) -> None:
    out, results = course
    with open(out / "grades.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(results)
    assert list(rows[0])[:5] == ["student_id", "notebook", "score", "max_score", "status"]
    assert "q1_test" in rows[0]
    row = next(r for r in rows if r["student_id"] == "partial")
    assert row["status"] == "graded" and float(row["score"]) == float(row["q1_test"]) > 0
    record = json.loads((out / "results" / "partial" / "01_layers_of_a_model.json").read_text())
    assert set(record) >= {"student_id", "notebook", "score", "max_score", "status", "tests"}
    assert set(record["tests"][0]) == {"grade_id", "points", "max_points", "status", "message",
                                       "seconds", "trusted"}


# ---------------------------------------------------------------- the adversarial batch


def _attacks() -> dict[str, tuple[nbformat.NotebookNode | bytes, str, float | None, dict]]:
    """student -> (notebook, notebook status, expected score (None: max - lost), statuses)."""
    sol, ex = _read("solutions"), _read("exercises")
    points = {fmt.grade_id(c): fmt.nbgrader_meta(c)["points"] for c in sol.cells
              if fmt.is_grade(c)}
    full = float(sum(points.values()))

    def solved(**answers: str) -> nbformat.NotebookNode:
        nb = copy.deepcopy(sol)
        for gid, source in answers.items():
            _cell(nb, gid).source = source
        return nb

    tests_pass = copy.deepcopy(ex)
    for cell in tests_pass.cells:
        if fmt.is_grade(cell):
            cell.source = "pass"
    tests_deleted = copy.deepcopy(sol)
    tests_deleted.cells = [c for c in tests_deleted.cells if not fmt.is_grade(c)]
    duplicated = copy.deepcopy(sol)
    stub = copy.deepcopy(_cell(ex, "q1_answer"))
    stub.id = "q1-answer-copy"
    duplicated.cells.append(stub)  # the last copy wins: q1 is unanswered
    wrong_kernel = copy.deepcopy(sol)
    wrong_kernel.metadata["kernelspec"] = {"name": "julia-1.9", "display_name": "Julia",
                                           "language": "julia"}
    hostile_html = solved(q1_answer="def mlp_param_count(*sizes) -> int:\n"
                                    "    '<script>alert(1)</script>'\n    return 0")
    return {
        "tests_edited_to_pass": (tests_pass, "graded", 0.0, {"q1_test": "error"}),
        "tests_deleted": (tests_deleted, "graded", full, {"q1_test": "pass"}),
        "duplicated_answer": (duplicated, "graded", full - points["q1_test"],
                              {"q1_test": "error", "q2_test": "pass"}),
        "os_exit_in_call": (solved(q1_answer="def mlp_param_count(*sizes) -> int:\n"
                                             "    import os\n    os._exit(1)"),
                            "graded", full - points["q1_test"],
                            {"q1_test": "kernel_died", "q2_test": "pass", "q5_test": "pass"}),
        "os_exit_in_answer_cell": (solved(q2_answer="import os\nos._exit(1)"), "graded",
                                   full - points["q2_test"],
                                   {"q2_test": "kernel_died", "q3_test": "pass"}),
        "infinite_loop": (solved(q3_answer="while True:\n    pass"), "graded",
                          full - points["q3_test"], {"q3_test": "timeout", "q4_test": "pass"}),
        "huge_allocation": (solved(q4_answer="def output_shapes(model, x):\n"
                                             "    block = bytearray(64 * 2**30)\n"
                                             "    return {}"),
                            "graded", full - points["q4_test"],
                            {"q4_test": "error", "q5_test": "pass"}),
        "sys_exit": (solved(q5_answer="import sys\n\ndef lstm_classifier_param_count():\n"
                                      "    sys.exit()"),
                     "graded", full - points["q5_test"], {"q5_test": "error"}),
        # replacing a method of the shell is tampering, whatever it is for: all zero
        "showtraceback_replaced": (solved(q1_answer="get_ipython().showtraceback = "
                                          "lambda *a, **k: None\n\ndef mlp_param_count(*sizes):\n"
                                          "    return 1"),
                                   "tampered", 0.0, {"q1_test": "tampered"}),
        "warnings_printed": (solved(q1_answer="import sys, warnings\n"
                                    "warnings.warn('careful')\nprint('noise', file=sys.stderr)"
                                    "\n" + _cell(sol, "q1_answer").source),
                             "graded", full, {"q1_test": "pass"}),
        "wrong_kernelspec": (wrong_kernel, "graded", full, {"q1_test": "pass"}),
        "hostile_html": (hostile_html, "graded", full - points["q1_test"], {"q1_test": "fail"}),
        "invalid_json": (b'{"cells": [', "unreadable", 0.0, {}),
        "empty_file": (b"", "unreadable", 0.0, {}),
        "text_file": (b"print('I am a script, not a notebook')\n", "unreadable", 0.0, {}),
    }


@pytest.fixture(scope="module")
def attacks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list, dict, dict, dict]:
    root = tmp_path_factory.mktemp("attack_submissions")
    cases = _attacks()
    for student, (nb, *_rest) in cases.items():
        _write(root, student, nb)
    _write(root, "renamed", _read("solutions"), "01_layers_of_a_model (1).ipynb")
    before = _digests(root)
    out = tmp_path_factory.mktemp("attack_out")
    results = grade.grade_submissions(root, out, solutions=ROOT / "solutions", jobs=2,
                                      timeout=15, memory_mb=2048)
    return out, results, cases, before, _digests(root)


def test_each_attack_gets_its_documented_status_and_score(attacks: tuple) -> None:
    _, results, cases, _, _ = attacks
    found = _by_student(results)
    assert set(found) == set(cases)
    for student, (_, status, score, statuses) in cases.items():
        r = found[student]
        assert r.status == status, f"{student}: {r.status} {r.notes}"
        assert r.score == score, f"{student}: score {r.score}, expected {score}: {r.tests}"
        got = _statuses(r)
        for gid, expected in statuses.items():
            assert got[gid] == expected, f"{student} {gid}: {got[gid]} ({r.tests})"


def test_notes_explain_duplicates_kernels_and_unreadable_files(attacks: tuple) -> None:
    _, results, _, _, _ = attacks
    found = _by_student(results)
    assert any("appears 2 times" in n for n in found["duplicated_answer"].notes)
    assert any("julia-1.9" in n for n in found["wrong_kernelspec"].notes)
    assert any("empty" in n for n in found["empty_file"].notes)
    assert any("not a Jupyter notebook" in n for n in found["text_file"].notes)
    renamed = next(r for r in results if r.student_id == "renamed")
    assert renamed.status == "unknown_notebook" and NB01 in renamed.notes[0]


def test_submissions_are_never_modified(attacks: tuple) -> None:
    _, _, _, before, after = attacks
    assert before == after


def test_feedback_escapes_html_and_hides_hidden_tests(attacks: tuple) -> None:
    out, _, _, _, _ = attacks
    page = (out / "feedback" / "hostile_html" / "01_layers_of_a_model.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    hidden = [line.strip() for c in _read("solutions").cells if fmt.is_grade(c)
              for line in c.source.split("\n")[
                  slice(*_hidden_span(c.source))] if len(line.strip()) > 15]
    assert hidden, "solution 01 should have hidden tests"
    for student in ("tests_edited_to_pass", "hostile_html", "os_exit_in_call"):
        page = (out / "feedback" / student / "01_layers_of_a_model.html").read_text()
        leaked = [line for line in hidden if html.escape(line) in page]
        assert not leaked, f"{student}: hidden test lines in feedback: {leaked}"
        assert "Traceback" not in page


def _hidden_span(source: str) -> tuple[int, int]:
    regions = fmt.marker_regions(source, fmt.BEGIN_HIDDEN, fmt.END_HIDDEN)
    return (regions[0][0] + 1, regions[0][1]) if regions else (0, 0)


def test_check_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert check_main([str(ROOT / "solutions" / NB01)]) == 0
    assert "All questions pass" in capsys.readouterr().out
    assert check_main([str(ROOT / "exercises" / NB01)]) == 1
    table = capsys.readouterr().out
    assert "q1_test" in table and "not answered yet" in table and "Hint:" in table
    stray = tmp_path / "99_unknown.ipynb"
    nbformat.write(_read("solutions"), stray)
    assert check_main([str(stray)]) == 2


def test_grade_command_rejects_a_missing_folder(tmp_path: Path) -> None:
    assert grade_main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
