"""The notebook format shared with nbgrader: markers, cell metadata, stubs and checksums.

A solution notebook marks answers and hidden tests with comment lines::

    def mlp_param_count() -> int:
        ### BEGIN SOLUTION
        return 10 * 20 + 20 + 20 * 5 + 5
        ### END SOLUTION

and describes each cell under ``metadata.nbgrader`` (schema version 3). The functions
below reproduce nbgrader 0.9's ``ClearSolutions``, ``ClearHiddenTests``, ``LockCells``
and ``utils.compute_checksum`` so that our exercises are what nbgrader would release.
Everything here is pure: no kernel, no file access.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "BEGIN_SOLUTION", "END_SOLUTION", "BEGIN_HIDDEN", "END_HIDDEN", "CODE_STUB", "TEXT_STUB",
    "GRADE_ID_PATTERN", "NBGRADER_KEYS", "NotebookFormatError", "nbgrader_meta", "is_grade",
    "is_solution", "is_locked", "grade_id", "course_meta", "marker_regions", "clear_solutions",
    "remove_hidden_tests", "compute_checksum", "lock_metadata", "metadata_problems",
]

# nbgrader looks for these substrings anywhere in a line (usually after "### ").
BEGIN_SOLUTION = "BEGIN SOLUTION"
END_SOLUTION = "END SOLUTION"
BEGIN_HIDDEN = "BEGIN HIDDEN TESTS"
END_HIDDEN = "END HIDDEN TESTS"
# nbgrader's ClearSolutions.code_stub["python"] and text_stub.
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"

GRADE_ID_PATTERN = re.compile(r"^[a-zA-Z0-9_\-]*$")
# Keys nbgrader's schema v3 allows under metadata.nbgrader (additionalProperties: false).
NBGRADER_KEYS = frozenset(
    {"schema_version", "grade", "locked", "solution", "task", "grade_id", "points",
     "checksum", "cell_type"}
)
_REQUIRED_KEYS = ("schema_version", "grade", "locked", "solution")


class NotebookFormatError(ValueError):
    """A solution notebook breaks the format; the message names notebook, cell and grade_id."""

    def __init__(self, notebook: str, problems: list[str]) -> None:
        self.notebook = notebook
        self.problems = list(problems)
        listed = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{notebook}: {len(self.problems)} problem(s)\n{listed}")


def nbgrader_meta(cell: Mapping[str, Any]) -> Mapping[str, Any]:
    """The cell's ``metadata.nbgrader`` dict, or an empty one.

    >>> nbgrader_meta({"metadata": {"nbgrader": {"grade": True}}})
    {'grade': True}
    >>> nbgrader_meta({"metadata": {}})
    {}
    """
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, Mapping) else {}


def is_grade(cell: Mapping[str, Any]) -> bool:
    """True for a cell worth points (nbgrader's "autograder tests" cell)."""
    return bool(nbgrader_meta(cell).get("grade", False))


def is_solution(cell: Mapping[str, Any]) -> bool:
    """True for a cell the learner writes in (an answer cell)."""
    return bool(nbgrader_meta(cell).get("solution", False))


def is_locked(cell: Mapping[str, Any]) -> bool:
    """nbgrader's rule: solution cells are never locked, grade cells always are."""
    if not nbgrader_meta(cell) or is_solution(cell):
        return False
    return is_grade(cell) or bool(nbgrader_meta(cell).get("locked", False))


def grade_id(cell: Mapping[str, Any]) -> str:
    """The cell's ``grade_id`` ('' when it has none)."""
    return str(nbgrader_meta(cell).get("grade_id", ""))


def course_meta(cell: Mapping[str, Any]) -> Mapping[str, Any]:
    """Our own per-cell settings (``metadata.course_utils``: ``hint``, ``timeout``)."""
    meta = cell.get("metadata", {}).get("course_utils", {})
    return meta if isinstance(meta, Mapping) else {}


def marker_regions(source: str, begin: str, end: str) -> list[tuple[int, int]]:
    """Line numbers (0-based, inclusive) of each ``begin`` ... ``end`` region in ``source``.

    Raises ``ValueError`` for a nested begin, an end without a begin, or a missing end.

    >>> marker_regions("a\\n### BEGIN SOLUTION\\nb\\n### END SOLUTION", BEGIN_SOLUTION, END_SOLUTION)
    [(1, 3)]
    """
    regions, start = [], None
    for number, line in enumerate(source.split("\n")):
        if begin in line:
            if start is not None:
                raise ValueError(f"line {number + 1}: '{begin}' inside a region opened on "
                                 f"line {start + 1} (regions cannot nest)")
            start = number
        elif end in line:
            if start is None:
                raise ValueError(f"line {number + 1}: '{end}' without a '{begin}' before it")
            regions.append((start, number))
            start = None
    if start is not None:
        raise ValueError(f"line {start + 1}: '{begin}' is never closed by '{end}'")
    return regions


def clear_solutions(source: str, cell_type: str = "code") -> tuple[str, bool]:
    """Replace each solution region by the stub, indented like its BEGIN line.

    Returns the new source and whether a region was found (as nbgrader's ClearSolutions).

    >>> src = "def f():\\n    ### BEGIN SOLUTION\\n    return 1\\n    ### END SOLUTION"
    >>> print(clear_solutions(src)[0])
    def f():
        # YOUR CODE HERE
        raise NotImplementedError()
    """
    regions = marker_regions(source, BEGIN_SOLUTION, END_SOLUTION)
    stub = (CODE_STUB if cell_type == "code" else TEXT_STUB).split("\n")
    lines = source.split("\n")
    out: list[str] = []
    inside = False
    starts = {start for start, _ in regions}
    ends = {end for _, end in regions}
    for number, line in enumerate(lines):
        if number in starts:
            indent = re.match(r"\s*", line).group(0)
            out += [indent + stub_line for stub_line in stub]
            inside = True
        elif number in ends:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out), bool(regions)


def remove_hidden_tests(source: str) -> tuple[str, bool]:
    """Drop each hidden-test region, markers included (as nbgrader's ClearHiddenTests).

    >>> remove_hidden_tests("assert a\\n### BEGIN HIDDEN TESTS\\nassert b\\n### END HIDDEN TESTS")
    ('assert a', True)
    """
    regions = marker_regions(source, BEGIN_HIDDEN, END_HIDDEN)
    hidden = {n for start, end in regions for n in range(start, end + 1)}
    kept = [line for n, line in enumerate(source.split("\n")) if n not in hidden]
    return "\n".join(kept), bool(regions)


def compute_checksum(cell: Mapping[str, Any]) -> str:
    """nbgrader's ``utils.compute_checksum``: MD5 of source, type, flags, id and points.

    >>> cell = {"cell_type": "code", "source": "x = 1", "metadata": {"nbgrader": {
    ...     "grade": False, "solution": True, "locked": False, "grade_id": "q1"}}}
    >>> len(compute_checksum(cell))
    32
    """
    meta = nbgrader_meta(cell)
    digest = hashlib.md5()  # nbgrader's choice: a fingerprint, not security
    for part in (cell["source"], cell["cell_type"], str(meta.get("grade", False)),
                 str(meta.get("solution", False)), str(is_locked(cell)), meta["grade_id"]):
        digest.update(str(part).encode("utf-8"))
    if is_grade(cell):
        digest.update(str(float(meta["points"])).encode("utf-8"))
    return digest.hexdigest()


def lock_metadata(cell: Mapping[str, Any]) -> dict[str, bool]:
    """The ``deletable`` / ``editable`` flags nbgrader's LockCells gives a student's cell.

    >>> lock_metadata({"metadata": {"nbgrader": {"grade": True, "solution": False}}})
    {'deletable': False, 'editable': False}
    """
    if is_solution(cell):
        return {"deletable": False}
    if is_grade(cell) or is_locked(cell):
        return {"deletable": False, "editable": False}
    return {}


def metadata_problems(cells: list[Mapping[str, Any]]) -> list[str]:
    """Every way ``cells`` break nbgrader's schema-3 rules (an empty list when none).

    Checks: required keys and their types, no unknown keys, schema_version 3, a unique
    non-empty ``grade_id`` matching ``^[a-zA-Z0-9_\\-]*$`` on graded/solution/locked cells,
    non-negative ``points`` on every grade cell, markdown grade cells being solutions too,
    task cells being markdown.

    >>> metadata_problems([{"cell_type": "code", "source": "", "metadata": {"nbgrader": {
    ...     "schema_version": 3, "grade": True, "solution": False, "locked": True,
    ...     "grade_id": "q1_test"}}}])
    ["cell 0 (grade_id 'q1_test'): a grade cell needs 'points'"]
    """
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, cell in enumerate(cells):
        if "nbgrader" not in cell.get("metadata", {}):
            continue
        meta = cell["metadata"]["nbgrader"]
        where = f"cell {index} (grade_id {meta.get('grade_id', '')!r})" if isinstance(
            meta, Mapping) else f"cell {index}"
        if not isinstance(meta, Mapping):
            problems.append(f"{where}: metadata.nbgrader must be a dict, got {meta!r}")
            continue
        problems += [f"{where}: {p}" for p in _cell_problems(cell, meta)]
        gid = meta.get("grade_id")
        if (meta.get("grade") or meta.get("solution") or meta.get("locked")) and gid:
            if gid in seen:
                problems.append(f"{where}: grade_id duplicates the one of cell {seen[gid]}")
            seen.setdefault(gid, index)
    return problems


def _cell_problems(cell: Mapping[str, Any], meta: Mapping[str, Any]) -> list[str]:
    problems = [f"unknown key {key!r} under metadata.nbgrader (our own settings belong "
                "under metadata.course_utils)" for key in sorted(set(meta) - NBGRADER_KEYS)]
    problems += [f"missing required key {key!r}" for key in _REQUIRED_KEYS if key not in meta]
    if meta.get("schema_version", 3) != 3:
        problems.append(f"schema_version is {meta.get('schema_version')!r}, expected 3")
    for key in ("grade", "locked", "solution", "task"):
        if key in meta and not isinstance(meta[key], bool):
            problems.append(f"{key!r} must be true or false, got {meta[key]!r}")
    flagged = meta.get("grade") or meta.get("solution") or meta.get("locked")
    gid = meta.get("grade_id")
    if flagged and not gid:
        problems.append("a graded, solution or locked cell needs a non-empty grade_id")
    if gid is not None and (not isinstance(gid, str) or not GRADE_ID_PATTERN.match(gid)):
        problems.append(f"grade_id {gid!r} must match {GRADE_ID_PATTERN.pattern}")
    if meta.get("grade"):
        points = meta.get("points")
        if points is None:
            problems.append("a grade cell needs 'points'")
        elif isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
            problems.append(f"points must be a number >= 0, got {points!r}")
    if meta.get("task"):
        if cell.get("cell_type") != "markdown":
            problems.append("a task cell must be markdown")
    elif cell.get("cell_type") == "markdown" and bool(meta.get("grade")) != bool(
            meta.get("solution")):
        problems.append("a markdown cell that is graded must also be a solution cell "
                        "(and the reverse)")
    return problems
