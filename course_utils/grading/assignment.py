"""The assignments: each solution notebook with the exercise built from it.

The grader runs a submission on its assignment's solution (``assemble``), scores it with the
solution's test cells (``verdict``) and writes a gradebook whose columns are the solutions'
questions; the renderer gets those columns and the tests learners could see as plain data
(``gradebook_columns``, ``visible_tests``), so it never needs this module.

>>> from nbformat.v4 import new_code_cell, new_notebook
>>> def cell(source, **nbgrader):
...     meta = {"schema_version": 3, "grade": False, "solution": False, "locked": False}
...     return new_code_cell(source, metadata={"nbgrader": {**meta, **nbgrader}})
>>> solution = new_notebook(cells=[
...     cell("def f():\\n    ### BEGIN SOLUTION\\n    return 1\\n    ### END SOLUTION",
...          solution=True, grade_id="q1_answer"),
...     cell("assert f\\n### BEGIN HIDDEN TESTS\\nassert f() == 1\\n### END HIDDEN TESTS",
...          grade=True, locked=True, grade_id="q1_test", points=2)])
>>> a = Assignment("01.ipynb", solution, build_exercise(solution, "01.ipynb"))
>>> a.answer_ids, a.max_score, gradebook_columns({a.name: a})
(['q1_answer'], 2.0, ['q1_test'])
>>> visible_tests({a.name: a})
{'01.ipynb': {'q1_test': 'assert f'}}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import nbformat

from course_utils.grading import notebook_format as fmt
from course_utils.grading.build import build_exercise
from course_utils.grading.checks import Probe, load_probes

__all__ = ["Assignment", "load_assignments", "gradebook_columns", "visible_tests"]


@dataclass
class Assignment:
    """A solution notebook prepared for grading."""

    name: str
    solution: nbformat.NotebookNode
    exercise: nbformat.NotebookNode
    probes: dict[str, list[Probe]] = field(default_factory=dict)  # grade_id -> trusted probes

    @property
    def answer_ids(self) -> list[str]:
        return [fmt.grade_id(c) for c in self.solution.cells
                if c.cell_type == "code" and fmt.is_solution(c)]

    @property
    def max_score(self) -> float:
        return float(sum(fmt.nbgrader_meta(c)["points"] for c in self.solution.cells
                         if fmt.is_grade(c)))

    def visible_test(self, gid: str) -> str:
        """The test's source as learners see it (hidden tests removed)."""
        return next(c.source for c in self.exercise.cells if fmt.grade_id(c) == gid)

    @cached_property
    def hidden_lines(self) -> list[str]:
        """Lines of hidden tests long enough to recognise in a message (no whitespace)."""
        found = []
        for cell in self.solution.cells:
            if not fmt.is_grade(cell):
                continue
            lines = cell.source.split("\n")
            for start, end in fmt.marker_regions(cell.source, fmt.BEGIN_HIDDEN, fmt.END_HIDDEN):
                found += [re.sub(r"\s+", "", line) for line in lines[start + 1:end]]
        return [line for line in found if len(line) >= 12]


def load_assignments(solutions: Path) -> dict[str, Assignment]:
    """Every ``*.ipynb`` in ``solutions`` by file name (broken ones raise BuildError)."""
    found = {}
    for path in sorted(Path(solutions).glob("*.ipynb")):
        solution = nbformat.read(path, as_version=4)
        found[path.name] = Assignment(path.name, solution, build_exercise(solution, path.name),
                                      load_probes(Path(solutions), path.name))
    return found


def gradebook_columns(assignments: Mapping[str, Assignment]) -> list[str]:
    """The gradebook's question columns: every test cell's grade_id, in notebook order, once."""
    columns: list[str] = []
    for assignment in assignments.values():
        for cell in assignment.solution.cells:
            if fmt.is_grade(cell) and fmt.grade_id(cell) not in columns:
                columns.append(fmt.grade_id(cell))
    return columns


def visible_tests(assignments: Mapping[str, Assignment]) -> dict[str, dict[str, str]]:
    """Notebook -> grade_id -> the test's source as learners see it (hidden tests removed)."""
    found: dict[str, dict[str, str]] = {}
    for name, assignment in assignments.items():
        tests = found.setdefault(name, {})
        for cell in assignment.exercise.cells:
            if fmt.is_grade(cell):
                tests.setdefault(fmt.grade_id(cell), cell.source)
    return found
