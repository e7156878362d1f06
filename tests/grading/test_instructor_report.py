"""The instructor report (``python -m course_utils report OUT``).

Most tests read a small made-up class written in the documented output format, with the
awkward cases a real class brings: statuses and fields the report does not know, a results
file that is not JSON, a 10 000-character message, a message and a student_id carrying HTML.
One test renders the page in headless Chromium (Debian's ``/usr/bin/chromium`` through
Playwright) and checks that every figure decodes; its screenshot stays in
``test-output/report/``. One test reads the output of a real ``grade`` run.
"""

from __future__ import annotations

import csv
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_utils.__main__ import main as cli
from course_utils.grading import gradebook
from course_utils.grading import instructor_report as ir
from course_utils.grading.records import NotebookResult
from tests.integration.browser_support import chromium_missing_reason, launch_chromium

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "report"
NB01, NB02 = "01_layers_of_a_model.ipynb", "02_hidden_layers_and_sequential.ipynb"
HOSTILE_ID = "<img src=x onerror=alert(2)>"
SCRIPT = "<script>alert(1)</script>"
MISSING = chromium_missing_reason()


def _test(gid: str, status: str, message: str = "", **extra: object) -> dict:
    return {"grade_id": gid, "points": 1.0 if status == "pass" else 0.0, "max_points": 1.0,
            "status": status, "message": message, "seconds": 0.1, **extra}


def _write_class(out: Path) -> Path:
    """Twelve learners, two notebooks, and every awkward case in one output folder."""
    records = []
    for i in range(10):
        q2 = _test("q2_test", "fail", f"expected 46820 parameters, got {46000 + i}\nHint: biases")
        if i < 4:
            q2 = _test("q2_test", "pass")
        elif i == 9:
            q2 = _test("q2_test", "error", "NameError: name 'nn' is not defined")
        tests = [_test("q1_test", "pass"), q2]
        records.append({"student_id": f"learner{i:02d}", "notebook": NB01, "status": "graded",
                        "tests": tests, "notes": []})
        if i < 6:
            records.append({"student_id": f"learner{i:02d}", "notebook": NB02, "status": "graded",
                            "tests": [_test("q1_test", "pass" if i % 2 else "fail", "too small")],
                            "notes": []})
    records += [
        {"student_id": HOSTILE_ID, "notebook": NB01, "status": "graded", "notes": [],
         "tests": [_test("q1_test", "fail", SCRIPT), _test("q2_test", "fail", "x" * 10_000)]},
        {"student_id": "mallory", "notebook": NB01, "status": "graded",
         "tests": [_test("q1_test", "pass"), _test("q2_test", "sandbox_denied", "network",
                                                    sandbox={"rule": "net"})],
         "notes": ["Tampering: the test cell's checksum changed", {"kind": "extra", "n": 1}],
         "new_field": [1, 2, 3]},
        {"student_id": "learner10", "notebook": NB01, "status": "grader_error", "tests": [],
         "notes": ["the grader crashed: OSError"]},
        {"student_id": "learner11", "notebook": NB01, "status": "graded",
         "tests": [_test("q1_test", "missing", "answer cell 'q1_answer' is missing"),
                   _test("q2_test", "pass")], "notes": []},
        {"student_id": "learner11", "notebook": NB02, "status": "unreadable", "tests": [],
         "notes": ["02: the file is empty"]},
    ]
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_id", "notebook", "score", "max_score", "status", "q1_test",
                         "q2_test"])
        for r in records:
            points = {t["grade_id"]: t["points"] for t in r["tests"]}
            score = sum(points.values())
            writer.writerow([r["student_id"], r["notebook"], score, 2 if r["notebook"] == NB01
                             else 1, r["status"], points.get("q1_test", ""),
                             points.get("q2_test", "")])
            path = out / "results" / r["student_id"] / f"{Path(r['notebook']).stem}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({**r, "score": score}), encoding="utf-8")
    (out / "results" / "learner00" / "03_counting_parameters.json").write_text("{not json")
    return out


@pytest.fixture(scope="module")
def made_up(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = _write_class(tmp_path_factory.mktemp("class"))
    assert cli(["report", str(out)]) == 0
    return out


# ---------------------------------------------------------------- grouping and reading


def test_messages_that_differ_only_in_numbers_or_spacing_group_together() -> None:
    same = ["expected 46820, got 46800", "expected 46820,  got 12", "expected 1.5e-3, got -7"]
    assert {ir.normalise_message(m) for m in same} == {"expected #, got #"}
    assert ir.normalise_message("layer1 has torch.Size([3, 4])\n\tq2_test") == (
        "layer1 has torch.Size([#, #]) q2_test")
    assert ir.normalise_message("expected 5 layers") != ir.normalise_message("expected 5 rows")


def test_failures_are_grouped_counted_and_ordered(made_up: Path) -> None:
    rows, _ = ir.load_output(made_up)
    groups = ir.group_failures(rows, NB01, "q2_test")
    first = groups[0]
    assert (first.status, first.count, first.variants) == ("fail", 5, 5)
    assert first.pattern == "expected # parameters, got # Hint: biases"
    assert first.learners == [f"learner{i:02d}" for i in range(4, 9)]
    assert first.example == "expected 46820 parameters, got 46004\nHint: biases"  # ties: alphabetically first
    assert [g.count for g in groups] == sorted((g.count for g in groups), reverse=True)
    assert {(g.status, g.count) for g in groups[1:]} == {("error", 1), ("fail", 1),
                                                         ("sandbox_denied", 1)}
    assert len(ir.group_failures(rows, NB01, "q2_test", top=2)) == 2


def test_unknown_statuses_and_fields_are_kept_and_a_broken_file_is_reported(
        made_up: Path) -> None:
    rows, problems = ir.load_output(made_up)
    rates = ir.pass_rates(rows)
    assert rates[NB01]["q2_test"] == {"pass": 5, "fail": 6, "error": 1, "sandbox_denied": 1}
    assert rates[NB02]["q1_test"] == {"pass": 3, "fail": 3}
    assert problems == ["results/learner00/03_counting_parameters.json could not be read: "
                        "Expecting property name enclosed in double quotes: line 1 column 2 "
                        "(char 1)"]
    mallory = next(r for r in rows if r.student_id == "mallory")
    assert mallory.notes[1] == '{"kind": "extra", "n": 1}'


def test_a_gradebook_that_is_not_csv_is_reported_not_fatal(tmp_path: Path) -> None:
    huge = "x" * (csv.field_size_limit() + 1)  # the csv module refuses such a field
    (tmp_path / "grades.csv").write_text("student_id,notebook,status\nada,a.ipynb,graded\n"
                                         f"bob,b.ipynb,{huge}\n")
    rows, problems = ir.load_output(tmp_path)
    assert [r.student_id for r in rows] == ["ada"]
    assert problems and problems[0].startswith("grades.csv could not be read to the end")


def test_learners_who_need_a_look(made_up: Path) -> None:
    rows, _ = ir.load_output(made_up)
    flagged = {(row.student_id, row.notebook): reasons for row, reasons in ir.attention(rows)}
    assert flagged == {
        ("learner10", NB01): ["notebook grader_error"],
        ("learner11", NB01): ["1 question(s) missing"],
        ("learner11", NB02): ["notebook unreadable"],
        ("mallory", NB01): ["1 question(s) sandbox_denied",
                            "note: Tampering: the test cell's checksum changed"],
    }
    missing = ir.not_submitted(rows)
    assert missing[NB02] == sorted([HOSTILE_ID, "learner06", "learner07", "learner08",
                                    "learner09", "learner10", "mallory"])
    assert NB01 not in missing


# ---------------------------------------------------------------- the page


def test_student_text_is_shown_as_text_and_cut(made_up: Path) -> None:
    page = (made_up / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page and "<img src=x" not in page and "onerror=alert(2)>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "x" * ir.MESSAGE_CHARS in page and "x" * (ir.MESSAGE_CHARS + 1) not in page
    assert f"({10_000 - ir.MESSAGE_CHARS} more characters)" in page
    images = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,[A-Za-z0-9+/=]+">', page)
    assert len(images) == 4 == page.count("<img")  # two figures per notebook


def test_the_command_refuses_a_folder_that_is_not_a_grading_output(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli(["report", str(tmp_path)]) == 2
    assert "no grades.csv or results/" in capsys.readouterr().err
    assert not (tmp_path / "report.html").exists()


def test_the_report_does_not_load_torch() -> None:
    code = ("import sys, course_utils.grading.instructor_report\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m == 'course_utils.plots'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_page_is_written_with_the_gradebooks_mode(tmp_path: Path) -> None:
    (tmp_path / "grades.csv").write_text("student_id,notebook,score,max_score,status\n")
    old = os.umask(0o077)
    try:
        target = ir.write_report(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_an_output_with_nothing_graded_still_gives_a_page(tmp_path: Path) -> None:
    (tmp_path / "grades.csv").write_text("student_id,notebook,score,max_score,status\n"
                                         "ada,x.ipynb,0,0,unknown_notebook\n")
    target = ir.write_report(tmp_path, tmp_path / "sub" / "r.html")
    page = target.read_text()
    assert "nothing to plot" in page and "<img" not in page and "unknown_notebook" in page


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
def test_every_figure_renders_in_chromium(made_up: Path) -> None:
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    dialogs: list[str] = []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto((made_up / "report.html").as_uri(), wait_until="load")
            images = page.evaluate("""() => [...document.images].map(img => ({
                alt: img.alt, complete: img.complete, width: img.naturalWidth,
                height: img.naturalHeight}))""")
            texts = page.evaluate("() => [...document.querySelectorAll('pre, td')]"
                                  ".map(e => e.textContent)")
            scripts = page.evaluate("() => document.scripts.length")
            page.screenshot(path=str(SCREENSHOTS / "report.png"), full_page=True)
        finally:
            browser.close()
    assert len(images) == 4
    for image in images:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
    assert SCRIPT in texts and HOSTILE_ID in texts  # shown as text, not run
    assert scripts == 0 and dialogs == []
    assert (SCREENSHOTS / "report.png").stat().st_size > 10_000


@pytest.mark.slow
def test_the_report_reads_a_real_grading_output(tmp_path: Path) -> None:
    solution = nbformat.read(ROOT / "solutions" / NB01, as_version=4)
    for name, data in (("solved", nbformat.writes(solution)),
                       ("blank", (ROOT / "exercises" / NB01).read_text()),
                       ("broken", "")):
        (tmp_path / "subs" / name).mkdir(parents=True)
        (tmp_path / "subs" / name / NB01).write_text(data)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "course_utils", "grade", str(tmp_path / "subs"),
                           "--out", str(tmp_path / "out"), "--timeout", "60", "--jobs", "2"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert cli(["report", str(tmp_path / "out")]) == 0
    rows, problems = ir.load_output(tmp_path / "out")
    assert problems == []
    rates = ir.pass_rates(rows)[NB01]
    assert len(rates) >= 3 and all(c == {"pass": 1, "error": 1} for c in rates.values()), rates
    assert [(r.student_id, reasons) for r, reasons in ir.attention(rows)] == [
        ("broken", ["notebook unreadable"])]
    page = (tmp_path / "out" / "report.html").read_text()
    assert "not answered yet" in page and page.count("<img") == 2


def test_look_alike_learners_are_flagged_and_spelled_out(tmp_path: Path) -> None:
    five = ["ada", "ada ", "Ada", "ad\u0430", "a\u200bda"]  # issue 25's five folders
    rows = [NotebookResult(s, NB01, 1.0, 2.0, "graded") for s in [*five, "grace"]]
    gradebook.write_reports(rows, tmp_path, [], {}, [*five, "grace"])
    loaded, problems = ir.load_output(tmp_path)
    assert problems == []
    flagged = {row.student_id: reasons for row, reasons in ir.attention(loaded)}
    assert sorted(flagged) == sorted(five)
    assert "'ad\\u0430'" in flagged["ada"][0] and "'a\\u200bda'" in flagged["ada"][0]
    page = ir.report_html(tmp_path)
    assert "1 group(s) of learner names that look alike" in page
    assert "&#x27;ada &#x27;" in page and "&#x27;ad\\u0430&#x27;" in page  # visible spellings


def test_a_formula_like_id_is_one_learner_in_the_report(tmp_path: Path) -> None:
    gradebook.write_reports([NotebookResult("=1+1", NB01, 1.0, 2.0, "graded")], tmp_path, [], {})
    rows, problems = ir.load_output(tmp_path)
    assert [r.student_id for r in rows] == ["=1+1"] and problems == []
