"""Where the course lives on disk, and the name of its Jupyter kernel: one home for both.

Learner modules (``doctor``), the grader and the maintainer tools all read these; the
Makefile's ``KERNEL`` and ``postBuild`` name the same kernel (a test checks they agree).

>>> KERNEL_NAME
'sizing-nn'
>>> (ROOT / "course_utils" / "_paths.py").is_file()
True
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ROOT", "SOLUTIONS", "EXERCISES", "NOTEBOOKS", "KERNEL_NAME", "KERNEL_DISPLAY", "KERNELSPEC"]

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"
NOTEBOOKS = ROOT / "notebooks"

KERNEL_NAME = "sizing-nn"
KERNEL_DISPLAY = "Python 3 (sizing-nn course)"
KERNELSPEC = {"name": KERNEL_NAME, "display_name": KERNEL_DISPLAY, "language": "python"}
