"""A submission on its solution's skeleton: answers by grade_id, added cells, notes, order."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_utils._paths import KERNEL_NAME
from course_utils.grading.assemble import Step, read_answers, steps
from course_utils.grading.assignment import Assignment


def _cell(source: str, **nbgrader: object) -> nbformat.NotebookNode:
    meta = {"schema_version": 3, "grade": False, "solution": False, "locked": False}
    return new_code_cell(source, metadata={"nbgrader": {**meta, **nbgrader}})


def _assignment() -> Assignment:
    solution = new_notebook(cells=[
        _cell("import math", locked=True, grade_id="setup"),
        _cell("a = 1", solution=True, grade_id="q1_answer"),
        _cell("assert a", grade=True, grade_id="q1_test", points=1),
        _cell("b = 2", solution=True, grade_id="q2_answer"),
        _cell("assert b", grade=True, grade_id="q2_test", points=1)])
    exercise = nbformat.from_dict(solution)
    for cell in exercise.cells:
        if cell.metadata["nbgrader"]["solution"]:
            cell.source = "raise NotImplementedError()"
    return Assignment("01.ipynb", solution, exercise)


def test_answers_by_grade_id_the_last_copy_wins_and_notes_say_so() -> None:
    mine = new_notebook(cells=[
        _cell("a = 'first'", solution=True, grade_id="q1_answer"),
        new_markdown_cell("my notes"),
        _cell("a = 'second'", solution=True, grade_id="q1_answer"),
        _cell("assert True", grade=True, grade_id="q1_test", points=1)],
        metadata={"kernelspec": {"name": "julia-1.9", "display_name": "Julia"}})
    answers, extras, notes = read_answers(mine, _assignment())
    assert answers == {"q1_answer": "a = 'second'"} and extras == {}
    assert notes == ["answer cell 'q1_answer' appears 2 times; the last copy was graded",
                     "answer cell 'q2_answer' is missing from the notebook",
                     f"the notebook asks for kernel 'julia-1.9'; it was graded with {KERNEL_NAME!r}"]


def test_added_cells_run_where_the_learner_put_them() -> None:
    mine = new_notebook(cells=[
        new_code_cell("first = 0"),
        _cell("a = 3", solution=True, grade_id="q1_answer"),
        new_code_cell("helper = 1"), new_code_cell("   "),
        _cell("edited test", grade=True, grade_id="q1_test", points=1),
        new_code_cell("after_test = 1")])
    answers, extras, notes = read_answers(mine, _assignment())
    assert extras == {None: ["first = 0"], "q1_answer": ["helper = 1"],
                      "q1_test": ["after_test = 1"]}
    assert notes[0] == "3 code cell(s) you added were run where you put them, as nbgrader does"
    assert steps(_assignment(), answers, extras) == [
        Step(-1, "extra", "", "first = 0"), Step(0, "locked", "setup", "import math"),
        Step(1, "answer", "q1_answer", "a = 3"), Step(-1, "extra", "", "helper = 1"),
        Step(2, "test", "q1_test", "assert a"), Step(-1, "extra", "", "after_test = 1"),
        Step(3, "answer", "q2_answer", "raise NotImplementedError()"),  # the exercise's stub
        Step(4, "test", "q2_test", "assert b")]
