"""Building exercises from solutions: stubs, hidden tests, tags, refusals, determinism, freshness."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_utils.grading import build
from course_utils.grading import notebook_format as fmt

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def _meta(**nbgrader: object) -> dict:
    meta = {"schema_version": 3, "grade": False, "solution": False, "locked": False}
    meta.update(nbgrader)
    return {"nbgrader": meta}


def _answer(gid: str, source: str) -> nbformat.NotebookNode:
    return new_code_cell(source, metadata=_meta(solution=True, grade_id=gid))


def _test(gid: str, source: str, points: int = 1) -> nbformat.NotebookNode:
    return new_code_cell(source, metadata=_meta(grade=True, locked=True, grade_id=gid,
                                                points=points))


F_ANSWER = "def f():\n    ### BEGIN SOLUTION\n    return 2\n    ### END SOLUTION"


def _notebook(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = new_notebook(cells=list(cells))
    for i, cell in enumerate(nb.cells):
        cell.id = f"c{i}"
    return nb


def test_committed_exercises_are_fresh() -> None:
    reasons = build.stale_exercises(ROOT / "solutions", ROOT / "exercises")
    assert not reasons, "\n".join(reasons) + "\nrun `make exercises` and commit the result"


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_exercise_is_the_student_version_of_its_solution(path: Path) -> None:
    solution = nbformat.read(path, as_version=4)
    exercise = build.build_exercise(solution, path.name)
    assert build.exercise_bytes(path) == build.exercise_bytes(path), "build is not deterministic"
    assert exercise.metadata.kernelspec.name == "sizing-nn"
    assert len(exercise.cells) == len(solution.cells)
    for sol, ex in zip(solution.cells, exercise.cells, strict=True):
        assert ex.id == sol.id
        assert fmt.BEGIN_SOLUTION not in ex.source and fmt.BEGIN_HIDDEN not in ex.source
        if ex.cell_type == "code":
            assert ex.outputs == [] and ex.execution_count is None
        if fmt.is_solution(sol) and sol.cell_type == "code":
            assert fmt.CODE_STUB.split("\n")[1] in ex.source
        if "checksum" in ex.metadata.get("nbgrader", {}):
            assert ex.metadata.nbgrader.checksum == fmt.compute_checksum(ex)
        if not fmt.is_solution(sol) and not fmt.is_grade(sol):
            assert ex.source == sol.source


def test_build_writes_identical_bytes_twice_and_check_detects_staleness(tmp_path: Path) -> None:
    solutions, out = tmp_path / "solutions", tmp_path / "exercises"
    solutions.mkdir()
    nb = _notebook(_answer("q1_answer", F_ANSWER), _test("q1_test", "assert f() == 2"))
    nbformat.write(nb, solutions / "x.ipynb")
    assert build.main(["--solutions", str(solutions), "--out", str(out)]) == 0
    first = (out / "x.ipynb").read_bytes()
    assert build.main(["--solutions", str(solutions), "--out", str(out)]) == 0
    assert (out / "x.ipynb").read_bytes() == first
    assert build.main(["--check", "--solutions", str(solutions), "--out", str(out)]) == 0
    nb.cells[1].source = "assert f() == 2, 'f should return 2'"
    nbformat.write(nb, solutions / "x.ipynb")
    assert build.stale_exercises(solutions, out) == [
        "exercises/x.ipynb differs from what solutions/x.ipynb builds"]
    (out / "orphan.ipynb").write_text("{}")
    assert build.main(["--check", "--solutions", str(solutions), "--out", str(out)]) == 1
    assert "exercises/orphan.ipynb has no solutions/orphan.ipynb" in build.stale_exercises(
        solutions, out)


@pytest.mark.parametrize(("cells", "complaint"), [
    ([_answer("q1_answer", "### BEGIN SOLUTION\nx = 2\n### END SOLUTION"),
      _test("q1_test", "assert x == 2")], "at module or class level"),
    ([_answer("q1_answer", "class A:\n    ### BEGIN SOLUTION\n    x = 2\n    ### END SOLUTION"),
      _test("q1_test", "assert A.x == 2")], "at module or class level"),
    ([_answer("q1_answer", "def f():\n    ### BEGIN SOLUTION\n    return 2"),
      _test("q1_test", "assert f() == 2")], "unbalanced markers"),
    ([_answer("q1_answer", "def f():\n    return 2"), _test("q1_test", "assert f() == 2")],
     "needs a ### BEGIN SOLUTION"),
    ([_answer("q1_answer", "x = [\n### BEGIN SOLUTION\n1\n### END SOLUTION\n]"),
      _test("q1_test", "assert x")], "not valid Python"),
    ([new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION"),
      _test("q1_test", "assert True")], "not a solution cell"),
    ([_answer("q1_answer", F_ANSWER),
      new_code_cell("### BEGIN HIDDEN TESTS\nassert f()\n### END HIDDEN TESTS")],
     "not a grade cell"),
    ([_answer("q1_answer", F_ANSWER)], "no grade cell"),
    ([_answer("q1_answer", F_ANSWER), _test("q1_answer", "assert f() == 2")],
     "duplicates"),
])
def test_build_refuses_broken_solutions_naming_notebook_cell_and_id(
        cells: list, complaint: str, tmp_path: Path) -> None:
    nb = _notebook(*cells)
    with pytest.raises(build.BuildError) as caught:
        build.build_exercise(nb, "07_broken.ipynb")
    message = str(caught.value)
    assert "07_broken.ipynb" in message and complaint in message, message
    if complaint != "no grade cell":
        assert "cell " in message and "grade_id" in message, message
    # the command line prints the same and writes nothing
    solutions, out = tmp_path / "s", tmp_path / "e"
    solutions.mkdir()
    nbformat.write(nb, solutions / "07_broken.ipynb")
    assert build.main(["--solutions", str(solutions), "--out", str(out)]) == 1
    assert not out.exists()


def test_raises_exception_tags_follow_the_calls() -> None:
    nb = _notebook(
        new_markdown_cell("intro"),
        new_code_cell("import math", metadata=_meta(locked=True, grade_id="setup")),
        _answer("q1_answer", F_ANSWER),
        _test("q1_test", "assert f() == 2"),
        _answer("q2_answer", "def g():\n    ### BEGIN SOLUTION\n    return f() + 1\n"
                             "    ### END SOLUTION"),
        new_code_cell("def helper():\n    return f()\n\nvalue = helper()"),
        new_code_cell("print(value)"),
        new_code_cell("def unused():\n    return g()"),
        new_code_cell("print(math.pi)"),
        _test("q2_test", "assert g() == 3"),
    )
    exercise = build.build_exercise(nb, "x.ipynb")
    tagged = [i for i, c in enumerate(exercise.cells)
              if build.RAISES_TAG in c.metadata.get("tags", [])]
    assert tagged == [3, 5, 6, 9]
    reasons = build.raising_cells(exercise.cells)
    assert reasons[5].startswith("NotImplementedError: uses 'helper'")
    assert reasons[6].startswith("NameError: uses 'value'")
    assert "solution" not in exercise.cells[2].source.lower()


def test_hidden_tests_are_absent_from_the_exercise() -> None:
    nb = _notebook(_answer("q1_answer", F_ANSWER), _test(
        "q1_test", "assert f() == 2\n### BEGIN HIDDEN TESTS\nassert f() != 3\n"
                   "### END HIDDEN TESTS"))
    exercise = build.build_exercise(nb, "x.ipynb")
    assert exercise.cells[1].source == "assert f() == 2"
    assert exercise.cells[1].metadata.nbgrader.checksum == fmt.compute_checksum(
        exercise.cells[1])
