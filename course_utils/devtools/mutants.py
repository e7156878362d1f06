"""Mutation testing of the exercises: plausible wrong answers that must lose points.

A mutant file ``solutions/mutants/NN_topic.json`` lists wrong answers for one exercise::

    {"notebook": "NN_topic.ipynb",
     "mutants": [{"id": "q1-no-biases", "answer": "q1_answer", "test": "q1_test",
                  "misconception": "a Linear layer holds only its weight matrix",
                  "source": "def f() -> int:\\n    return 42\\n"}]}

``answer`` is the grade_id of the answer cell whose source the mutant replaces, ``test`` the
grade_id of the test cell that must lose points. To keep grading cheap, one submission holds
one mutant per question (the other answers come from the solution), so an exercise needs as
many gradings as its most-mutated question has mutants, plus one for the solution itself.
Mutants are data for instructors and tests; they are never copied into ``exercises/``.

>>> from course_utils.devtools.mutants import Mutant, rounds
>>> m = [Mutant("a", "q1_answer", "q1_test", "x", "s"), Mutant("b", "q1_answer", "q1_test",
...      "y", "s"), Mutant("c", "q2_answer", "q2_test", "z", "s")]
>>> [[x.id for x in r] for r in rounds(m)]
[['a', 'c'], ['b']]
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

from course_utils._paths import ROOT
from course_utils.grading import notebook_format as fmt
from course_utils.grading.build import build_exercise

if TYPE_CHECKING:
    from course_utils.grading.grade import Assignment, NotebookResult

__all__ = ["MUTANTS_DIR", "Mutant", "MutantFile", "MutantOutcome", "MutationScore",
           "load_mutants", "mutant_files", "rounds", "trimmed", "submission", "numbers_in",
           "score_mutants", "format_scores"]

MUTANTS_DIR = ROOT / "solutions" / "mutants"
_KEYS = ("id", "answer", "test", "misconception", "source")


@dataclass(frozen=True)
class Mutant:
    """One wrong answer: which answer cell it replaces and which test must catch it."""

    id: str
    answer: str
    test: str
    misconception: str
    source: str
    # Why only the in-kernel test can catch it (it computes the right values the wrong way,
    # e.g. by building the layers it should count); "" when the trusted verdict must.
    structural: str = ""


@dataclass(frozen=True)
class MutantFile:
    """The mutants of one exercise notebook."""

    notebook: str
    mutants: tuple[Mutant, ...]


@dataclass
class MutantOutcome:
    """How the grader scored one mutant on its own test."""

    mutant: Mutant
    points: float
    max_points: float
    status: str
    message: str
    trusted: str = ""  # the verdict outside the kernel alone (``TestResult.trusted``)

    @property
    def caught(self) -> bool:
        return self.points < self.max_points


@dataclass
class MutationScore:
    """Mutants caught for one exercise, and how the solution itself scored (``None``: the
    solution was not graded here)."""

    notebook: str
    solution_score: float | None
    max_score: float
    outcomes: list[MutantOutcome] = field(default_factory=list)

    @property
    def caught(self) -> int:
        return sum(o.caught for o in self.outcomes)

    @property
    def total(self) -> int:
        return len(self.outcomes)


def load_mutants(path: Path) -> MutantFile:
    """Read and check one mutant file; ``ValueError`` naming the file and the entry if broken."""
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("mutants"), list):
        raise ValueError(f"{path.name}: expected {{'notebook': ..., 'mutants': [...]}}")
    mutants, seen = [], set()
    for i, entry in enumerate(data["mutants"]):
        missing = [k for k in _KEYS if not isinstance(entry.get(k), str) or not entry[k]]
        if missing:
            raise ValueError(f"{path.name}: mutant #{i} lacks {missing}")
        if entry["id"] in seen:
            raise ValueError(f"{path.name}: mutant id {entry['id']!r} appears twice")
        seen.add(entry["id"])
        structural = entry.get("structural", "")
        if not isinstance(structural, str):
            raise ValueError(f"{path.name}: mutant {entry['id']!r}: 'structural' is a reason")
        mutants.append(Mutant(*(entry[k] for k in _KEYS), structural=structural))
    return MutantFile(str(data.get("notebook", "")), tuple(mutants))


def mutant_files(folder: Path = MUTANTS_DIR) -> list[Path]:
    """The mutant files of ``folder``, sorted by name."""
    return sorted(Path(folder).glob("*.json"))


def rounds(mutants: tuple[Mutant, ...] | list[Mutant]) -> list[list[Mutant]]:
    """Group mutants into submissions: round k holds the k-th mutant of every answer cell."""
    by_answer: dict[str, list[Mutant]] = {}
    for mutant in mutants:
        by_answer.setdefault(mutant.answer, []).append(mutant)
    depth = max((len(v) for v in by_answer.values()), default=0)
    return [[v[k] for v in by_answer.values() if k < len(v)] for k in range(depth)]


def trimmed(assignment: Assignment, grade_ids: Iterable[str]) -> Assignment:
    """``assignment`` cut after the last of the cells ``grade_ids`` names; its exercise is
    built from the cut solution. A round of mutants is graded on this, so the questions after
    the round's last test (often a training run) are not run; their cells could not change
    the tests before them, which run first.

    >>> from course_utils.grading.grade import load_assignments
    >>> whole = load_assignments(ROOT / "solutions")["01_layers_of_a_model.ipynb"]
    >>> cut = trimmed(whole, ["q2_answer", "q2_test"])
    >>> [fmt.grade_id(c) for c in cut.solution.cells if fmt.grade_id(c)]
    ['setup', 'q1_answer', 'q1_test', 'q2_answer', 'q2_test']
    >>> len(cut.exercise.cells) == len(cut.solution.cells), cut.max_score < whole.max_score
    (True, True)
    """
    wanted = set(grade_ids)
    cells = assignment.solution.cells
    found = [i for i, c in enumerate(cells) if fmt.grade_id(c) in wanted]
    missing = sorted(wanted - {fmt.grade_id(cells[i]) for i in found})
    if missing:
        raise ValueError(f"{assignment.name} has no cell with grade_id {missing}")
    solution = copy.deepcopy(assignment.solution)
    solution.cells = solution.cells[:max(found) + 1]
    return dataclasses.replace(assignment, solution=solution,
                               exercise=build_exercise(solution, assignment.name))


def submission(solution: nbformat.NotebookNode, replace: dict[str, str]) -> nbformat.NotebookNode:
    """The solution notebook with the answer cells named in ``replace`` swapped for new sources."""
    nb = nbformat.from_dict(json.loads(nbformat.writes(solution)))
    known = {fmt.grade_id(c) for c in nb.cells if fmt.is_solution(c)}
    unknown = sorted(set(replace) - known)
    if unknown:
        raise ValueError(f"no answer cell with grade_id {unknown} (answer cells: {sorted(known)})")
    for cell in nb.cells:
        if fmt.is_solution(cell) and fmt.grade_id(cell) in replace:
            cell.source = replace[fmt.grade_id(cell)]
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


_NUMBER = re.compile(r"(?<![\d.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\d])")


def numbers_in(text: str) -> set[int]:
    """Whole numbers written in ``text``, with or without thousands commas (decimals skipped).

    >>> sorted(numbers_in("expected 1,507 (got 12.5), Linear(10, 32)"))
    [10, 32, 1507]
    """
    return {int(whole.replace(",", "")) for whole, fraction in _NUMBER.findall(text) if not fraction}


def _grade(assignment: Assignment, nb: nbformat.NotebookNode, timeout: float,
           memory_mb: int, references: object = None) -> NotebookResult:
    from course_utils.grading.grade import grade_notebook  # starts kernels: import late

    with tempfile.TemporaryDirectory(prefix="course-mutants-") as tmp:
        path = Path(tmp) / assignment.name
        nbformat.write(nb, path)
        return grade_notebook(path, assignment, "mutants", timeout=timeout, memory_mb=memory_mb,
                              references=references)


def score_mutants(path: Path, solutions: Path = ROOT / "solutions", *, timeout: float = 120,
                  memory_mb: int = 2048, grade_solution: bool = True) -> MutationScore:
    """Grade the solution (whole) and every mutant of the file ``path`` with the real grader.

    Each round of mutants is graded on the solution cut after the round's last answer or test
    cell (``trimmed``); the solution's own full-marks grading runs every cell. With
    ``grade_solution=False`` it is skipped (``solution_score`` is ``None``): the test suite
    grades every solution whole once, in ``tests/grading/test_grade.py``.
    """
    from course_utils.grading.grade import load_assignments

    spec = load_mutants(path)
    assignment = load_assignments(Path(solutions))[spec.notebook]
    known = {fmt.grade_id(c) for c in assignment.solution.cells if fmt.is_grade(c)}
    for mutant in spec.mutants:
        if mutant.test not in known:
            raise ValueError(f"{path.name}: mutant {mutant.id!r} names test {mutant.test!r}, "
                             f"which {spec.notebook} does not have")
    from course_utils.grading import sandbox
    from course_utils.grading.trusted import References

    references = References(sandbox.available(), memory_mb, 600)
    with references:
        solution = (_grade(assignment, assignment.solution, timeout, memory_mb, references)
                    if grade_solution else None)
        score = MutationScore(spec.notebook, solution.score if solution else None,
                              assignment.max_score)
        for batch in rounds(spec.mutants):
            cut = trimmed(assignment, [gid for m in batch for gid in (m.answer, m.test)])
            result = _grade(cut, submission(cut.solution, {m.answer: m.source for m in batch}),
                            timeout, memory_mb, references)
            tests = {t.grade_id: t for t in result.tests}
            for mutant in batch:
                test = tests[mutant.test]
                score.outcomes.append(MutantOutcome(mutant, test.points, test.max_points,
                                                    test.status, test.message, test.trusted))
    return score


def format_scores(scores: list[MutationScore]) -> str:
    """A plain-text table: mutants caught per exercise, and the solution's own score.

    >>> s = MutationScore("01_x.ipynb", 9.0, 9.0)
    >>> print(format_scores([s]))
    exercise    mutants caught  solution
    01_x.ipynb  0/0             9/9
    """
    rows = [("exercise", "mutants caught", "solution")]
    rows += [(s.notebook, f"{s.caught}/{s.total}", "not graded" if s.solution_score is None
              else f"{s.solution_score:g}/{s.max_score:g}") for s in scores]
    if len(scores) > 1:
        rows.append(("total", f"{sum(s.caught for s in scores)}/{sum(s.total for s in scores)}",
                     ""))
    width = [max(len(r[i]) for r in rows) + 2 for i in range(2)]
    return "\n".join(f"{a:<{width[0]}}{b:<{width[1]}}{c}".rstrip() for a, b, c in rows)
