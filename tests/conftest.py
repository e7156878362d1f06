"""Shared pytest set-up.

Where a test goes (the folders mirror the code; see CONTRIBUTING.md):

- ``learner/``: one ``test_<module>.py`` per learner module of ``course_utils`` (fast);
- ``grading/``: one file per module of ``course_utils/grading`` (kernels make some slow);
- ``content/``: the lessons, exercises, mutants and pins as committed;
- ``integration/``: browser, website, hub, deploy, nbgrader, regeneration, bench. Every test
  in it is marked ``slow`` here, so ``make check`` (``-m "not slow"``) skips the folder.

nbval compares the saved and the fresh outputs of cells tagged ``nbval-check-output``. Our
policy is that stderr is never compared: warnings and progress bars go there and differ
between machines. nbval has no option for that, so we drop stderr streams from both sides
before its comparison.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from nbval.plugin import IPyNbCell

ROOT = Path(__file__).resolve().parents[1]

_compare_outputs = IPyNbCell.compare_outputs


def _without_stderr(outputs: list) -> list:
    return [
        o for o in outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
    ]


def _compare_outputs_without_stderr(self, test, ref, skip_compare=None):
    return _compare_outputs(self, _without_stderr(test), _without_stderr(ref), skip_compare)


IPyNbCell.compare_outputs = _compare_outputs_without_stderr


INTEGRATION = ROOT / "tests" / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the whole integration folder slow, so no test there can forget the marker."""
    for item in items:
        if INTEGRATION in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository's top folder."""
    return ROOT
