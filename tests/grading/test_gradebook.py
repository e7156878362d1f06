"""The output layout: the gradebook's format, the atomic write, and the round trip."""

from __future__ import annotations

import ast
import csv
import json
import os
import stat
import unicodedata
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


def _pages(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


def test_two_ids_are_never_one_cell_of_the_gradebook(tmp_path: Path) -> None:
    rows = [NotebookResult(s, "", 0.0, 0.0, "missing") for s in ("=1+1", "'=1+1", "ada")]
    write_gradebook(rows, tmp_path / "grades.csv", [])
    cells = [r[0] for r in gradebook.parse_csv((tmp_path / "grades.csv").read_text())[1:]]
    assert len(set(cells)) == 3, cells
    assert [gradebook.cell_text(c) for c in cells] == ["=1+1", "'=1+1", "ada"]


def test_names_that_differ_only_by_case_or_unicode_form_get_files_of_their_own(tmp_path: Path) -> None:
    # on a case-insensitive (macOS, Windows, SMB) output, results/Ada and results/ada are one
    # folder: one learner's results would overwrite the other's
    nfd = "Zoe\u0308"
    learners = ["Ada", "ada", "Zoë", nfd, "grace"]
    rows = [NotebookResult(s, NB01, 1.0, 2.0, "graded") for s in learners]
    rows.append(NotebookResult("grace", "01_LAYERS_of_a_model.ipynb", 0.0, 0.0, "unknown_notebook"))
    gradebook.write_reports(rows, tmp_path, [], {}, learners)
    pages = _pages(tmp_path)
    assert len(pages) == 2 * len(rows) + 1, pages
    folded = {os.path.normcase(p).lower() for p in pages}
    assert len(folded) == len(pages), "two pages are one file on a case-insensitive system"
    assert len({unicodedata.normalize("NFC", p).lower() for p in pages}) == len(pages)
    assert "results/grace/01_layers_of_a_model.json" in pages  # the exercise keeps its name
    records = [json.loads(p.read_text()) for p in gradebook.result_files(tmp_path)]
    assert sorted((r["student_id"], r["notebook"]) for r in records) == sorted(
        (r.student_id, r.notebook) for r in rows)  # the JSON holds the id itself


def test_an_ordinary_class_keeps_its_layout(tmp_path: Path) -> None:
    rows = [NotebookResult(s, NB01, 1.0, 2.0, "graded") for s in ("Ada", "grace", "Zoë")]
    gradebook.write_reports(rows, tmp_path, [], {}, ["Ada", "grace", "Zoë", "absent"])
    assert [p for p in _pages(tmp_path) if p.startswith("results/")] == [
        "results/Ada/01_layers_of_a_model.json", "results/Zoë/01_layers_of_a_model.json",
        "results/grace/01_layers_of_a_model.json"]
    assert all(r.notes == [] for r in rows)


def test_look_alike_learners_are_flagged_on_every_row(tmp_path: Path) -> None:
    five = ["ada", "ada ", "Ada", "ad\u0430", "a\u200bda"]  # the red team's five folders
    rows = [NotebookResult(s, NB01, 1.0, 2.0, "graded") for s in [*five, "grace"]]
    gradebook.write_reports(rows, tmp_path, [], {}, [*five, "grace"])
    notes = {json.loads(p.read_text())["student_id"]: json.loads(p.read_text())["notes"]
             for p in gradebook.result_files(tmp_path)}
    assert len(notes) == 6, "five look-alikes stay five learners"
    assert all(any("looks like yours" in n for n in notes[s]) for s in five), notes
    assert notes["grace"] == []
    assert not any("ada" in n for s in five for n in notes[s]), "a note names nobody else"


def test_a_page_that_cannot_be_written_leaves_no_page_that_contradicts_the_gradebook(
        tmp_path: Path) -> None:
    rows = _results()
    (tmp_path / gradebook.FEEDBACK).mkdir()
    (tmp_path / gradebook.FEEDBACK / "grace").write_text("a file where a folder should go")
    gradebook.write_reports(rows, tmp_path, ["q1_test"], {})
    assert rows[0].status == "grader_error"
    assert gradebook.result_files(tmp_path) == [], "a results JSON still says 'graded'"


def test_a_copy_never_follows_a_link_and_writes_its_own_mode(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "results" / "ada").mkdir(parents=True)
    (out / "results" / "ada" / "01.json").write_text("{}")
    assert gradebook.output_files(out) == [("results", "ada", "01.json")]
    assert gradebook.read_output_file(out, ("results", "ada", "01.json")) == b"{}"
    secret = tmp_path / "secret"
    secret.write_text("root only")
    secret.chmod(0o600)
    (out / "results" / "bob").symlink_to(out / "results" / "ada")
    with pytest.raises(ValueError, match="bob is a symbolic link"):
        gradebook.output_files(out)
    with pytest.raises(ValueError, match="without following a link"):
        gradebook.read_output_file(out, ("results", "bob", "01.json"))
    target = tmp_path / "copy.json"
    old = os.umask(0o077)
    try:
        gradebook.write_new_file(target, b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    with pytest.raises(FileExistsError):
        gradebook.write_new_file(target, b"again")
