"""The learner's feedback page and the ``check`` table: escaped, no hidden test, plain data."""

from __future__ import annotations

from course_utils.grading import records
from course_utils.grading.feedback import feedback_html, format_points, format_table


def _result(message: str = "expected 5, got 4") -> records.NotebookResult:
    tests = [records.TestResult("q1_test", 2.0, 2.0, "pass", "", 0.1),
             records.TestResult("q2_test", 0.0, 1.0, "fail", message, 0.1)]
    return records.NotebookResult("<b>ada</b>", "01.ipynb", 2.0, 3.0, "graded", tests,
                                  notes=["1 code cell(s) <you> added"],
                                  answers={"q1_answer": "x = '<script>'", "q2_answer": "y" * 30_000})


def test_every_piece_of_text_is_escaped() -> None:
    page = feedback_html(_result("<img src=x onerror=alert(1)>"), {"q1_test": "assert x < 2",
                                                                    "q2_test": "assert y"})
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<img" not in page and "&lt;img src=x" in page
    assert "<b>ada</b>" not in page and "&lt;b&gt;ada&lt;/b&gt;" in page
    assert "assert x &lt; 2" in page and "&lt;you&gt;" in page


def test_the_visible_tests_come_from_plain_data_only() -> None:
    with_tests = feedback_html(_result(), {"q1_test": "assert x", "q2_test": "assert y"})
    assert "The tests you could see" in with_tests and "<summary>q2_test</summary>" in with_tests
    assert "The tests you could see" not in feedback_html(_result())


def test_long_answers_are_cut() -> None:
    page = feedback_html(_result())
    assert "y" * 20_000 + "\n[...]" in page and "y" * 20_001 not in page


def test_points_and_the_check_table() -> None:
    assert [format_points(v) for v in (2.0, 1.5, 0.0, 11)] == ["2", "1.5", "0", "11"]
    table = format_table(_result("a long message " * 20))
    assert table.splitlines()[0] == "01.ipynb: graded, score 2 / 3"
    assert all(len(line) <= 100 for line in table.splitlines())
    assert "Notes:" in table
