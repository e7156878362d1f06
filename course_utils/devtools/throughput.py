"""How fast the grader goes: N complete and N blank copies of exercise 01, graded in a batch.

``make bench`` reports this figure (issue 10's budget: 40 notebooks with ``--jobs 2`` in at
most 41.6 s on an idle 2-core machine, 1.3x the 32 s of the unsandboxed grader).

    python -c "from course_utils.devtools.throughput import grading_throughput as g; print(g(2))"
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from course_utils._paths import ROOT

__all__ = ["NOTEBOOK", "grading_throughput", "format_throughput"]

NOTEBOOK = "01_layers_of_a_model.ipynb"


def grading_throughput(per_kind: int = 20, jobs: int = 2, sandboxed: bool | None = None,
                       root: Path = ROOT) -> dict[str, Any]:
    """Grade ``per_kind`` solved and ``per_kind`` blank copies of exercise 01; time it."""
    from course_utils.grading import grade, sandbox

    use_sandbox = sandbox.available() if sandboxed is None else sandboxed
    with tempfile.TemporaryDirectory(prefix="course-throughput-") as tmp:
        submissions = Path(tmp) / "submissions"
        for kind, source in (("full", root / "solutions"), ("blank", root / "exercises")):
            data = (source / NOTEBOOK).read_bytes()
            for number in range(per_kind):
                folder = submissions / f"{kind}{number:02d}"
                folder.mkdir(parents=True)
                (folder / NOTEBOOK).write_bytes(data)
        start = time.perf_counter()
        results = grade.grade_submissions(submissions, Path(tmp) / "out",
                                          solutions=root / "solutions", jobs=jobs,
                                          sandboxed=use_sandbox)
        seconds = time.perf_counter() - start
    wrong = [r.student_id for r in results
             if r.score != (r.max_score if r.student_id.startswith("full") else 0.0)]
    return {"notebooks": len(results), "jobs": jobs, "seconds": round(seconds, 1),
            "sandboxed": use_sandbox, "wrong_scores": wrong,
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def format_throughput(row: dict[str, Any]) -> str:
    """One line for ``make bench``.

    >>> line = format_throughput({"notebooks": 40, "jobs": 2, "seconds": 30.0, "sandboxed": True,
    ...                           "wrong_scores": [], "load_average": [0.1, 0.2, 0.3]})
    >>> line.split(": ")[-1]
    '30.0 s (1.50 s per notebook per job); load average 0.1'
    """
    per = row["seconds"] * row["jobs"] / max(1, row["notebooks"])
    text = (f"grading: {row['notebooks']} notebooks of exercise 01 (half solved, half blank), "
            f"--jobs {row['jobs']}, {'sandboxed' if row['sandboxed'] else 'NOT sandboxed'}: "
            f"{row['seconds']:.1f} s ({per:.2f} s per notebook per job)")
    if row.get("load_average"):
        text += f"; load average {row['load_average'][0]:.1f}"
    if row["wrong_scores"]:
        text += f"; WRONG SCORES for {', '.join(row['wrong_scores'][:5])}"
    return text
