"""Exercises, solutions and the autograder, compatible with nbgrader.

- ``notebook_format``: markers, nbgrader schema-3 metadata, stubs and checksums (pure);
- ``build``: ``solutions/`` -> ``exercises/`` (``python -m course_utils build``);
- ``kernel``: one course kernel with per-cell timeouts, restarts and a memory limit;
- ``grade``: grade submissions on the solutions' skeleton (``python -m course_utils grade``);
- ``check``: grade one's own notebook and print a table (``python -m course_utils check``);
- ``report``: the gradebook (CSV), per-notebook JSON and HTML feedback.

Nothing is imported here, so ``import course_utils.grading`` is cheap.
"""

from __future__ import annotations

__all__: list[str] = []
