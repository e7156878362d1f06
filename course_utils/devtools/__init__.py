"""Tools for the course's maintainers; nothing a learner or the grader imports.

- ``regenerate``: re-execute and save notebooks (``make notebooks``);
- ``bench``: time and measure every notebook and the grader (``make bench``);
- ``mutants``: grade the committed wrong answers with the real grader (the mutation score);
- ``throughput``: the grading figure of ``make bench``.

Nothing is imported here, so ``import course_utils.devtools`` is cheap.
"""

from __future__ import annotations

__all__: list[str] = []
