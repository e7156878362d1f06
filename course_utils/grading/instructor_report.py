"""The instructor report: which questions did not land (``python -m course_utils report OUT``).

    python -m course_utils report OUT            # writes OUT/report.html

``OUT`` is what ``grade`` (or ``grade merge``) wrote: ``grades.csv`` and
``results/<student>/<notebook>.json``. The page, one self-contained HTML file, shows

- the learners who need a look: a notebook that is missing, unreadable, unknown or not
  graded (``grader_error``), a question ``missing`` or not graded, a note about tampering, a
  name that looks like another learner's (``names.lookalikes``: case, spaces, invisible or
  look-alike letters), each look-alike group listed with its names spelled out;
- per notebook, the pass rate of each question (a stacked bar: pass, fail, error, other) and
  the distribution of scores (a histogram);
- per question, the most common failure messages, grouped after numbers and whitespace are
  normalised (``expected 46820, got 46800`` and ``expected 46820, got 12`` are one group).

Figures are PNGs (matplotlib, Agg, the course's colour-blind palette) embedded as
``data:`` URIs. Messages come from learners' code, so every piece of text is HTML-escaped
and cut to a few hundred characters. Statuses and fields the page does not know are shown
as they are, never an error; a file that cannot be read is listed at the end of the page.

>>> normalise_message("expected 46820,   got 46800 (layer1)")
'expected #, got # (layer1)'
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from course_utils.grading import gradebook
from course_utils.grading.gradebook import GRADEBOOK, cell_text, write_atomically
from course_utils.grading.names import lookalikes
from course_utils.style import PALETTE

__all__ = [
    "Row", "FailureGroup", "load_output", "normalise_message", "group_failures",
    "attention", "lookalike_groups", "not_submitted", "pass_rates", "pass_rate_figure",
    "score_figure", "report_html", "write_report",
]

#: Test statuses drawn as their own colour; any other status is drawn as "other".
STATUS_COLOURS = {"pass": PALETTE[2], "fail": PALETTE[1], "error": PALETTE[4],
                  "other": PALETTE[5]}
#: Test statuses that are ordinary outcomes of a learner's answer (others need a look).
ORDINARY = {"pass", "fail", "error", "timeout", "kernel_died"}
MESSAGE_CHARS = 300
NOTE_CHARS = 300
NAME_CHARS = 80
TOP_GROUPS = 5
LEARNERS_SHOWN = 8

_NUMBER = re.compile(r"(?<![A-Za-z_0-9.])[-+]?(?:0x[0-9a-fA-F]+|\d[\d_]*(?:\.\d+)?(?:[eE][-+]?\d+)?)")


@dataclass
class Row:
    """One learner x notebook, from grades.csv and its results JSON (either may be missing)."""

    student_id: str
    notebook: str
    status: str
    score: float | None = None
    max_score: float | None = None
    tests: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class FailureGroup:
    """Failures of one question whose messages are the same up to numbers and whitespace."""

    status: str
    pattern: str
    example: str
    count: int
    variants: int
    learners: list[str]


def _float(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _as_text(value: object) -> str:
    """Notes and messages as text, whatever their JSON type."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out.

    >>> _cut("abcdef", 4)
    'abcd… (2 more characters)'
    """
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit} more characters)"


def load_output(out: Path) -> tuple[list[Row], list[str]]:
    """The rows of a grading output and the problems met while reading it."""
    out = Path(out)
    problems: list[str] = []
    rows: dict[tuple[str, str], Row] = {}
    has_gradebook = gradebook.gradebook_path(out).is_file()
    if has_gradebook:
        try:
            for line, record in enumerate(gradebook.read_gradebook_records(out), start=2):
                student, notebook = (cell_text(record.get(k) or "") for k in ("student_id", "notebook"))
                if not student or not notebook:
                    problems.append(f"{GRADEBOOK} line {line}: no student_id or notebook")
                    continue
                rows[student, notebook] = Row(
                    student, notebook, record.get("status") or "unknown",
                    _float(record.get("score")), _float(record.get("max_score")))
        except (OSError, csv.Error) as error:
            problems.append(f"{GRADEBOOK} could not be read to the end: {error}")
    else:
        problems.append(f"{GRADEBOOK} is missing; the report uses the {gradebook.RESULTS}/ "
                        "files only")
    for path in gradebook.result_files(out):
        name = path.relative_to(out).as_posix()
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as error:
            problems.append(f"{name} could not be read: {error}")
            continue
        student = str(record.get("student_id") or path.parent.name)
        notebook = str(record.get("notebook") or f"{path.stem}.ipynb")
        row = rows.get((student, notebook))
        if row is None:
            row = rows[student, notebook] = Row(
                student, notebook, str(record.get("status") or "unknown"),
                _float(record.get("score")), _float(record.get("max_score")))
            if has_gradebook:
                problems.append(f"{name} has no row in {GRADEBOOK}")
        tests = record.get("tests")
        row.tests = [t for t in tests if isinstance(t, dict)] if isinstance(tests, list) else []
        notes = record.get("notes")
        row.notes = [_as_text(n) for n in notes] if isinstance(notes, list) else (
            [_as_text(notes)] if notes else [])
    return sorted(rows.values(), key=lambda r: (r.student_id, r.notebook)), problems


def normalise_message(text: str) -> str:
    """The message with every number replaced by ``#`` and whitespace collapsed, so that
    failures differing only in the values they quote group together (names such as
    ``layer1`` or ``q1_test`` are kept).

    >>> normalise_message("shape torch.Size([3, 10]) != (3, 4); 0x7f3a1 at 1.5e-3")
    'shape torch.Size([#, #]) != (#, #); # at #'
    """
    return " ".join(_NUMBER.sub("#", text).split())


def _questions(rows: Iterable[Row]) -> dict[str, list[str]]:
    """Notebook -> its questions (grade_ids) in the order the results list them."""
    found: dict[str, list[str]] = {}
    for row in rows:
        for test in row.tests:
            gid = str(test.get("grade_id", "?"))
            ids = found.setdefault(row.notebook, [])
            if gid not in ids:
                ids.append(gid)
    return dict(sorted(found.items()))


def _status(test: dict) -> str:
    return str(test.get("status", "unknown"))


def pass_rates(rows: list[Row]) -> dict[str, dict[str, Counter]]:
    """Notebook -> question -> Counter of test statuses (over the notebooks that were run).

    >>> rows = [Row("a", "n.ipynb", "graded", tests=[{"grade_id": "q1", "status": "pass"}]),
    ...         Row("b", "n.ipynb", "graded", tests=[{"grade_id": "q1", "status": "fail"}])]
    >>> pass_rates(rows)["n.ipynb"]["q1"]
    Counter({'pass': 1, 'fail': 1})
    """
    result: dict[str, dict[str, Counter]] = {}
    for notebook, ids in _questions(rows).items():
        result[notebook] = {gid: Counter() for gid in ids}
    for row in rows:
        for test in row.tests:
            result[row.notebook][str(test.get("grade_id", "?"))][_status(test)] += 1
    return result


def group_failures(rows: list[Row], notebook: str, grade_id: str,
                   top: int = TOP_GROUPS) -> list[FailureGroup]:
    """The ``top`` most common failures of one question, grouped by status and normalised
    message, largest first (ties: alphabetical, so the page is the same every time)."""
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for row in rows:
        if row.notebook != notebook:
            continue
        for test in row.tests:
            if str(test.get("grade_id", "?")) != grade_id or _status(test) == "pass":
                continue
            message = _as_text(test.get("message", ""))
            key = (_status(test), normalise_message(message)[:2000])
            groups.setdefault(key, []).append((message, row.student_id))
    found = []
    for (status, pattern), members in groups.items():
        variants = Counter(message for message, _ in members)
        example = min(variants, key=lambda m: (-variants[m], m))
        learners = sorted({student for _, student in members})
        found.append(FailureGroup(status, pattern, example, len(members), len(variants), learners))
    found.sort(key=lambda g: (-g.count, g.status, g.pattern))
    return found[:top]


def lookalike_groups(rows: Iterable[Row]) -> list[list[str]]:
    """The learners whose names look alike (one per name), group by group.

    >>> lookalike_groups([Row("ada", "n", "graded"), Row("Ada", "n", "graded"), Row("bo", "n", "x")])
    [['Ada', 'ada']]
    """
    return lookalikes({row.student_id for row in rows})


def _spelled(name: str) -> str:
    """A name with every invisible or non-ASCII character spelled out, quoted.

    >>> print(_spelled("ad\u0430 "), _spelled("a\u200bda"))
    'ad\u0430 ' 'a\u200bda'
    """
    return ascii(name)


def attention(rows: list[Row]) -> list[tuple[Row, list[str]]]:
    """Rows that need a look, each with its reasons: a notebook not graded as usual, a
    question missing or not graded, a note about tampering, or a learner whose name looks
    like another's."""
    alike = {name: group for group in lookalike_groups(rows) for name in group}
    flagged = []
    for row in rows:
        reasons = []
        if row.status != "graded":
            reasons.append(f"notebook {row.status}")
        odd = Counter(_status(t) for t in row.tests if _status(t) not in ORDINARY)
        reasons += [f"{n} question(s) {status}" for status, n in sorted(odd.items())]
        tampering = [note for note in row.notes if "tamper" in note.lower()]
        reasons += [f"note: {note}" for note in tampering]
        if row.student_id in alike:
            reasons.append("name looks like " + ", ".join(
                _spelled(n) for n in alike[row.student_id] if n != row.student_id)
                + ": separate learners, or one learner twice?")
        if reasons:
            flagged.append((row, reasons))
    return flagged


def not_submitted(rows: list[Row]) -> dict[str, list[str]]:
    """Notebook -> learners with no file for it (among notebooks somebody submitted)."""
    learners = {r.student_id for r in rows}
    notebooks = {r.notebook for r in rows if r.status != "unknown_notebook"}
    handed_in = {(r.student_id, r.notebook) for r in rows}
    missing = {nb: sorted(s for s in learners if (s, nb) not in handed_in)
               for nb in sorted(notebooks)}
    return {nb: students for nb, students in missing.items() if students}


# ------------------------------------------------------------------------------ figures


def _label(text: str, limit: int = 40) -> str:
    """Text matplotlib shows as it is (``$`` would start mathtext)."""
    return _cut(text, limit).replace("$", r"\$")


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def pass_rate_figure(notebook: str, questions: dict[str, Counter]) -> Figure:
    """Stacked horizontal bars: the share of pass, fail, error and other per question."""
    names = list(questions)
    figure = Figure(figsize=(5.5, 1.5 + 0.4 * len(names)), layout="constrained")
    ax = figure.add_subplot()
    left = [0.0] * len(names)
    for kind, colour in STATUS_COLOURS.items():
        shares = []
        for gid in names:
            counts, total = questions[gid], sum(questions[gid].values()) or 1
            n = counts[kind] if kind != "other" else sum(
                v for k, v in counts.items() if k not in STATUS_COLOURS)
            shares.append(100.0 * n / total)
        ax.barh(range(len(names)), shares, left=left, color=colour, label=kind,
                edgecolor="white", linewidth=0.5)
        left = [a + b for a, b in zip(left, shares)]
    for i, gid in enumerate(names):
        counts = questions[gid]
        ax.text(101, i, f"{counts['pass']}/{sum(counts.values())} pass", va="center", fontsize=8)
    ax.set_yticks(range(len(names)), [_label(n) for n in names])
    ax.invert_yaxis()
    ax.set_xlim(0, 125)
    ax.set_xticks([0, 25, 50, 75, 100])
    ax.set_xlabel("share of learners (%)")
    ax.set_title(f"{_label(notebook, 60)}: result per question", fontsize=10)
    figure.legend(loc="outside lower center", ncols=4, fontsize=8, frameon=False)
    return figure


def score_figure(notebook: str, scores: list[float], max_score: float) -> Figure:
    """Histogram of the scores of one notebook, one bar per point when that is few bars."""
    figure = Figure(figsize=(5.5, 3.0), layout="constrained")
    ax = figure.add_subplot()
    top = max([max_score, *scores, 1.0])
    if float(top).is_integer() and top <= 40 and all(float(s).is_integer() for s in scores):
        bins = [k - 0.5 for k in range(int(top) + 2)]
        ax.set_xticks(range(0, int(top) + 1, max(1, int(top) // 10)))
    else:
        bins = [top * k / 20 for k in range(21)]
    ax.hist(scores, bins=bins, color=PALETTE[0], edgecolor="white")
    if scores:
        median = statistics.median(scores)
        ax.axvline(median, color=PALETTE[7], linestyle="--", label=f"median {median:g}")
        ax.legend(fontsize=8)
    ax.set_xlabel(f"score (points, out of {max_score:g})")
    ax.set_ylabel("learners")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"{_label(notebook, 60)}: scores of {len(scores)} graded notebook(s)",
                 fontsize=10)
    return figure


# ------------------------------------------------------------------------------ the page


_CSS = """
body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;
color:#1a1a1a;line-height:1.45}table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}
td,th{border:1px solid #ccc;padding:.35rem;vertical-align:top;text-align:left}
pre{background:#f5f5f5;padding:.4rem;margin:0;white-space:pre-wrap;word-break:break-word}
.figures{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}.figures img{max-width:100%;height:auto}
.muted{color:#555}.failures td:nth-child(3){width:55%}
"""


def _e(text: object, limit: int = NAME_CHARS) -> str:
    return html.escape(_cut(str(text), limit))


def _img(figure: Figure, alt: str) -> str:
    return f'<img alt="{_e(alt, 200)}" src="data:image/png;base64,{_png(figure)}">'


def _learners(names: list[str]) -> str:
    shown = ", ".join(_e(n) for n in names[:LEARNERS_SHOWN])
    more = len(names) - LEARNERS_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def _attention_html(rows: list[Row]) -> list[str]:
    flagged = attention(rows)
    parts = ['<h2 id="attention">Learners who need a look</h2>']
    if not flagged:
        return [*parts, "<p>None: every notebook was graded, with no missing question and no "
                        "note about tampering.</p>"]
    parts.append(f"<p>{len(flagged)} notebook(s). Their feedback pages are in "
                 "<code>feedback/&lt;student_id&gt;/</code>.</p>")
    parts.append("<table><tr><th>learner</th><th>notebook</th><th>why</th><th>notes</th></tr>")
    for row, reasons in flagged:
        notes = "".join(f"<li>{_e(n, NOTE_CHARS)}</li>" for n in row.notes[:10])
        if len(row.notes) > 10:
            notes += f"<li>and {len(row.notes) - 10} more</li>"
        parts.append(f"<tr><td>{_e(row.student_id)}</td><td>{_e(row.notebook)}</td><td>"
                     + "<br>".join(_e(r, NOTE_CHARS) for r in reasons)
                     + f"</td><td><ul>{notes}</ul></td></tr>")
    parts.append("</table>")
    return parts


def _notebook_html(rows: list[Row], notebook: str, questions: dict[str, Counter],
                   anchor: str) -> list[str]:
    mine = [r for r in rows if r.notebook == notebook]
    graded = [r for r in mine if r.status == "graded" and r.score is not None]
    max_score = max((r.max_score or 0.0 for r in graded), default=0.0)
    parts = [f'<h2 id="{anchor}">{_e(notebook)}</h2>',
             f"<p>{len(mine)} submitted, {len(graded)} graded; the bars count the "
             f"{sum(1 for r in mine if r.tests)} notebook(s) whose questions ran.</p>",
             '<div class="figures">',
             _img(pass_rate_figure(notebook, questions), f"result per question of {notebook}"),
             _img(score_figure(notebook, [r.score for r in graded if r.score is not None],
                               max_score), f"score distribution of {notebook}"),
             "</div>", "<h3>Most common failures per question</h3>"]
    any_failure = False
    for gid, counts in questions.items():
        groups = group_failures(rows, notebook, gid)
        if not groups:
            continue
        any_failure = True
        failed = sum(counts.values()) - counts["pass"]
        parts.append(f"<h4>{_e(gid)}: {failed} of {sum(counts.values())} did not pass</h4>")
        parts.append('<table class="failures"><tr><th>learners</th><th>result</th>'
                     "<th>message (most common wording)</th><th>who</th></tr>")
        for g in groups:
            variants = (f'<div class="muted">{g.variants} wordings that differ only in '
                        "numbers or spacing</div>") if g.variants > 1 else ""
            parts.append(f"<tr><td>{g.count}</td><td>{_e(g.status)}</td><td><pre>"
                         f"{_e(g.example, MESSAGE_CHARS)}</pre>{variants}</td>"
                         f"<td>{_learners(g.learners)}</td></tr>")
        parts.append("</table>")
    if not any_failure:
        parts.append("<p>Every question passed for every learner.</p>")
    return parts


def report_html(out: Path) -> str:
    """The whole page for the grading output in ``out``."""
    rows, problems = load_output(out)
    rates = pass_rates(rows)
    statuses = Counter(r.status for r in rows)
    title = f"Instructor report: {Path(out).name or out}"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title, 200)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title, 200)}</h1>",
        f"<p>{len({r.student_id for r in rows})} learner(s), {len(rows)} notebook file(s): "
        + ", ".join(f"{n} {_e(s)}" for s, n in sorted(statuses.items())) + ".</p>",
    ]
    anchors = {nb: f"nb{i}" for i, nb in enumerate(rates)}
    if rates:
        parts.append("<p>Notebooks: " + " · ".join(
            f'<a href="#{anchors[nb]}">{_e(nb)}</a>' for nb in rates) + "</p>")
    parts += _attention_html(rows)
    groups = lookalike_groups(rows)
    if groups:
        parts.append(f'<h3 id="lookalikes">{len(groups)} group(s) of learner names that look alike</h3>'
                     "<p>Graded as separate learners: check whether each group is one learner "
                     "(handed in twice) or several.</p><ul>")
        parts += [f"<li>{_e(', '.join(_spelled(n) for n in group), NOTE_CHARS)}</li>" for group in groups]
        parts.append("</ul>")
    missing = not_submitted(rows)
    if missing:
        parts.append("<h3>No file handed in</h3><ul>")
        parts += [f"<li>{_e(nb)}: {_learners(students)}</li>" for nb, students in missing.items()]
        parts.append("</ul>")
    if not rates:
        parts.append("<p>No question was graded, so there is nothing to plot.</p>")
    for notebook, questions in rates.items():
        parts += _notebook_html(rows, notebook, questions, anchors[notebook])
    if problems:
        parts.append('<h2 id="problems">Files the report could not use</h2><ul>')
        parts += [f"<li>{_e(p, NOTE_CHARS)}</li>" for p in problems[:50]]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(out: Path, target: Path | None = None) -> Path:
    """Write the page (default ``OUT/report.html``) in one step and return its path."""
    out = Path(out)
    target = Path(target) if target else out / "report.html"
    page = report_html(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, page)
    return target
