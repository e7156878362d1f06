"""Kept for old imports: this module's contents moved by audience.

- :func:`~course_utils.lessons.lesson_map` and ``LessonInfo`` (lesson 00's map) are in
  :mod:`course_utils.lessons`;
- the regeneration tool (``source_hash``, ``execute_notebook``, ``regenerate``,
  ``notebook_paths``, ``CELL_TIMEOUT_S``, ``main``) is in
  :mod:`course_utils.devtools.regenerate`, loaded only when one of its names is asked for,
  so that a lesson importing ``lesson_map`` from here never loads the maintainer tools;
- ``KERNEL_NAME`` and ``KERNELSPEC`` are in ``course_utils._paths``.
"""

from __future__ import annotations

import importlib
from typing import Any

from course_utils._paths import KERNEL_NAME, KERNELSPEC  # kept for old imports
from course_utils.lessons import LessonInfo, lesson_map  # kept for old imports

_REGENERATE = ("CELL_TIMEOUT_S", "source_hash", "notebook_paths", "execute_notebook", "regenerate", "main")

__all__ = ["KERNEL_NAME", "KERNELSPEC", "LessonInfo", "lesson_map", *_REGENERATE]
_KEPT_FOR_OLD_IMPORTS = tuple(__all__)


def __getattr__(name: str) -> Any:  # kept for old imports
    if name in _REGENERATE:
        return getattr(importlib.import_module("course_utils.devtools.regenerate"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
