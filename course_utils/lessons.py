"""The course's map: number, title and estimated time of every lesson, read from the notebooks.

Lesson 00 prints it; ``tests/integration/test_regenerate.py`` checks that every lesson states
its time. Reading a notebook needs only ``nbformat`` (no kernel, no torch).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

__all__ = ["LessonInfo", "lesson_map"]


@dataclass(frozen=True)
class LessonInfo:
    """One lesson: ``number`` ("03"), ``title``, estimated ``minutes`` (None: not stated), file name."""

    number: str
    title: str
    minutes: int | None
    file: str


def lesson_map(folder: str | Path = ".") -> list[LessonInfo]:
    """Number, title and estimated minutes of every lesson in ``folder``, read from each
    notebook's first cell (``# NN · Title`` and ``Estimated time: N minutes``).

    >>> lesson_map("/nonexistent")
    []
    """
    lessons = []
    for path in sorted(Path(folder).glob("[0-9][0-9]_*.ipynb")):
        first = nbformat.read(path, as_version=4).cells[0].source
        title = re.search(r"^#\s*\d+\s*[·:.-]\s*(.+)$", first, re.MULTILINE)
        minutes = re.search(r"Estimated time\**:?\**\s*(?:about\s*)?(\d+)", first, re.IGNORECASE)
        lessons.append(LessonInfo(
            number=path.name[:2], title=title.group(1).strip() if title else path.stem[3:],
            minutes=int(minutes.group(1)) if minutes else None, file=path.name,
        ))
    return lessons
