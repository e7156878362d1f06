"""The output layout: the gradebook's format, the atomic write, and the round trip."""

from __future__ import annotations

import ast
import csv
import json
import os
import stat
from pathlib import Path

import pytest

import course_utils.grading
from course_utils.grading import gradebook, records
from course_utils.grading.gradebook import safe_cell, write_atomically, write_gradebook
from course_utils.grading.records import NotebookResult

NB01 = "01_layers_of_a_model.ipynb"


def test_gradebook_neutralises_formulas(tmp_path: Path) -> None:
    assert [safe_cell(v) for v in ("=1+1", "+1", "-1", "@SUM(A1)", "ada", "")] == [
        "'=1+1", "'+1", "'-1", "'@SUM(A1)", "ada", ""]
    rows = [NotebookResult("=HYPERLINK(\"x\")", "01.ipynb", 1.0, 2.0, "graded")]
    write_gradebook(rows, tmp_path / "grades.csv", [])
    text = (tmp_path / "grades.csv").read_text()
    assert text.splitlines()[1].startswith("\"'=HYPERLINK")
    assert [p.name for p in tmp_path.iterdir()] == ["grades.csv"], "no temporary file left"


@pytest.mark.parametrize("umask", [0o077, 0o002])
def test_an_atomic_write_has_the_gradebooks_mode_whatever_the_umask(tmp_path: Path,
                                                                    umask: int) -> None:
    target = tmp_path / "page.html"
    target.write_text("old")
    old = os.umask(umask)
    try:
        write_atomically(target, "new \udcff\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == gradebook.FILE_MODE == 0o644
    assert target.read_bytes() == b"new \\udcff\n"  # what cannot be encoded is escaped
    assert [p.name for p in tmp_path.iterdir()] == ["page.html"]


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    (tmp_path / "grades.csv").write_text("old")
    with pytest.raises(TypeError):
        write_atomically(tmp_path / "grades.csv", None)  # type: ignore[arg-type]
    assert [p.name for p in tmp_path.iterdir()] == ["grades.csv"]
    assert (tmp_path / "grades.csv").read_text() == "old"


def _results() -> list[NotebookResult]:
    tests = [records.TestResult("q1_test", 2.0, 2.0, "pass", "", 0.1),
             records.TestResult("q2_test", 0.0, 1.5, "fail", "expected 5, got 4", 0.2)]
    return [NotebookResult("grace", NB01, 2.0, 3.5, "graded", tests, notes=["a note"],
                           answers={"q1_answer": "x = 1"}),
            NotebookResult("ada", "", 0.0, 0.0, "missing", notes=["no folder"])]


def test_the_layout_round_trip(tmp_path: Path) -> None:
    results = _results()
    visible = {NB01: {"q1_test": "assert x", "q2_test": "assert y"}}
    gradebook.write_reports(results, tmp_path, ["q1_test", "q2_test", "q9_test"], visible)
    assert gradebook.is_output(tmp_path) and not gradebook.is_output(tmp_path / "nothing")
    text = gradebook.read_gradebook_text(tmp_path)
    assert text == ("student_id,notebook,score,max_score,status,q1_test,q2_test,q9_test\r\n"
                    "ada,,0,0,missing,,,\r\n"
                    f"grace,{NB01},2,3.5,graded,2,0,\r\n")
    table = gradebook.parse_csv(text)
    assert gradebook.csv_text(table[0], table[1:]) == text
    records = list(gradebook.read_gradebook_records(tmp_path))
    assert [(r["student_id"], r["status"], r["q1_test"]) for r in records] == [
        ("ada", "missing", ""), ("grace", "graded", "2")]
    files = gradebook.result_files(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in files] == [
        "results/grace/01_layers_of_a_model.json"]  # a missing row has no pages
    assert json.loads(files[0].read_text()) == results[0].to_json()
    page = (tmp_path / gradebook.FEEDBACK / "grace" / "01_layers_of_a_model.html").read_text()
    assert "The tests you could see" in page and "assert y" in page


def test_one_unwritable_row_does_not_cost_the_gradebook(tmp_path: Path) -> None:
    rows = _results()
    (tmp_path / gradebook.RESULTS).mkdir()
    (tmp_path / gradebook.RESULTS / "grace").write_text("a file where a folder should go")
    gradebook.write_reports(rows, tmp_path, ["q1_test"], {})
    with open(gradebook.gradebook_path(tmp_path), newline="") as handle:
        got = {r["student_id"]: (r["status"], r["score"]) for r in csv.DictReader(handle)}
    assert got == {"ada": ("missing", "0"), "grace": ("grader_error", "0")}
    assert "could not be written" in rows[0].notes[-1]


def _strings(path: Path) -> list[tuple[int, str]]:
    """String constants of a module that are not docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    return [(n.lineno, n.value) for n in ast.walk(tree) if isinstance(n, ast.Constant)
            and isinstance(n.value, str) and id(n) not in docstrings]


def test_only_the_gradebook_names_the_gradebook() -> None:
    package = Path(course_utils.grading.__file__).parent
    found = {p.name: hits for p in sorted(package.glob("*.py")) if p.name != "gradebook.py"
             if (hits := [(n, s) for n, s in _strings(p) if "grades.csv" in s])}
    assert found == {}
