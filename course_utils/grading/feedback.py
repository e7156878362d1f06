"""The learner's feedback: an HTML page per learner x notebook, and the table ``check`` prints.

Feedback shows the learner's own answers, the visible tests and, for each question, the
error's type and message; never a traceback of a test cell (IPython tracebacks quote source
lines, and hidden tests must stay hidden). Every piece of text is HTML-escaped. The renderer
gets results and plain data (the tests learners could see), never the grader's own model.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Mapping

from course_utils.grading.records import NotebookResult

__all__ = ["format_points", "feedback_html", "format_table"]

_ANSWER_LIMIT = 20_000


def format_points(value: float) -> str:
    """Points as the gradebook and the feedback show them.

    >>> format_points(2.0), format_points(1.5)
    ('2', '1.5')
    """
    return f"{value:g}"


_CSS = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#1a1a1a;line-height:1.45}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.4rem;
vertical-align:top;text-align:left}pre{background:#f5f5f5;padding:.6rem;overflow-x:auto;
white-space:pre-wrap}.pass{color:#006d2c;font-weight:bold}.other{color:#b30000;
font-weight:bold}
"""


def feedback_html(result: NotebookResult, visible_tests: Mapping[str, str] | None = None) -> str:
    """A self-contained HTML page for one learner x notebook; all text escaped.

    ``visible_tests``: grade_id -> the test's source as learners see it (``assignment.
    visible_tests``); without it, the page has no "tests you could see" section.
    """
    e = html.escape
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Feedback: {e(result.notebook)} ({e(result.student_id)})</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{e(result.notebook)}</h1>",
        f"<p>Learner: <b>{e(result.student_id)}</b> &middot; status: {e(result.status)} "
        f"&middot; score: <b>{e(format_points(result.score))} / {e(format_points(result.max_score))}</b></p>",
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
                f"<tr><td>{e(t.grade_id)}</td><td>{e(format_points(t.points))} / "
                f"{e(format_points(t.max_points))}</td><td class=\"{css}\">{e(t.status)}</td>"
                f"<td><pre>{e(t.message)}</pre></td></tr>")
        parts.append("</table>")
    if result.answers:
        parts.append("<h2>Your answers</h2>")
        for gid, source in result.answers.items():
            shown = source if len(source) <= _ANSWER_LIMIT else source[:_ANSWER_LIMIT] + "\n[...]"
            parts.append(f"<h3>{e(gid)}</h3><pre>{e(shown)}</pre>")
    if visible_tests is not None and result.tests:
        parts.append("<h2>The tests you could see</h2>")
        for t in result.tests:
            parts.append(f"<details><summary>{e(t.grade_id)}</summary>"
                         f"<pre>{e(visible_tests[t.grade_id])}</pre></details>")
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
    lines = [f"{result.notebook}: {result.status}, score {format_points(result.score)} / "
             f"{format_points(result.max_score)}", ""]
    header = f"{'question':<14}{'points':<10}{'result':<13}message"
    lines += [header, "-" * len(header)]
    indent = " " * 37
    for t in result.tests:
        message = t.message or ""
        wrapped = [w for para in message.split("\n")
                   for w in (textwrap.wrap(para, width - len(indent)) or [""])] or [""]
        points = f"{format_points(t.points)}/{format_points(t.max_points)}"
        lines.append(f"{t.grade_id:<14}{points:<10}{t.status:<13}{wrapped[0]}".rstrip())
        lines += [indent + w for w in wrapped[1:]]
    if result.notes:
        lines += ["", "Notes:"] + [f"  - {note}" for note in result.notes]
    return "\n".join(lines)
