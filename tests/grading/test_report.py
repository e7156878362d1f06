"""``report`` is kept for old imports: the same names, the old signatures, the same bytes."""

from __future__ import annotations

from pathlib import Path

from nbformat.v4 import new_code_cell, new_notebook

from course_utils.grading import feedback, gradebook, records, report
from course_utils.grading.assignment import Assignment, gradebook_columns, visible_tests
from course_utils.grading.build import build_exercise


def _assignment() -> Assignment:
    def cell(source: str, **nbgrader: object):
        meta = {"schema_version": 3, "grade": False, "solution": False, "locked": False}
        return new_code_cell(source, metadata={"nbgrader": {**meta, **nbgrader}})

    solution = new_notebook(cells=[
        cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION", solution=True,
             grade_id="q1_answer"),
        cell("assert f\n### BEGIN HIDDEN TESTS\nassert f() == 1\n### END HIDDEN TESTS",
             grade=True, locked=True, grade_id="q1_test", points=2)])
    return Assignment("01.ipynb", solution, build_exercise(solution, "01.ipynb"))


def _rows() -> list[records.NotebookResult]:
    test = records.TestResult("q1_test", 0.0, 2.0, "fail", "no", 0.1)
    return [records.NotebookResult("ada", "01.ipynb", 0.0, 2.0, "graded", [test]),
            records.NotebookResult("bob", "", 0.0, 0.0, "missing")]


def test_the_old_names_are_the_new_ones() -> None:
    assert report.safe_cell is gradebook.safe_cell
    assert report.write_gradebook is gradebook.write_gradebook
    assert report.format_table is feedback.format_table
    assert report.FIXED_COLUMNS == gradebook.FIXED_COLUMNS
    assert set(report.__all__) == {"FIXED_COLUMNS", "safe_cell", "write_reports",
                                   "write_gradebook", "feedback_html", "format_table"}


def test_the_old_signatures_write_what_the_new_ones_write(tmp_path: Path) -> None:
    a = _assignment()
    report.write_reports(_rows(), {a.name: a}, tmp_path / "old")
    gradebook.write_reports(_rows(), tmp_path / "new", gradebook_columns({a.name: a}),
                            visible_tests({a.name: a}))
    for name in ("grades.csv", "results/ada/01.json", "feedback/ada/01.html"):
        assert (tmp_path / "old" / name).read_bytes() == (tmp_path / "new" / name).read_bytes()
    page = report.feedback_html(_rows()[0], a)
    assert page == feedback.feedback_html(_rows()[0], {"q1_test": a.visible_test("q1_test")})
    assert "assert f" in page and "f() == 1" not in page
    assert report.feedback_html(_rows()[0]) == feedback.feedback_html(_rows()[0])
