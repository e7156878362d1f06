"""Kept for old imports: the benchmark moved to :mod:`course_utils.devtools.bench`.

Its names are loaded from there only when asked for, so nothing at this level imports the
maintainer tools. ``bench.NotebookResult`` and ``bench.format_table`` are now ``BenchResult``
and ``format_bench_table`` (the grader has a ``NotebookResult`` and a ``format_table`` of its
own); the old names still work.
"""

from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:  # kept for old imports
    if name.startswith("__"):  # what tools probe for (__wrapped__, __test__...): not the bench's
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module("course_utils.devtools.bench"), name)
