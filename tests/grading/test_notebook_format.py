"""The pure parts of the notebook format: markers, stubs, hidden tests, checksums, schema-3 rules."""

from __future__ import annotations

import hashlib
from pathlib import Path

import nbformat
import pytest

from course_utils.grading import notebook_format as fmt
from course_utils.grading.build import solution_problems

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def _cell(source: str = "", cell_type: str = "code", **nbgrader: object) -> dict:
    meta = {"schema_version": 3, "grade": False, "solution": False, "locked": False}
    meta.update(nbgrader)
    return {"cell_type": cell_type, "source": source, "metadata": {"nbgrader": meta}}


# ---------------------------------------------------------------- markers and stubs


def test_marker_regions_finds_each_region() -> None:
    src = "a\n### BEGIN SOLUTION\nb\n### END SOLUTION\nc\n# BEGIN SOLUTION\n# END SOLUTION"
    assert fmt.marker_regions(src, fmt.BEGIN_SOLUTION, fmt.END_SOLUTION) == [(1, 3), (5, 6)]


@pytest.mark.parametrize(("source", "complaint"), [
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "cannot nest"),
    ("x = 1\n### END SOLUTION", "without a"),
    ("### BEGIN SOLUTION\nx = 1", "never closed"),
])
def test_unbalanced_markers_are_refused(source: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        fmt.marker_regions(source, fmt.BEGIN_SOLUTION, fmt.END_SOLUTION)


def test_stub_keeps_the_indentation_of_each_begin_line() -> None:
    src = ("class A:\n    def f(self):\n        ### BEGIN SOLUTION\n        return 1\n"
           "        ### END SOLUTION\n\ndef g():\n  ### BEGIN SOLUTION\n  return 2\n"
           "  ### END SOLUTION\n")
    out, found = fmt.clear_solutions(src)
    assert found
    assert out == ("class A:\n    def f(self):\n        # YOUR CODE HERE\n"
                   "        raise NotImplementedError()\n\ndef g():\n  # YOUR CODE HERE\n"
                   "  raise NotImplementedError()\n")


def test_markdown_solutions_get_the_text_stub_and_plain_cells_are_unchanged() -> None:
    out, found = fmt.clear_solutions("Why?\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION",
                                     "markdown")
    assert (out, found) == ("Why?\nYOUR ANSWER HERE", True)
    assert fmt.clear_solutions("x = 1") == ("x = 1", False)


def test_hidden_tests_are_removed_with_their_markers() -> None:
    src = "assert a\n    ### BEGIN HIDDEN TESTS\n    assert b\n    ### END HIDDEN TESTS\nassert c"
    assert fmt.remove_hidden_tests(src) == ("assert a\nassert c", True)
    assert fmt.remove_hidden_tests("assert a") == ("assert a", False)


# ---------------------------------------------------------------- checksums and locks


def test_checksum_is_nbgraders_md5_recipe() -> None:
    cell = _cell("assert f() == 2", grade=True, locked=True, grade_id="q1_test", points=2)
    expected = hashlib.md5(b"assert f() == 2" b"code" b"True" b"False" b"True" b"q1_test"
                           b"2.0").hexdigest()
    assert fmt.compute_checksum(cell) == expected


def test_checksum_changes_with_source_points_and_flags() -> None:
    base = _cell("x", grade=True, grade_id="q", points=1)
    variants = [_cell("y", grade=True, grade_id="q", points=1),
                _cell("x", grade=True, grade_id="q", points=2),
                _cell("x", grade=True, grade_id="r", points=1),
                _cell("x", solution=True, grade_id="q")]
    sums = {fmt.compute_checksum(c) for c in [base, *variants]}
    assert len(sums) == 5


def test_lock_flags_follow_nbgraders_lockcells() -> None:
    assert fmt.lock_metadata(_cell(solution=True, grade_id="a")) == {"deletable": False}
    assert fmt.lock_metadata(_cell(grade=True, grade_id="t", points=1)) == {
        "deletable": False, "editable": False}
    assert fmt.lock_metadata(_cell(locked=True, grade_id="s")) == {
        "deletable": False, "editable": False}
    assert fmt.lock_metadata({"cell_type": "code", "source": "", "metadata": {}}) == {}


# ---------------------------------------------------------------- schema-3 validation


@pytest.mark.parametrize(("cell", "complaint"), [
    (_cell(grade=True, grade_id="t"), "needs 'points'"),
    (_cell(grade=True, grade_id="t", points=-1), "points must be a number >= 0"),
    (_cell(grade=True, grade_id="t", points="2"), "points must be a number"),
    (_cell(solution=True, grade_id=""), "non-empty grade_id"),
    (_cell(solution=True), "non-empty grade_id"),
    (_cell(solution=True, grade_id="q 1"), "must match"),
    (_cell(solution=True, grade_id="q1", hint="no"), "unknown key 'hint'"),
    (_cell(solution=True, grade_id="q1", schema_version=2), "schema_version is 2"),
    (_cell(solution="yes", grade_id="q1"), "must be true or false"),
    (_cell("text", "markdown", grade=True, grade_id="m", points=1), "markdown cell"),
    (_cell("x = 1", task=True, grade_id="t", points=1), "task cell must be markdown"),
])
def test_schema_violations_are_named(cell: dict, complaint: str) -> None:
    problems = fmt.metadata_problems([cell])
    assert any(complaint in p for p in problems), problems
    assert problems[0].startswith("cell 0")


def test_missing_required_keys_and_duplicate_ids() -> None:
    bare = {"cell_type": "code", "source": "", "metadata": {"nbgrader": {"grade_id": "q"}}}
    assert sum("missing required key" in p for p in fmt.metadata_problems([bare])) == 4
    twice = [_cell(solution=True, grade_id="q1"), _cell(grade=True, grade_id="q1", points=1)]
    assert fmt.metadata_problems(twice) == [
        "cell 1 (grade_id 'q1'): grade_id duplicates the one of cell 0"]


def test_a_valid_notebook_has_no_problems() -> None:
    cells = [_cell(locked=True, grade_id="setup"), _cell(solution=True, grade_id="q1"),
             _cell(grade=True, locked=True, grade_id="q1_test", points=2.5),
             {"cell_type": "markdown", "source": "plain", "metadata": {}}]
    assert fmt.metadata_problems(cells) == []


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_every_solution_notebook_follows_the_format(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    problems = solution_problems(nb)
    assert not problems, f"{path.name}:\n" + "\n".join(problems)
    tests = [c for c in nb.cells if fmt.is_grade(c)]
    assert 3 <= len(tests) <= 6, f"{path.name}: {len(tests)} graded questions, expected 3-6"
    assert all(fmt.grade_id(c).endswith("_test") for c in tests), "name tests qN_test"


def test_solution_01_exists_with_five_questions() -> None:
    nb = nbformat.read(ROOT / "solutions" / "01_layers_of_a_model.ipynb", as_version=4)
    ids = [fmt.grade_id(c) for c in nb.cells if fmt.grade_id(c)]
    assert ids == ["setup"] + [f"q{n}_{kind}" for n in range(1, 6)
                               for kind in ("answer", "test")]
