"""Write grading results: the gradebook (CSV), one JSON per notebook, HTML feedback, a table.

Feedback shows the learner's own answers, the visible tests and, for each question, the
error's type and message; never a traceback of a test cell (IPython tracebacks quote source
lines, and hidden tests must stay hidden). Every piece of text is HTML-escaped. In the CSV,
a cell that a spreadsheet would read as a formula (it starts with ``= + - @``, a tab or a
carriage return) gets a leading apostrophe. ``grades.csv`` is written last, atomically
(a temporary file renamed over it), so it is either the old gradebook or the complete new one.
"""

from __future__ import annotations

import csv
import html
import json
import os
import tempfile
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from course_utils.grading.grade import Assignment
    from course_utils.grading.records import NotebookResult

__all__ = ["FIXED_COLUMNS", "safe_cell", "write_reports", "write_gradebook", "feedback_html",
           "format_table"]

_ANSWER_LIMIT = 20_000

FIXED_COLUMNS = ("student_id", "notebook", "score", "max_score", "status")


def _num(value: float) -> str:
    """2.0 -> '2', 1.5 -> '1.5'."""
    return f"{value:g}"


def safe_cell(text: str) -> str:
    """Neutralise a CSV cell that a spreadsheet would run as a formula.

    >>> print(safe_cell('=HYPERLINK("http://x")'), safe_cell("ada"))
    '=HYPERLINK("http://x") ada
    """
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_gradebook(results: list[NotebookResult], path: Path, grade_ids: list[str]) -> None:
    """One row per learner x notebook, then the points of each grade_id (empty when n/a).

    Written to a temporary file in the same folder, then renamed over ``path``.
    """
    handle = tempfile.NamedTemporaryFile("w", newline="", encoding="utf-8", delete=False,
                                         errors="backslashreplace", dir=path.parent,
                                         prefix=".grades-", suffix=".csv")
    try:
        with handle:
            writer = csv.writer(handle)
            writer.writerow([*FIXED_COLUMNS, *grade_ids])
            for r in results:
                earned = {t.grade_id: _num(t.points) for t in r.tests}
                writer.writerow([safe_cell(str(v)) for v in (
                    r.student_id, r.notebook, _num(r.score), _num(r.max_score), r.status,
                    *(earned.get(g, "") for g in grade_ids))])
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, 0o644)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def write_reports(results: list[NotebookResult], assignments: dict[str, Assignment],
                  out: Path) -> None:
    """``grades.csv``, ``results/<student>/<notebook>.json``, ``feedback/<student>/<nb>.html``."""
    out.mkdir(parents=True, exist_ok=True)
    grade_ids: list[str] = []
    for assignment in assignments.values():
        for cell in assignment.solution.cells:
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade") and (
                    gid not in grade_ids):
                grade_ids.append(gid)
    results = sorted(results, key=lambda r: (r.student_id, r.notebook))
    for r in results:
        if not r.notebook:  # a 'missing' row: the CSV and its notes say it all
            continue
        try:
            _write_pages(r, assignments, out)
        except Exception as error:  # one bad row must not cost the gradebook
            r.status, r.score = "grader_error", 0.0
            r.notes.append(f"grader error: its report could not be written "
                           f"({type(error).__name__})")
    write_gradebook(results, out / "grades.csv", grade_ids)


def _write_pages(r: NotebookResult, assignments: dict[str, Assignment], out: Path) -> None:
    stem = Path(r.notebook).stem
    for folder, suffix, text in (
        ("results", "json", json.dumps(r.to_json(), indent=1, ensure_ascii=False) + "\n"),
        ("feedback", "html", feedback_html(r, assignments.get(r.notebook))),
    ):
        target = out / folder / r.student_id / f"{stem}.{suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", errors="backslashreplace")


_CSS = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#1a1a1a;line-height:1.45}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.4rem;
vertical-align:top;text-align:left}pre{background:#f5f5f5;padding:.6rem;overflow-x:auto;
white-space:pre-wrap}.pass{color:#006d2c;font-weight:bold}.other{color:#b30000;
font-weight:bold}
"""


def feedback_html(result: NotebookResult, assignment: Assignment | None = None) -> str:
    """A self-contained HTML page for one learner x notebook; all text escaped."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Feedback: {e(result.notebook)} ({e(result.student_id)})</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{e(result.notebook)}</h1>",
        f"<p>Learner: <b>{e(result.student_id)}</b> &middot; status: {e(result.status)} "
        f"&middot; score: <b>{e(_num(result.score))} / {e(_num(result.max_score))}</b></p>",
    ]
    if result.notes:
        parts.append("<h2>Notes</h2><ul>")
        parts += [f"<li>{e(note)}</li>" for note in result.notes]
        parts.append("</ul>")
    if result.tests:
        parts.append("<h2>Questions</h2><table><tr><th>test</th><th>points</th>"
                     "<th>result</th><th>message</th></tr>")
        for t in result.tests:
            css = "pass" if t.status == "pass" else "other"
            parts.append(
                f"<tr><td>{e(t.grade_id)}</td><td>{e(_num(t.points))} / "
                f"{e(_num(t.max_points))}</td><td class=\"{css}\">{e(t.status)}</td>"
                f"<td><pre>{e(t.message)}</pre></td></tr>")
        parts.append("</table>")
    if result.answers:
        parts.append("<h2>Your answers</h2>")
        for gid, source in result.answers.items():
            shown = source if len(source) <= _ANSWER_LIMIT else source[:_ANSWER_LIMIT] + "\n[...]"
            parts.append(f"<h3>{e(gid)}</h3><pre>{e(shown)}</pre>")
    if assignment is not None and result.tests:
        parts.append("<h2>The tests you could see</h2>")
        for t in result.tests:
            parts.append(f"<details><summary>{e(t.grade_id)}</summary>"
                         f"<pre>{e(assignment.visible_test(t.grade_id))}</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def format_table(result: NotebookResult, width: int = 100) -> str:
    """The plain-text table ``check`` prints: question, points, result, message.

    >>> from course_utils.grading.records import NotebookResult, TestResult
    >>> r = NotebookResult("you", "01.ipynb", 2.0, 3.0, "graded", [
    ...     TestResult("q1_test", 2, 2, "pass", "", 0.1),
    ...     TestResult("q2_test", 0, 1, "fail", "expected 5, got 4", 0.1)])
    >>> print(format_table(r))
    01.ipynb: graded, score 2 / 3
    <BLANKLINE>
    question      points    result       message
    --------------------------------------------
    q1_test       2/2       pass
    q2_test       0/1       fail         expected 5, got 4
    """
    lines = [f"{result.notebook}: {result.status}, score {_num(result.score)} / "
             f"{_num(result.max_score)}", ""]
    header = f"{'question':<14}{'points':<10}{'result':<13}message"
    lines += [header, "-" * len(header)]
    indent = " " * 37
    for t in result.tests:
        message = t.message or ""
        wrapped = [w for para in message.split("\n")
                   for w in (textwrap.wrap(para, width - len(indent)) or [""])] or [""]
        points = f"{_num(t.points)}/{_num(t.max_points)}"
        lines.append(f"{t.grade_id:<14}{points:<10}{t.status:<13}{wrapped[0]}".rstrip())
        lines += [indent + w for w in wrapped[1:]]
    if result.notes:
        lines += ["", "Notes:"] + [f"  - {note}" for note in result.notes]
    return "\n".join(lines)
