"""What was handed in: the learners in ``submissions/``, their notebooks, read safely.

``learner_entries`` is the one definition of which entries of the submissions folder are
learners (every name not starting with ``.``, a stray file included: it gets a ``missing``
row); a learner's id is ``names.shown_name`` of the folder's name (one to one, whatever its
bytes), and ``learner_ids`` lists the class; ``learner_notebooks`` lists what to grade and the
``missing`` rows.

``read_submission`` opens the file with ``O_NOFOLLOW | O_NONBLOCK`` (a symlink to a secret
or to ``/dev/zero`` is refused, a named pipe cannot block us), checks it is a regular file
no larger than ``MAX_NOTEBOOK_BYTES``, then validates the JSON structure strictly before
nbformat sees it. Every refusal is a ``ValueError`` whose message says why.

>>> structure_problems({"cells": [{"cell_type": "code", "source": 3, "metadata": {}}],
...                     "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
['cell 0: source must be a string or a list of strings, got int']
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import nbformat

from course_utils.grading.names import shown_name
from course_utils.grading.records import NotebookResult

__all__ = ["MAX_NOTEBOOK_BYTES", "read_bytes_safely", "structure_problems", "read_submission",
           "parse_submission", "read_roster", "shown_name", "learner_entries", "learner_folders",
           "learner_ids", "learner_notebooks", "unknown_notebook"]

MAX_NOTEBOOK_BYTES = 20 * 2**20
_CELL_TYPES = ("code", "markdown", "raw")


def read_bytes_safely(path: Path, limit: int = MAX_NOTEBOOK_BYTES) -> bytes:
    """The bytes of a regular file, never following a symlink; ``ValueError`` otherwise."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if Path(path).is_symlink():
            raise ValueError("the file is a symbolic link; hand in the notebook itself") from None
        raise ValueError(f"cannot open the file ({error.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file (a folder, pipe or device)")
        if info.st_size > limit:
            raise ValueError(f"the file is {info.st_size / 2**20:.1f} MB, over the "
                             f"{limit / 2**20:g} MB limit")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"the file is over the {limit / 2**20:g} MB limit")
    return data


def _is_text(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, list)
                                      and all(isinstance(v, str) for v in value))


def _cell_problems(index: int, cell: Any) -> list[str]:
    where = f"cell {index}"
    if not isinstance(cell, Mapping):
        return [f"{where}: must be an object, got {type(cell).__name__}"]
    problems = []
    if cell.get("cell_type") not in _CELL_TYPES:
        problems.append(f"{where}: cell_type must be one of {', '.join(_CELL_TYPES)}")
    if not _is_text(cell.get("source")):
        problems.append(f"{where}: source must be a string or a list of strings, got "
                        f"{type(cell.get('source')).__name__}")
    metadata = cell.get("metadata", {})
    if not isinstance(metadata, Mapping):
        problems.append(f"{where}: metadata must be an object")
    else:
        for key in ("nbgrader", "course_utils"):
            if key in metadata and not isinstance(metadata[key], Mapping):
                problems.append(f"{where}: metadata.{key} must be an object")
        grade_id = metadata.get("nbgrader", {}).get("grade_id", "") if isinstance(
            metadata.get("nbgrader", {}), Mapping) else ""
        if not isinstance(grade_id, str) or len(grade_id) > 200:
            problems.append(f"{where}: metadata.nbgrader.grade_id must be a short string")
        tags = metadata.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            problems.append(f"{where}: metadata.tags must be a list of strings")
    if cell.get("cell_type") == "code" and not isinstance(cell.get("outputs", []), list):
        problems.append(f"{where}: outputs must be a list")
    return problems


def structure_problems(data: Any) -> list[str]:
    """Every way ``data`` (parsed JSON) is not a notebook we can grade; [] when it is one."""
    if not isinstance(data, Mapping):
        return [f"the top level must be an object, got {type(data).__name__}"]
    problems = []
    if data.get("nbformat") != 4:
        problems.append(f"nbformat must be 4, got {data.get('nbformat')!r}"[:120])
    metadata = data.get("metadata", {})
    if not isinstance(metadata, Mapping):
        problems.append("metadata must be an object")
    else:
        kernelspec = metadata.get("kernelspec", {})
        if not isinstance(kernelspec, Mapping):
            problems.append(f"metadata.kernelspec must be an object, got "
                            f"{type(kernelspec).__name__}")
        elif not isinstance(kernelspec.get("name", ""), str):
            problems.append("metadata.kernelspec.name must be a string")
    cells = data.get("cells")
    if not isinstance(cells, list):
        problems.append(f"cells must be a list, got {type(cells).__name__}")
    else:
        for index, cell in enumerate(cells):
            problems += _cell_problems(index, cell)
    return problems


def read_submission(path: Path, limit: int = MAX_NOTEBOOK_BYTES) -> nbformat.NotebookNode:
    """Read and parse a submitted notebook; ``ValueError`` with the reason when it is not one."""
    return parse_submission(read_bytes_safely(path, limit))


def parse_submission(data: bytes) -> nbformat.NotebookNode:
    """Parse a notebook's bytes strictly; ``ValueError`` with a readable reason."""
    if not data.strip():
        raise ValueError("the file is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the file is not text (not UTF-8)") from None
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ValueError(f"not a Jupyter notebook: invalid JSON ({str(error)[:120]})") from None
    problems = structure_problems(parsed)
    if problems:
        shown = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)"
                                           if len(problems) > 5 else "")
        raise ValueError(f"not a valid notebook: {shown}")
    try:
        return nbformat.reads(text, as_version=4)
    except Exception as error:  # nbformat's own checks; never let them sink the batch
        raise ValueError(f"not a Jupyter notebook: {type(error).__name__}") from None


def read_roster(path: Path) -> list[str]:
    """Student ids, one per line (blank lines and ``#`` comments ignored; first CSV field)."""
    ids = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        field = line.split(",")[0].strip()
        if field and not field.startswith("#") and field != "student_id":
            ids.append(field)
    return ids


def learner_entries(submissions: Path) -> list[Path]:
    """Everything in ``submissions`` that gets a gradebook row (a stray file gets a
    ``missing`` row too), sorted by name."""
    return sorted(p for p in Path(submissions).iterdir() if not p.name.startswith("."))


def learner_folders(submissions: Path) -> list[Path]:
    """The learners' folders in ``submissions``, as the grader lists them."""
    return [p for p in learner_entries(submissions) if p.is_dir() and not p.is_symlink()]


def learner_ids(submissions: Path, roster: Iterable[str] = ()) -> list[str]:
    """The gradebook id of every learner of the class, sorted: each entry of
    ``submissions`` (``shown_name`` of its name) and each roster entry."""
    ids = {shown_name(p.name) for p in learner_entries(submissions)}
    return sorted(ids | {shown_name(s) for s in roster})


def _missing(student: str, note: str) -> NotebookResult:
    return NotebookResult(student, "", 0.0, 0.0, "missing", notes=[note])


def learner_notebooks(submissions: Path, roster: list[str],
                      include: Callable[[str], bool] | None = None
                      ) -> tuple[list[tuple[str, Path]], list[NotebookResult]]:
    """(student, path) pairs to grade, and ``missing`` rows (no notebook, not handed in);
    only learners for whom ``include(student_id)`` is true, when it is given."""
    tasks: list[tuple[str, Path]] = []
    missing: list[NotebookResult] = []
    seen = set()
    for folder in learner_entries(submissions):
        student = shown_name(folder.name)  # the folder's name, always valid text
        if include and not include(student):
            continue
        seen.add(student)
        if folder.is_symlink() or not folder.is_dir():
            missing.append(_missing(student, f"{student} is not a folder (a symlink or a file); "
                                             "nothing was graded"))
            continue
        found = sorted(p for p in folder.iterdir() if p.name.endswith(".ipynb"))
        tasks += [(student, p) for p in found]
        if not found:
            others = sorted(shown_name(p.name) for p in folder.iterdir())[:5]
            missing.append(_missing(student, "no notebook (*.ipynb) in the folder" + (
                f"; found: {', '.join(others)}" if others else "")))
    roster_ids = dict.fromkeys(shown_name(s) for s in roster)  # escaped as folder names are
    missing += [_missing(student, "on the roster, but no folder was handed in")
                for student in roster_ids if student not in seen and (include is None or include(student))]
    return tasks, missing


def unknown_notebook(student_id: str, path: Path, known: list[str]) -> NotebookResult:
    """The row of a handed-in file whose name matches no exercise (``known``)."""
    name = shown_name(path.name)
    note = (f"{name} matches no exercise; expected one of: {', '.join(known)}. "
            "Rename the file to its exercise's name to have it graded.")
    return NotebookResult(student_id, name, 0.0, 0.0, "unknown_notebook", notes=[note])
