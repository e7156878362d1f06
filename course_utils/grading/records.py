"""The grader's result records, shared by ``grade``, ``check`` and ``report``.

Notebook statuses: ``graded``, ``tampered`` (graded, and learner code was caught changing
how cells run or how errors are reported), ``unreadable`` (not a valid notebook, or not a
regular file), ``unknown_notebook`` (a file name that matches no exercise), ``missing``
(no notebook from that learner) and ``grader_error`` (the grader failed; the reason is in
the notes). Question statuses: ``pass``, ``fail``, ``error``, ``timeout``, ``kernel_died``,
``missing`` and ``tampered``.

>>> NotebookResult("ada", "01.ipynb", 0.0, 11.0, "missing").to_json()["status"]
'missing'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["NOTEBOOK_STATUSES", "TEST_STATUSES", "TestResult", "CellOutcome", "NotebookResult"]

NOTEBOOK_STATUSES = ("graded", "tampered", "unreadable", "unknown_notebook", "missing",
                     "grader_error")
TEST_STATUSES = ("pass", "fail", "error", "timeout", "kernel_died", "missing", "tampered")


@dataclass
class TestResult:
    """One graded question (``status`` is one of ``TEST_STATUSES``)."""

    grade_id: str
    points: float
    max_points: float
    status: str
    message: str
    seconds: float
    trusted: str = ""  # the verdict outside the kernel: pass, fail, error, or "" (not run)


@dataclass
class CellOutcome:
    """How one code cell ran (``index`` as in the solution; -1 for a cell the learner added)."""

    index: int
    grade_id: str
    status: str
    ename: str


@dataclass
class NotebookResult:
    """One learner x notebook (``status`` is one of ``NOTEBOOK_STATUSES``)."""

    student_id: str
    notebook: str
    score: float
    max_score: float
    status: str
    tests: list[TestResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict, repr=False)
    cells: list[CellOutcome] = field(default_factory=list, repr=False)
    # For the instructor only (the JSON record, never the feedback page): what the audit
    # found changed, in the kernel's own words, which learner code may have chosen.
    tamper_details: list[str] = field(default_factory=list, repr=False)

    def to_json(self) -> dict:
        """The documented JSON record (plus ``notes`` and ``tamper_details``)."""
        record = {k: getattr(self, k) for k in ("student_id", "notebook", "score",
                                                 "max_score", "status")}
        record["tests"] = [asdict(t) for t in self.tests]
        record["notes"] = list(self.notes)
        record["tamper_details"] = list(self.tamper_details)
        return record
