"""Mutation testing of the exercises: every committed wrong answer loses points on its question,
and no failure message gives away the number asked for. (That every solution keeps full marks
is checked once, in ``tests/grading/test_grade.py``, not again for each mutant file.)"""

from __future__ import annotations

import inspect
import operator
from pathlib import Path

import nbformat
import pytest

from course_utils.devtools.mutants import (
    MUTANTS_DIR,
    load_mutants,
    mutant_files,
    numbers_in,
    score_mutants,
    trimmed,
)
from course_utils.grading import notebook_format as fmt

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
FILES = mutant_files()


def test_every_exercise_has_three_mutants_per_question() -> None:
    covered = {load_mutants(p).notebook: p for p in FILES}
    missing = [s.name for s in SOLUTIONS if s.name not in covered]
    assert not missing, f"no mutant file in {MUTANTS_DIR} for {missing}"
    for path in FILES:
        spec = load_mutants(path)
        solution = nbformat.read(ROOT / "solutions" / spec.notebook, as_version=4)
        answers = [fmt.grade_id(c) for c in solution.cells if fmt.is_solution(c)]
        tests = {fmt.grade_id(c) for c in solution.cells if fmt.is_grade(c)}
        for gid in answers:
            n = sum(m.answer == gid for m in spec.mutants)
            assert n >= 3, f"{path.name}: {gid} has {n} mutants, at least 3 are needed"
        for m in spec.mutants:
            assert m.answer in answers and m.test in tests, f"{path.name}: {m.id} names unknown cells"
            assert "\n" not in m.misconception.strip(), f"{path.name}: {m.id}: one line, please"


def test_a_round_is_graded_on_the_solution_cut_after_its_last_cell() -> None:
    from course_utils.grading.grade import load_assignments

    whole = load_assignments(ROOT / "solutions")["08_choosing_depth_and_width.ipynb"]
    cut = trimmed(whole, ["q2_answer", "q2_test", "q1_test"])
    ids = [fmt.grade_id(c) for c in cut.solution.cells if fmt.grade_id(c)]
    assert ids == ["setup", "q1_answer", "q1_test", "q2_answer", "q2_test"], ids
    n = len(cut.solution.cells)
    assert [c.source for c in cut.exercise.cells] == [c.source for c in whole.exercise.cells[:n]]
    assert cut.solution.cells == whole.solution.cells[:n] and n < len(whole.solution.cells)
    with pytest.raises(ValueError, match="q9_test"):
        trimmed(whole, ["q9_test"])


def asked_numbers(solution: nbformat.NotebookNode) -> dict[str, set[int]]:
    """For each answer cell whose function needs no argument: the numbers it returns.

    The setup cell and the solution's answer run here, in the test process; an answer that
    is a count (or a tuple of counts) is the number the question asks for.
    """
    namespace: dict = {}
    asked: dict[str, set[int]] = {}
    for cell in solution.cells:
        if cell.cell_type != "code" or fmt.is_grade(cell):
            continue
        before = set(namespace)
        exec(compile(cell.source, fmt.grade_id(cell) or "setup", "exec"), namespace)
        if not fmt.is_solution(cell):
            continue
        new = [namespace[k] for k in set(namespace) - before if inspect.isfunction(namespace[k])]
        for function in new:
            required = [p for p in inspect.signature(function).parameters.values()
                        if p.default is inspect.Parameter.empty]
            if required:
                continue
            value = function()
            values = value if isinstance(value, (tuple, list)) else [value]
            found = set()
            for v in values:
                try:
                    found.add(abs(operator.index(v)))
                except TypeError:
                    pass
            asked[fmt.grade_id(cell)] = {n for n in found if n >= 10}
    return asked


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_mutants_lose_points_and_no_message_gives_the_answer_away(path: Path) -> None:
    # The solution's own full marks are checked once, for every solution, by
    # tests/grading/test_grade.py::test_every_solution_scores_full_marks.
    score = score_mutants(path, grade_solution=False)
    assert score.solution_score is None and score.max_score > 0
    survivors = [f"{o.mutant.id} ({o.mutant.misconception}): {o.status} on {o.mutant.test}"
                 for o in score.outcomes if not o.caught]
    assert not survivors, f"{score.notebook}: mutants kept full marks:\n" + "\n".join(survivors)
    # The verdict outside the kernel alone catches every mutant that computes wrong values;
    # only a mutant that computes the right values the wrong way may rest on the kernel.
    untrusted = [f"{o.mutant.id} ({o.mutant.misconception}): trusted verdict {o.trusted!r}"
                 for o in score.outcomes if not o.mutant.structural and o.trusted == "pass"]
    assert not untrusted, (f"{score.notebook}: only the in-kernel test catches:\n"
                           + "\n".join(untrusted))
    assert all(o.trusted in ("pass", "fail", "error") for o in score.outcomes
               if o.status != "tampered"), [(o.mutant.id, o.trusted) for o in score.outcomes]
    asked = asked_numbers(nbformat.read(ROOT / "solutions" / score.notebook, as_version=4))
    leaks = [f"{o.mutant.id}: {o.message!r} contains {sorted(asked[o.mutant.answer] & numbers_in(o.message))}"
             for o in score.outcomes
             if asked.get(o.mutant.answer, set()) & numbers_in(o.message)]
    assert not leaks, f"{score.notebook}: feedback gives the answer away:\n" + "\n".join(leaks)
