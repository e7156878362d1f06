"""The grading output's layout, read and written here only: the gradebook, results, feedback.

    OUT/grades.csv                            one row per learner x notebook (GRADEBOOK)
    OUT/results/<student>/<notebook>.json     the result record (RESULTS)
    OUT/feedback/<student>/<notebook>.html    the learner's page (FEEDBACK)

In the CSV, a cell that a spreadsheet would read as a formula (it starts with ``= + - @``, a
tab or a carriage return) gets a leading apostrophe. ``grades.csv`` is written last, with
``write_atomically`` (a temporary file, flushed to disk, renamed over it), so it is either
the old gradebook or the complete new one. Every file the grader writes whole goes through
that one function (the merged gradebook, a shard's record, the instructor's report), so all
get the same permissions.

>>> csv_text(["student_id", "q1"], [["ada", "2"]])
'student_id,q1\\r\\nada,2\\r\\n'
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from course_utils.grading.feedback import feedback_html, format_points
from course_utils.grading.records import NotebookResult

__all__ = ["GRADEBOOK", "RESULTS", "FEEDBACK", "PER_LEARNER", "FIXED_COLUMNS", "FILE_MODE",
           "safe_cell", "write_atomically", "csv_text", "parse_csv", "write_gradebook",
           "write_reports", "gradebook_path", "read_gradebook_text", "read_gradebook_records",
           "result_files", "is_output"]

GRADEBOOK = "grades.csv"
RESULTS = "results"
FEEDBACK = "feedback"
#: Folders of a grading output that hold one sub-folder per learner.
PER_LEARNER = (RESULTS, FEEDBACK)
FIXED_COLUMNS = ("student_id", "notebook", "score", "max_score", "status")
#: Permissions of every file written with ``write_atomically``.
FILE_MODE = 0o644


def safe_cell(text: str) -> str:
    """Neutralise a CSV cell that a spreadsheet would run as a formula.

    >>> print(safe_cell('=HYPERLINK("http://x")'), safe_cell("ada"))
    '=HYPERLINK("http://x") ada
    """
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, flush it to disk, then rename it
    over ``path``: a reader sees the old file or the new one, never half of it. The file
    gets ``FILE_MODE`` (0o644), whatever the umask."""
    path = Path(path)
    handle = tempfile.NamedTemporaryFile("w", newline="", encoding="utf-8", delete=False,
                                         errors="backslashreplace", dir=path.parent,
                                         prefix=f".{path.name}-")
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, FILE_MODE)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    """The gradebook's text as the grader writes it (csv module, excel dialect, ``\\r\\n``)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def parse_csv(text: str) -> list[list[str]]:
    """The rows (header first) of a gradebook's text."""
    return list(csv.reader(io.StringIO(text, newline="")))


def write_gradebook(results: list[NotebookResult], path: Path, grade_ids: list[str]) -> None:
    """One row per learner x notebook, then the points of each grade_id (empty when n/a),
    written atomically to ``path``."""
    rows = []
    for r in results:
        earned = {t.grade_id: format_points(t.points) for t in r.tests}
        rows.append([safe_cell(str(v)) for v in (
            r.student_id, r.notebook, format_points(r.score), format_points(r.max_score),
            r.status, *(earned.get(g, "") for g in grade_ids))])
    write_atomically(path, csv_text([*FIXED_COLUMNS, *grade_ids], rows))


def write_reports(results: list[NotebookResult], out: Path, columns: list[str],
                  visible_tests: Mapping[str, Mapping[str, str]]) -> None:
    """``results/<student>/<nb>.json`` and ``feedback/<student>/<nb>.html`` for each row,
    then ``grades.csv`` with the question ``columns`` (``assignment.gradebook_columns``).

    ``visible_tests``: notebook -> grade_id -> the test as learners see it
    (``assignment.visible_tests``). A row whose pages cannot be written becomes a
    ``grader_error`` row; it never costs the gradebook."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = sorted(results, key=lambda r: (r.student_id, r.notebook))
    for r in results:
        if not r.notebook:  # a 'missing' row: the CSV and its notes say it all
            continue
        try:
            _write_pages(r, visible_tests.get(r.notebook), out)
        except Exception as error:  # one bad row must not cost the gradebook
            r.status, r.score = "grader_error", 0.0
            r.notes.append(f"grader error: its report could not be written "
                           f"({type(error).__name__})")
    write_gradebook(results, gradebook_path(out), columns)


def _write_pages(r: NotebookResult, visible: Mapping[str, str] | None, out: Path) -> None:
    stem = Path(r.notebook).stem
    for folder, suffix, text in (
        (RESULTS, "json", json.dumps(r.to_json(), indent=1, ensure_ascii=False) + "\n"),
        (FEEDBACK, "html", feedback_html(r, visible)),
    ):
        target = out / folder / r.student_id / f"{stem}.{suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", errors="backslashreplace")


# ---------------------------------------------------------------------- reading


def gradebook_path(out: Path) -> Path:
    """Where the gradebook of the output ``out`` is."""
    return Path(out) / GRADEBOOK


def read_gradebook_text(out: Path) -> str:
    """The gradebook's text exactly as written (``\\r\\n`` endings kept)."""
    with open(gradebook_path(out), encoding="utf-8", newline="") as handle:
        return handle.read()


def read_gradebook_records(out: Path) -> Iterator[dict[str, str]]:
    """The gradebook's rows as dicts, for a reader that must not fail on odd bytes (they
    become U+FFFD); ``OSError`` or ``csv.Error`` when the file cannot be read to the end."""
    with open(gradebook_path(out), encoding="utf-8", errors="replace", newline="") as handle:
        yield from csv.DictReader(handle)


def result_files(out: Path) -> list[Path]:
    """Every result record of the output ``out`` (``results/<student>/<notebook>.json``)."""
    return sorted((Path(out) / RESULTS).rglob("*.json"))


def is_output(out: Path) -> bool:
    """True when ``out`` looks like a grading output (a gradebook or a results folder)."""
    return gradebook_path(out).is_file() or (Path(out) / RESULTS).is_dir()
