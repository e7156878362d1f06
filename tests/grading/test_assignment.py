"""The assignments as the grader and the renderer see them (built from ``solutions/``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from course_utils.grading import notebook_format as fmt
from course_utils.grading.assignment import gradebook_columns, load_assignments, visible_tests

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def assignments() -> dict:
    return load_assignments(ROOT / "solutions")


def test_every_solution_is_an_assignment(assignments: dict) -> None:
    assert sorted(assignments) == sorted(p.name for p in (ROOT / "solutions").glob("*.ipynb"))
    for a in assignments.values():
        assert a.max_score > 0 and a.answer_ids and all(i.endswith("_answer") for i in a.answer_ids)


def test_the_columns_are_what_the_gradebook_always_had(assignments: dict) -> None:
    """The hand-rolled reading of nbgrader metadata the renderer used to do, as the reference."""
    expected: list[str] = []
    for a in assignments.values():
        for cell in a.solution.cells:
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade") and gid not in expected:
                expected.append(gid)
    assert gradebook_columns(assignments) == expected
    assert expected[:2] == ["q1_test", "q2_test"]


def test_the_visible_tests_are_the_exercises_without_hidden_lines(assignments: dict) -> None:
    visible = visible_tests(assignments)
    assert set(visible) == set(assignments)
    for name, a in assignments.items():
        tests = [fmt.grade_id(c) for c in a.solution.cells if fmt.is_grade(c)]
        assert list(visible[name]) == tests
        sources = {fmt.grade_id(c): c.source for c in a.solution.cells}
        for gid, source in visible[name].items():
            assert source == a.visible_test(gid) == fmt.remove_hidden_tests(sources[gid])[0]
            assert fmt.BEGIN_HIDDEN not in source
