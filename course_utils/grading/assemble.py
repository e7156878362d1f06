"""Put a submission onto its solution's skeleton, as nbgrader's ``OverwriteCells`` does.

Setup, locked and test cells (hidden tests included) come from the solution; the learner's
answer cells are matched by grade_id (the last copy of a duplicated id wins), and the code
cells the learner added run where the learner put them (after the skeleton cell they follow).

>>> from nbformat.v4 import new_code_cell, new_notebook
>>> def cell(source, **nbgrader):
...     meta = {"schema_version": 3, "grade": False, "solution": False, "locked": False}
...     return new_code_cell(source, metadata={"nbgrader": {**meta, **nbgrader}})
>>> from course_utils.grading.assignment import Assignment
>>> solution = new_notebook(cells=[cell("x = 1", solution=True, grade_id="q1_answer"),
...                                cell("assert x", grade=True, grade_id="q1_test", points=1)])
>>> a = Assignment("01.ipynb", solution, solution)
>>> mine = new_notebook(cells=[cell("x = 2", solution=True, grade_id="q1_answer"),
...                            new_code_cell("print(x)")])
>>> answers, extras, notes = read_answers(mine, a)
>>> [(s.kind, s.source) for s in steps(a, answers, extras)]
[('answer', 'x = 2'), ('extra', 'print(x)'), ('test', 'assert x')]
>>> notes
['1 code cell(s) you added were run where you put them, as nbgrader does']
"""

from __future__ import annotations

from typing import NamedTuple

import nbformat

from course_utils._paths import KERNEL_NAME
from course_utils.grading import notebook_format as fmt
from course_utils.grading.assignment import Assignment

__all__ = ["Step", "read_answers", "steps"]


class Step(NamedTuple):
    """One cell to run: ``index`` in the solution (-1: a cell the learner added), ``kind``
    (``answer``, ``test``, ``locked`` or ``extra``), its grade_id and its source."""

    index: int
    kind: str
    grade_id: str
    source: str


def read_answers(submission: nbformat.NotebookNode, assignment: Assignment
                 ) -> tuple[dict[str, str], dict[str | None, list[str]], list[str]]:
    """The learner's answers by grade_id (last copy wins), the code cells the learner added
    (keyed by the grade_id of the skeleton cell they follow; None: before all) and notes."""
    wanted = assignment.answer_ids
    known = {fmt.grade_id(c) for c in assignment.solution.cells if fmt.grade_id(c)}
    answers: dict[str, str] = {}
    extras: dict[str | None, list[str]] = {}
    counts: dict[str, int] = {}
    anchor: str | None = None
    for cell in submission.cells:
        gid = fmt.grade_id(cell)
        if gid in known:
            anchor = gid
        if cell.get("cell_type") != "code":
            continue
        if gid in wanted:
            answers[gid] = cell.source
            counts[gid] = counts.get(gid, 0) + 1
        elif gid not in known and cell.source.strip():
            extras.setdefault(anchor, []).append(cell.source)
    notes = [f"answer cell {gid!r} appears {n} times; the last copy was graded"
             for gid, n in counts.items() if n > 1]
    added = sum(len(v) for v in extras.values())
    if added:
        notes.append(f"{added} code cell(s) you added were run where you put them, as nbgrader "
                     "does")
    notes += [f"answer cell {gid!r} is missing from the notebook" for gid in wanted
              if gid not in answers]
    kernel = submission.metadata.get("kernelspec", {}).get("name")
    if kernel and kernel != KERNEL_NAME:
        notes.append(f"the notebook asks for kernel {kernel[:60]!r}; it was graded with "
                     f"{KERNEL_NAME!r}")
    return answers, extras, notes


def steps(assignment: Assignment, answers: dict[str, str],
          extras: dict[str | None, list[str]]) -> list[Step]:
    """The rebuilt notebook's code cells in running order (a missing answer: the stub)."""
    found = [Step(-1, "extra", "", s) for s in extras.get(None, [])]
    for index, cell in enumerate(assignment.solution.cells):
        gid = fmt.grade_id(cell)
        if cell.cell_type == "code":
            if fmt.is_solution(cell):
                source = answers.get(gid, assignment.exercise.cells[index].source)
                found.append(Step(index, "answer", gid, source))
            elif fmt.is_grade(cell):
                found.append(Step(index, "test", gid, cell.source))
            else:
                found.append(Step(index, "locked", gid, cell.source))
        found += [Step(-1, "extra", "", s) for s in extras.get(gid, [])] if gid else []
    return found
