"""``check`` (a learner's own command) gives the verdicts ``grade`` (the instructor's) gives,
for a blank, a partly answered and a solved notebook: in this process, and run by a user
without root (bubblewrap then maps them to uid 65534 in a user namespace), which needs a
Python every user can read (as on the workshop hub) and root to switch users."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from course_utils.grading import check, grade, sandbox
from course_utils.grading import notebook_format as fmt
from course_utils.grading.assignment import load_assignments

ROOT = Path(__file__).resolve().parents[2]
NB01 = "01_layers_of_a_model.ipynb"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sandbox.available(),
                       reason=f"no sandbox here: {sandbox.why_unavailable()}"),
]


def _notebooks(folder: Path) -> dict[str, Path]:
    solution = nbformat.read(ROOT / "solutions" / NB01, as_version=4)
    partly = copy.deepcopy(nbformat.read(ROOT / "exercises" / NB01, as_version=4))
    for cell in partly.cells:
        if fmt.grade_id(cell) == "q1_answer":
            cell.source = next(c.source for c in solution.cells if fmt.grade_id(c) == "q1_answer")
    found = {}
    for name, nb in (("blank", nbformat.read(ROOT / "exercises" / NB01, as_version=4)),
                     ("partly", partly), ("solved", solution)):
        path = folder / name / NB01
        path.parent.mkdir()
        nbformat.write(nb, path)
        found[name] = path
    return found


def _verdicts(result) -> list[tuple]:
    return [(t.grade_id, t.points, t.status, t.trusted) for t in result.tests]


def test_check_gives_the_verdicts_grade_gives(tmp_path: Path) -> None:
    assignment = load_assignments(ROOT / "solutions")[NB01]
    expected = {"blank": 0.0, "partly": 2.0, "solved": assignment.max_score}
    for name, path in _notebooks(tmp_path).items():
        checked = check.check_notebook(path)
        graded = grade.grade_notebook(path, assignment, "you", sandboxed=True)
        assert checked.status == graded.status == "graded", (checked.notes, graded.notes)
        assert "graded without the sandbox" not in checked.notes
        assert _verdicts(checked) == _verdicts(graded), name
        assert checked.score == graded.score == expected[name], (name, _verdicts(checked))


def _unprivileged_problem() -> str:
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return "switching to an unprivileged user needs root and setpriv"
    sys.path.insert(0, str(ROOT / "deploy"))
    try:
        from workshop_hub import access_problems
    finally:
        sys.path.remove(str(ROOT / "deploy"))
    problems = access_problems([Path(sys.executable), Path(sys.executable).resolve(),
                                ROOT / "course_utils" / "__init__.py", ROOT / "solutions"])
    return "; ".join(problems[:2])


@pytest.mark.skipif(bool(_unprivileged_problem()), reason=_unprivileged_problem() or "-")
def test_check_run_by_a_learner_without_root_gives_the_same_table() -> None:
    tmp_path = Path(tempfile.mkdtemp(prefix="check-as-learner-"))  # pytest's tmp is 0700
    os.chmod(tmp_path, 0o755)
    for name, path in _notebooks(tmp_path).items():
        os.chmod(path.parent, 0o755)
        os.chmod(path, 0o644)
        command = [shutil.which("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups",
                   sys.executable, "-m", "course_utils", "check", str(path)]
        learner = subprocess.run(command, capture_output=True, text=True, timeout=600,
                                 cwd="/", env={**os.environ, "HOME": str(tmp_path)})
        rooted = subprocess.run(command[4:], capture_output=True, text=True, timeout=600)
        assert learner.stdout == rooted.stdout and learner.returncode == rooted.returncode, (
            name, learner.stdout, learner.stderr[-600:])
    shutil.rmtree(tmp_path)
