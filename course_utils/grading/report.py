"""Kept for old imports: the feedback is ``feedback``, the output layout ``gradebook``.

``write_reports`` and ``feedback_html`` here take ``Assignment`` objects, as they used to;
the new ones take plain data (``assignment.gradebook_columns`` and ``visible_tests``).
"""

from __future__ import annotations

from pathlib import Path

from course_utils.grading import gradebook
from course_utils.grading.assignment import Assignment, gradebook_columns, visible_tests
from course_utils.grading.feedback import feedback_html as _feedback_html
from course_utils.grading.feedback import format_table  # kept for old imports
from course_utils.grading.gradebook import (  # kept for old imports
    FIXED_COLUMNS,
    safe_cell,
    write_gradebook,
)
from course_utils.grading.records import NotebookResult

__all__ = ["FIXED_COLUMNS", "safe_cell", "write_reports", "write_gradebook", "feedback_html",
           "format_table"]


def write_reports(results: list[NotebookResult], assignments: dict[str, Assignment],
                  out: Path) -> None:
    """``gradebook.write_reports`` with the columns and visible tests of ``assignments``."""
    gradebook.write_reports(results, Path(out), gradebook_columns(assignments),
                            visible_tests(assignments))


def feedback_html(result: NotebookResult, assignment: Assignment | None = None) -> str:
    """``feedback.feedback_html`` with the visible tests of ``assignment``."""
    visible = None if assignment is None else visible_tests({assignment.name: assignment})[
        assignment.name]
    return _feedback_html(result, visible)
