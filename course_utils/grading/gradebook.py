"""The grading output's layout, read and written here only: the gradebook, results, feedback.

    OUT/grades.csv                            one row per learner x notebook (GRADEBOOK)
    OUT/results/<student>/<notebook>.json     the result record (RESULTS)
    OUT/feedback/<student>/<notebook>.html    the learner's page (FEEDBACK)

``<student>`` and ``<notebook>`` are the id and the notebook's name as they are, unless two of
them would be one file on a case-insensitive or normalising file system (``Ada`` and ``ada``)
or the name is not portable: then ``names.file_names`` gives each of them a name of its own
(``page_paths`` says which; the results JSON always holds the id itself). The folders are
chosen from the whole class (``learners``), so every shard of a class picks the same ones.

In the CSV, a cell that a spreadsheet would read as a formula (it starts with ``= + - @``, a
tab or a carriage return) gets a leading apostrophe, and so does a cell starting with one
(``cell_text`` undoes it: two ids are never one cell). ``grades.csv`` is written last, with
``write_atomically`` (a temporary file, flushed to disk, renamed over it), so it is either
the old gradebook or the complete new one. Every file the grader writes whole goes through
that one function (the merged gradebook, a shard's record, the instructor's report), so all
get the same permissions.

>>> csv_text(["student_id", "q1"], [["ada", "2"]])
'student_id,q1\\r\\nada,2\\r\\n'
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from course_utils.grading.feedback import feedback_html, format_points
from course_utils.grading.names import LOOKALIKE_NOTE, file_names, lookalike_key, lookalikes, shown_name
from course_utils.grading.records import NotebookResult

__all__ = ["GRADEBOOK", "RESULTS", "FEEDBACK", "PER_LEARNER", "FIXED_COLUMNS", "FILE_MODE",
           "safe_cell", "cell_text", "write_atomically", "csv_text", "parse_csv", "gradebook_row",
           "record_row", "write_gradebook", "page_folders", "page_paths", "write_reports", "gradebook_path",
           "read_gradebook_text", "read_gradebook_records", "result_files", "is_output",
           "output_files", "read_output_file", "write_new_file"]

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

    >>> print(safe_cell('=HYPERLINK("http://x")'), safe_cell("ada"), safe_cell("'=x"))
    '=HYPERLINK("http://x") ada ''=x
    """
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r", "'") else text


def cell_text(cell: str) -> str:
    """The text ``safe_cell`` wrote as ``cell`` (its inverse).

    >>> cell_text("''=x"), cell_text("ada")
    ("'=x", 'ada')
    """
    return cell[1:] if cell.startswith("'") else cell


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


def gradebook_row(r: NotebookResult, grade_ids: list[str]) -> list[str]:
    """The gradebook's row of one result: the fixed columns, then each grade_id's points."""
    return record_row(r.to_json(), grade_ids)


def record_row(record: Mapping, grade_ids: list[str]) -> list[str]:
    """The gradebook's row of a results JSON record (``KeyError``/``TypeError``/``ValueError``
    when it is not one), so a reader can check that the two agree."""
    earned = {t["grade_id"]: format_points(float(t["points"])) for t in record["tests"]}
    return [safe_cell(str(v)) for v in (
        record["student_id"], record["notebook"], format_points(float(record["score"])),
        format_points(float(record["max_score"])), record["status"],
        *(earned.get(g, "") for g in grade_ids))]


def write_gradebook(results: list[NotebookResult], path: Path, grade_ids: list[str]) -> None:
    """One row per learner x notebook, then the points of each grade_id (empty when n/a),
    written atomically to ``path``."""
    rows = [gradebook_row(r, grade_ids) for r in results]
    write_atomically(path, csv_text([*FIXED_COLUMNS, *grade_ids], rows))


def page_folders(learners: Iterable[str]) -> dict[str, str]:
    """Student id -> the name of its folder in ``results/`` and ``feedback/``, for a class.

    >>> page_folders(["ada", "grace"])
    {'ada': 'ada', 'grace': 'grace'}
    """
    return file_names(learners)


def page_paths(rows: Iterable[tuple[str, str, str]], learners: Iterable[str] = ()
               ) -> dict[tuple[str, str], tuple[str, str]]:
    """(student_id, notebook) -> the paths of its results JSON and feedback page, relative to
    the output, for each ``(student_id, notebook, status)`` with a notebook. ``learners``: the
    whole class's ids (the rows' own when left out), so a shard picks the class's folders.

    >>> page_paths([("Ada", "01.ipynb", "graded"), ("ada", "01.ipynb", "graded")])[("ada", "01.ipynb")]
    ('results/ada~616461/01.json', 'feedback/ada~616461/01.html')
    """
    rows = [row for row in rows if row[1]]
    folders = page_folders({*learners, *(student for student, _, _ in rows)})
    by_student: dict[str, list[tuple[str, str]]] = {}
    for student, notebook, status in rows:
        by_student.setdefault(student, []).append((Path(notebook).stem, status))
    stems = {student: file_names([stem for stem, _ in mine],
                                 keep=[stem for stem, status in mine if status != "unknown_notebook"])
             for student, mine in by_student.items()}
    paths = {}
    for student, notebook, _ in rows:
        where, stem = folders[student], stems[student][Path(notebook).stem]
        paths[student, notebook] = (f"{RESULTS}/{where}/{stem}.json", f"{FEEDBACK}/{where}/{stem}.html")
    return paths


def write_reports(results: list[NotebookResult], out: Path, columns: list[str],
                  visible_tests: Mapping[str, Mapping[str, str]],
                  learners: Iterable[str] | None = None) -> None:
    """``results/<student>/<nb>.json`` and ``feedback/<student>/<nb>.html`` for each row
    (folders as ``page_paths`` picks them), then ``grades.csv`` with the question ``columns``
    (``assignment.gradebook_columns``).

    ``visible_tests``: notebook -> grade_id -> the test as learners see it
    (``assignment.visible_tests``); ``learners``: the class's ids (``intake.learner_ids``),
    whose look-alikes get ``names.LOOKALIKE_NOTE``. A row whose pages cannot be written
    becomes a ``grader_error`` row without pages; it never costs the gradebook."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = sorted(results, key=lambda r: (r.student_id, r.notebook))
    everyone = {*(learners or ()), *(r.student_id for r in results)}
    alike = {lookalike_key(name) for group in lookalikes(everyone) for name in group}
    for r in results:
        if lookalike_key(r.student_id) in alike and LOOKALIKE_NOTE not in r.notes:
            r.notes.append(LOOKALIKE_NOTE)
    paths = page_paths(((r.student_id, r.notebook, r.status) for r in results), everyone)
    for r in results:
        if not r.notebook:  # a 'missing' row: the CSV and its notes say it all
            continue
        targets = [out / path for path in paths[r.student_id, r.notebook]]
        try:
            _write_pages(r, visible_tests.get(r.notebook), targets)
        except Exception as error:  # one bad row must not cost the gradebook
            r.status, r.score = "grader_error", 0.0
            r.notes.append(f"grader error: its report could not be written "
                           f"({type(error).__name__})")
            for target in targets:  # no page may say otherwise than the gradebook
                with contextlib.suppress(OSError):
                    target.unlink(missing_ok=True)
    write_gradebook(results, gradebook_path(out), columns)


def _write_pages(r: NotebookResult, visible: Mapping[str, str] | None, targets: list[Path]) -> None:
    texts = (json.dumps(r.to_json(), indent=1, ensure_ascii=False) + "\n", feedback_html(r, visible))
    for target, text in zip(targets, texts):
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


# ------------------------------------------------------------- copying an output safely


def output_files(out: Path) -> list[tuple[str, ...]]:
    """The regular files of the output ``out``, as path components relative to it, sorted;
    ``ValueError`` naming the first entry that is a symbolic link, a special file (pipe,
    socket, device) or a file with other hard links: an output holds none, and a copy must
    never read what one points to."""
    found: list[tuple[str, ...]] = []

    def walk(folder: Path, parts: tuple[str, ...]) -> None:
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                here = (*parts, entry.name)
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    walk(Path(entry.path), here)
                elif not stat.S_ISREG(info.st_mode):
                    raise ValueError(f"{_shown(out, here)} is {_kind(info.st_mode)}, not a "
                                     "regular file; an output holds only files and folders")
                elif info.st_nlink != 1:
                    raise ValueError(f"{_shown(out, here)} has {info.st_nlink} hard links; "
                                     "an output's files have one")
                else:
                    found.append(here)

    walk(Path(out), ())
    return found


def _shown(out: Path, parts: tuple[str, ...]) -> str:
    return "/".join([str(out), *(shown_name(p) for p in parts)])


def _kind(mode: int) -> str:
    return "a symbolic link" if stat.S_ISLNK(mode) else "a special file (pipe, socket or device)"


def read_output_file(out: Path, parts: tuple[str, ...], limit: int = 2**30) -> bytes:
    """The bytes of the file ``out/<parts...>``, opened one component at a time without
    following a symbolic link anywhere below ``out``; ``ValueError`` when it is not a regular
    file with one link, or larger than ``limit``."""
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(out, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            flags = os.O_RDONLY | nofollow | (os.O_NONBLOCK if last else getattr(os, "O_DIRECTORY", 0))
            try:
                child = os.open(part, flags, dir_fd=fd)
            except OSError as error:
                raise ValueError(f"{_shown(out, parts)}: cannot open it without following a "
                                 f"link ({error.strerror})") from None
            os.close(fd)
            fd = child
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_size > limit:
            raise ValueError(f"{_shown(out, parts)}: not a regular file with one link "
                             f"under {limit} bytes")
        with os.fdopen(fd, "rb") as handle:
            fd = -1
            return handle.read(limit + 1)[:limit]
    finally:
        if fd >= 0:
            os.close(fd)


def write_new_file(path: Path, data: bytes) -> None:
    """Create ``path`` (it must not exist; a link there is never followed) with ``data`` and
    ``FILE_MODE``, whatever the umask and whatever the file it was copied from."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), FILE_MODE)
        handle.write(data)
