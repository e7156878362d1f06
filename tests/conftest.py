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

Under ``pytest -n N --dist loadscope`` (``make test``) a unit of work is what loadscope
makes of it (a module, a class, a notebook: their module fixtures and kernels are shared),
except in the modules of ``SPREAD``, whose tests share nothing costly and go one by one to
whichever worker is free. The units in ``LONGEST_FIRST`` start first, the others follow by
number of tests (loadscope's own order), so the run does not end on one worker still busy
with a long module while the other idles. (``xdist_group`` marks cannot do this: pytest 9.2
builds ``nodeid`` from ``_id``, so ``--dist loadgroup`` of xdist 3.8 no longer groups.)
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

#: Modules whose tests are independent and long: each test is a unit of work of its own.
SPREAD = ("tests/content/test_mutants.py",)
#: The longest units, longest first (measured with ``--durations``); the rest follow by size.
LONGEST_FIRST = (
    "tests/integration/test_nbgrader_compat.py",
    "tests/grading/test_grade.py",
    "tests/grading/test_adversarial.py",
    "tests/integration/test_browser.py",
    "tests/content/test_mutants.py",
    "notebooks/07_growing_networks.ipynb",
    "notebooks/08_choosing_depth_and_width.ipynb",
    "notebooks/04_shallow_vs_deep.ipynb",
    "tests/integration/test_hub.py",
    "tests/integration/test_book.py",
    "notebooks/05_wide_vs_narrow_convs.ipynb",
    "tests/grading/test_kernel.py",
    "notebooks/06_bottlenecks.ipynb",
    "tests/grading/test_shard.py",
)


def scope_of(nodeid: str) -> str:
    """The unit of work of a test: its own nodeid in ``SPREAD``, else loadscope's.

    >>> scope_of("notebooks/01_x.ipynb::Cell 3"), scope_of("tests/a.py::TestB::test_c[1]")
    ('notebooks/01_x.ipynb', 'tests/a.py::TestB')
    >>> scope_of("tests/content/test_mutants.py::test_m[01_x]")
    'tests/content/test_mutants.py::test_m[01_x]'
    """
    return nodeid if nodeid.split("::", 1)[0] in SPREAD else nodeid.rsplit("::", 1)[0]


def longest_first(nodeids: list[str]) -> list[str]:
    """The units of ``LONGEST_FIRST`` first, then the rest by number of tests; a unit's tests
    stay together and in order (a notebook's cells run in one kernel).

    >>> longest_first(["a.py::x", "b.py::y", "b.py::z", "tests/grading/test_grade.py::t"])
    ['tests/grading/test_grade.py::t', 'b.py::y', 'b.py::z', 'a.py::x']
    """
    units: dict[str, list[str]] = {}
    for nodeid in nodeids:
        units.setdefault(scope_of(nodeid), []).append(nodeid)

    def rank(unit: str) -> tuple[int, int]:
        path = unit.split("::", 1)[0]
        known = LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)
        return known, -len(units[unit])

    return [nodeid for unit in sorted(units, key=rank) for nodeid in units[unit]]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the whole integration folder slow, so no test there can forget the marker; in an
    xdist worker, put the longest units first (the scheduler keeps this order)."""
    for item in items:
        if INTEGRATION in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.slow)
    if hasattr(config, "workerinput"):  # every worker sorts alike, so their collections agree
        order = {nodeid: i for i, nodeid in enumerate(longest_first([i.nodeid for i in items]))}
        items.sort(key=lambda item: order[item.nodeid])


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``--dist loadscope`` with the units of ``scope_of``, in the workers' order."""
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class LongestFirstScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    config.option.loadscopereorder = False  # the workers already sent the longest first
    return LongestFirstScheduling(config, log)


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository's top folder."""
    return ROOT
