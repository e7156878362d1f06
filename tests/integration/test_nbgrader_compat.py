"""Compatibility with the real nbgrader (0.9.6), installed in its own venv ``.venv-nbgrader``.

The venv is built by ``make test`` before pytest starts, or on first use here (see
``nbgrader_env.py``; a file lock keeps parallel pytest workers from building it twice).
Learners never need it: it is only for this module. Set
``COURSE_SKIP_NBGRADER=1`` to skip these tests explicitly (e.g. offline); they then show
as skipped, never as passed.

nbgrader's own ``generate_assignment`` runs on our solution notebooks; the student versions
it writes must match our ``exercises/`` cell by cell: sources, ids, nbgrader metadata
(checksums included) and lock flags. The only difference allowed is our
``raises-exception`` tag. Then nbgrader's ``autograde`` and our ``grade`` score the same six
submissions (full, blank, partial, a helper in its own cell, tampered, an always-equal
object) and must agree question by question, except where we are deliberately stricter.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from filelock import FileLock

from course_utils.grading import notebook_format as fmt
from course_utils.grading.build import RAISES_TAG, build_exercise, exercise_bytes
from tests.integration import nbgrader_env

ROOT = Path(__file__).resolve().parents[2]
VENV = nbgrader_env.VENV
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("COURSE_SKIP_NBGRADER") == "1",
                       reason="COURSE_SKIP_NBGRADER=1: nbgrader compatibility not checked"),
]


@pytest.fixture(scope="module")
def nbgrader_python() -> Path:
    """The nbgrader venv's python, built once (under a lock, as workers may race) and reused."""
    lock = Path(tempfile.gettempdir()) / f"venv-nbgrader-{hashlib.sha1(bytes(VENV)).hexdigest()}"
    with FileLock(f"{lock}.lock", timeout=900):
        try:
            return nbgrader_env.ensure()
        except RuntimeError as error:
            pytest.fail(str(error))


def _run(python: Path, script: str, *args: str, cwd: Path | None = None) -> str:
    done = subprocess.run([str(python), "-c", script, *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)
    assert done.returncode == 0, f"nbgrader step failed:\n{done.stdout[-2000:]}\n" \
                                 f"{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def released(nbgrader_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """nbgrader generate_assignment's student versions of every solution notebook."""
    course = tmp_path_factory.mktemp("nbgrader_course")
    (course / "source" / "ps").mkdir(parents=True)
    for path in SOLUTIONS:
        shutil.copy(path, course / "source" / "ps" / path.name)
    nbgrader = nbgrader_python.parent / "nbgrader"
    done = subprocess.run([str(nbgrader), "generate_assignment", "ps", "--no-db", "--force",
                           f"--CourseDirectory.root={course}"], capture_output=True,
                          text=True, timeout=600, cwd=course)
    assert done.returncode == 0, f"nbgrader generate_assignment failed:\n{done.stderr[-4000:]}"
    return course / "release" / "ps"


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_our_exercise_matches_nbgraders_student_version(path: Path, released: Path) -> None:
    theirs = json.loads((released / path.name).read_text(encoding="utf-8"))["cells"]
    ours = build_exercise(nbformat.read(path, as_version=4), path.name).cells
    assert len(ours) == len(theirs), f"{path.name}: {len(ours)} cells, nbgrader {len(theirs)}"
    for index, (mine, their) in enumerate(zip(ours, theirs, strict=True)):
        where = f"{path.name} cell {index} ({fmt.grade_id(mine)!r})"
        assert mine.source == "".join(their["source"]), f"{where}: sources differ"
        assert mine.get("id") == their.get("id"), f"{where}: ids differ"
        mine_meta = json.loads(json.dumps(mine.metadata))
        tags = [t for t in mine_meta.pop("tags", []) if t != RAISES_TAG]
        if tags:
            mine_meta["tags"] = tags
        assert mine_meta == their["metadata"], f"{where}: metadata differs"


_VALIDATE = """
import sys, nbformat
from nbgrader.nbgraderformat import MetadataValidator
from nbgrader import utils
failed = 0
for path in sys.argv[1:]:
    nb = nbformat.read(path, as_version=4)
    try:
        MetadataValidator().validate_nb(nb)
        print("valid", path)
    except Exception as error:
        failed += 1
        print("invalid", path, type(error).__name__, str(error).splitlines()[0])
        continue
    for cell in nb.cells:
        if utils.is_grade(cell) or utils.is_solution(cell) or utils.is_locked(cell):
            print("checksum", path, cell.metadata.nbgrader["grade_id"], utils.compute_checksum(cell))
"""


def test_nbgrader_validates_our_notebooks_and_agrees_on_checksums(
        nbgrader_python: Path, tmp_path: Path) -> None:
    exercises = [tmp_path / f"exercise_{p.name}" for p in SOLUTIONS]  # as `build` writes them
    for solution, exercise in zip(SOLUTIONS, exercises, strict=True):
        exercise.write_bytes(exercise_bytes(solution))
    broken = nbformat.read(SOLUTIONS[0], as_version=4)
    test_cell = next(c for c in broken.cells if fmt.is_grade(c))
    del test_cell.metadata.nbgrader["points"]
    nbformat.write(broken, tmp_path / "broken.ipynb")
    paths = [*SOLUTIONS, *exercises, tmp_path / "broken.ipynb"]
    lines = _run(nbgrader_python, _VALIDATE, *map(str, paths)).splitlines()
    verdicts = {line.split()[1]: line.split()[0] for line in lines
                if line.split()[0] in ("valid", "invalid")}
    assert verdicts.pop(str(tmp_path / "broken.ipynb")) == "invalid"
    assert fmt.metadata_problems(broken.cells), "we should reject what nbgrader rejects"
    assert set(verdicts.values()) == {"valid"}, verdicts
    theirs = {(p, g): s for kind, p, g, s in (line.split() for line in lines
                                                if line.startswith("checksum"))}
    ours = {}
    for path in paths[:-1]:
        for cell in nbformat.read(path, as_version=4).cells:
            if fmt.is_grade(cell) or fmt.is_solution(cell) or fmt.is_locked(cell):
                ours[(str(path), fmt.grade_id(cell))] = fmt.compute_checksum(cell)
    assert ours == {k: v for k, v in theirs.items() if k[0] != str(tmp_path / "broken.ipynb")}


# ---------------------------------------------------------------- autograde vs grade

_ALWAYS_EQUAL = ("class Anything(int):\n    def __eq__(self, other):\n        return True\n"
                 "    __hash__ = int.__hash__\n\n"
                 "def mlp_param_count(*sizes) -> int:\n    return Anything(0)")
_TAMPER = "get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])"
# Where we are deliberately stricter than nbgrader: a submission caught changing how cells
# run (an input transformer) or handing in an always-equal object scores 0 from the
# question where it was caught on; nbgrader is fooled and gives full marks.
_STRICTER = {"tampered", "always_equal"}

_SCORES = """
import json, sys
from nbgrader.api import Gradebook
root, notebook, students = sys.argv[1], sys.argv[2], sys.argv[3:]
found = {}
with Gradebook(f"sqlite:///{root}/gradebook.db") as gb:
    for student in students:
        sub = gb.find_submission_notebook(notebook, "ps", student)
        found[student] = {g.name: g.score for g in sub.grades}
print(json.dumps(found))
"""


def _submissions() -> dict[str, nbformat.NotebookNode]:
    name = "01_layers_of_a_model.ipynb"
    solution = nbformat.read(ROOT / "solutions" / name, as_version=4)
    exercise = nbformat.read(ROOT / "exercises" / name, as_version=4)

    def answered(*gids: str, **sources: str) -> nbformat.NotebookNode:
        nb = copy.deepcopy(exercise)
        for cell in nb.cells:
            gid = fmt.grade_id(cell)
            if gid in gids:
                cell.source = next(c.source for c in solution.cells if fmt.grade_id(c) == gid)
            if gid in sources:
                cell.source = sources[gid]
        return nb

    every = tuple(fmt.grade_id(c) for c in solution.cells if fmt.is_solution(c))
    helper = answered(*every, q1_answer=(
        "def mlp_param_count(n_in=10, hidden=32, n_out=3) -> int:\n"
        "    return _helper([n_in, hidden, hidden, n_out])"))
    at = next(i for i, c in enumerate(helper.cells) if fmt.grade_id(c) == "q1_answer")
    helper.cells.insert(at + 1, nbformat.v4.new_code_cell(
        "def _helper(widths):\n"
        "    return sum((a + 1) * b for a, b in zip(widths, widths[1:]))"))
    tampered = copy.deepcopy(exercise)
    next(c for c in tampered.cells if fmt.grade_id(c) == "q1_answer").source += "\n" + _TAMPER
    return {"full": answered(*every), "blank": copy.deepcopy(exercise),
            "partial": answered("q1_answer", "q3_answer"), "helper_cell": helper,
            "tampered": tampered, "always_equal": answered(*every, q1_answer=_ALWAYS_EQUAL)}


def test_autograde_and_grade_agree_question_by_question(
        nbgrader_python: Path, tmp_path: Path) -> None:
    from course_utils.grading import grade  # imported here: the module is slow to import

    name = "01_layers_of_a_model.ipynb"
    course = tmp_path / "course"
    (course / "source" / "ps").mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / name, course / "source" / "ps" / name)
    # nbgrader runs the notebooks in the course's own interpreter, under the kernel name
    # they carry, found through a kernelspec in a private JUPYTER_PATH.
    kernels = tmp_path / "jupyter" / "kernels" / "sizing-nn"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "sizing-nn", "language": "python"}))
    env = dict(os.environ, JUPYTER_PATH=str(tmp_path / "jupyter"), OMP_NUM_THREADS="1",
               PATH=f"{nbgrader_python.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    nbgrader = str(nbgrader_python.parent / "nbgrader")
    submissions = _submissions()
    ours_root = tmp_path / "ours"
    for student, nb in submissions.items():
        for folder in (course / "submitted" / student / "ps", ours_root / student):
            folder.mkdir(parents=True)
            nbformat.write(nb, folder / name)
    for args in (["generate_assignment", "ps", "--force"],
                 ["autograde", "ps", "--create", "--force",
                  "--ExecutePreprocessor.timeout=120"]):
        done = subprocess.run([nbgrader, *args, f"--CourseDirectory.root={course}"], env=env,
                              capture_output=True, text=True, timeout=900, cwd=course)
        assert done.returncode == 0, f"nbgrader {args[0]} failed:\n{done.stderr[-4000:]}"
    theirs = json.loads(_run(nbgrader_python, _SCORES, str(course), "01_layers_of_a_model",
                             *submissions))
    results = grade.grade_submissions(ours_root, tmp_path / "out", jobs=2, timeout=60)
    ours = {r.student_id: {t.grade_id: t.points for t in r.tests} for r in results}
    for student in submissions:
        for gid, points in theirs[student].items():
            if student in _STRICTER:
                continue
            assert ours[student][gid] == points, (
                f"{student} {gid}: grade gives {ours[student][gid]}, nbgrader {points}")
    assert sum(theirs["blank"].values()) == 0 < sum(theirs["partial"].values()) < sum(
        theirs["full"].values()) == sum(theirs["helper_cell"].values())
    for student in _STRICTER:  # nbgrader is fooled; we are not
        assert sum(theirs[student].values()) > 0, f"nbgrader no longer fooled by {student}"
        assert sum(ours[student].values()) == 0, f"{student}: {ours[student]}"
