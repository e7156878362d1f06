"""Shared pytest set-up.

nbval compares the saved and the fresh outputs of cells tagged ``nbval-check-output``.
The course's policy (../shared/COURSE.md) is that stderr is never compared: warnings and
progress bars go there and differ between machines. nbval has no option for that, so we
drop stderr streams from both sides before its comparison.
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


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository's top folder."""
    return ROOT
