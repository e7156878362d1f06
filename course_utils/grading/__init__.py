"""Exercises, solutions and the autograder, compatible with nbgrader.

- ``notebook_format``: markers, nbgrader schema-3 metadata, stubs and checksums (pure);
- ``build``: ``solutions/`` -> ``exercises/`` (``python -m course_utils build``);
- ``intake``: read a submitted notebook safely (no symlinks, regular files, capped, strict);
- ``sandbox``: the bubblewrap command line that isolates a grading kernel;
- ``launcher``: start the kernel under limits it cannot raise;
- ``kernel``: one grading kernel with per-cell timeouts and restarts;
- ``probe``: runs inside the kernel: a fingerprint of the hooks that decide a verdict;
- ``records``: the result records (statuses) shared by the modules below;
- ``grade``: grade submissions on the solutions' skeleton (``python -m course_utils grade``);
- ``check``: grade one's own notebook and print a table (``python -m course_utils check``);
- ``report``: the gradebook (CSV), per-notebook JSON and HTML feedback;
- ``throughput``: the grading figure of ``make bench``.

Nothing is imported here, so ``import course_utils.grading`` is cheap.
"""

from __future__ import annotations

__all__: list[str] = []
