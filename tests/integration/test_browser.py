"""The course as a learner meets it: JupyterLab from ``.venv`` in headless Chromium.

For ``notebooks/00_start_here.ipynb``, the last lesson (09, real architectures) and every
lesson that calls ``param_explorer(``, the
test opens the notebook in a real JupyterLab, clears its saved outputs, runs all cells and
checks what a learner would see: the course's kernel, no error output, widgets rendered as
controls (a tqdm.auto bar in lesson 00), and a parameter explorer whose count follows its
sliders. Screenshots go to ``test-output/browser/``.

The server serves a copy of ``notebooks/`` (and ``exercises/``, ``solutions/``), so the
committed files are never touched, with throwaway Jupyter folders and autosave off.
Chromium is Debian's ``/usr/bin/chromium``; where it is missing the test is skipped with
the command that installs it (``make test`` installs it when run as root).
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from torch import nn

from course_utils.notebooks import KERNELSPEC
from tests.integration.browser_support import (
    BROKEN_WIDGETS_JS,
    CELLS_JS,
    KERNEL_IDLE_JS,
    KERNEL_INFO_JS,
    RUN_STATUS_JS,
    SCREENSHOTS,
    WIDGET_OUTPUTS_JS,
    LabServer,
    ProcessWatch,
    alive_among,
    chromium_missing_reason,
    describe,
    error_outputs,
    explain_failure,
    kill_all,
    launch_chromium,
    open_chromium,
    screenshot,
    start_lab,
    stop_lab,
)

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
START_HERE = NOTEBOOKS / "00_start_here.ipynb"
MISSING = chromium_missing_reason()
needs_chromium = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")

KERNEL_START_S = 90  # a cold kernel importing torch on a busy 2-core machine
RUN_ALL_S = 120  # each notebook's budget is 30 s; generous for a shared machine
WIDGET_S = 20  # a widget to render or a slider change to reach the page


def explorer_notebooks(folder: Path = NOTEBOOKS) -> list[Path]:
    """The lessons whose code calls ``param_explorer(``."""
    return [p for p in sorted(folder.glob("*.ipynb")) if "param_explorer(" in p.read_text()]


def browser_notebooks() -> list[Path]:
    """Lesson 00 and the last lesson always, then every lesson with the parameter explorer."""
    last = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))[-1]
    first = [START_HERE] if last == START_HERE else [START_HERE, last]
    return [*first, *(p for p in explorer_notebooks() if p not in first)]


def mlp_param_count(inputs: int, hidden_layers: int, width: int, outputs: int) -> int:
    """Parameters of the MLP the explorer describes, counted by torch itself.

    >>> mlp_param_count(8, 1, 4, 2)  # 4*(8+1) + 2*(4+1)
    46
    """
    widths = [inputs, *[width] * hidden_layers, outputs]
    layers: list[nn.Module] = []
    for a, b in zip(widths, widths[1:]):
        layers += [nn.Linear(a, b, device="meta"), nn.ReLU()]
    return sum(p.numel() for p in nn.Sequential(*layers[:-1]).parameters())


def slider_roles(labels: list[str]) -> dict[str, int]:
    """Which slider (by position) sets which size, from the sliders' descriptions.

    >>> slider_roles(["Inputs", "Hidden layers", "Hidden width", "Outputs"])
    {'inputs': 0, 'hidden_layers': 1, 'width': 2, 'outputs': 3}
    """
    patterns = {"inputs": r"\binput", "hidden_layers": r"layers|depth",
                "width": r"width", "outputs": r"\boutput"}
    roles = {}
    for role, pattern in patterns.items():
        hits = [i for i, label in enumerate(labels) if re.search(pattern, label, re.I)]
        if len(hits) != 1:
            raise AssertionError(
                f"cannot tell which param_explorer slider sets {role!r} from the labels "
                f"{labels}; tests/integration/test_browser.py expects one slider per size "
                "(inputs, hidden layers, hidden width, outputs)"
            )
        roles[role] = hits[0]
    return roles


# --- fixtures: one JupyterLab and one Chromium for the module, a fresh page per notebook ---

@pytest.fixture(scope="module")
def processes() -> Iterator[ProcessWatch]:
    """Every process the module starts; after teardown none of them may survive."""
    watch = ProcessWatch()
    yield watch
    survivors = watch.survivors()
    message = f"processes left behind by the browser test (now killed):\n{describe(survivors)}"
    kill_all(survivors)
    assert not survivors, message


@pytest.fixture(scope="module")
def lab(processes: ProcessWatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    work = tmp_path_factory.mktemp("jupyterlab")
    course = work / "course"
    for folder in ("notebooks", "exercises", "solutions"):  # lessons may point at the others
        if (ROOT / folder).is_dir():
            shutil.copytree(ROOT / folder, course / folder,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    server = start_lab(work, root=course, extra_env=processes.env)
    try:
        yield server
    finally:
        processes.snapshot()
        stop_lab(server)


@pytest.fixture(scope="module")
def playwright(processes: ProcessWatch) -> Iterator[Any]:
    """Playwright's driver (one per thread: its sync API owns an event loop)."""
    from playwright.sync_api import sync_playwright

    driver = sync_playwright().start()
    try:
        yield driver
    finally:
        processes.snapshot()
        driver.stop()


@pytest.fixture(scope="module")
def browser(playwright: Any, processes: ProcessWatch) -> Iterator[Any]:
    with open_chromium(playwright, processes) as chromium:
        yield chromium


@pytest.fixture
def page(browser: Any, lab: LabServer, processes: ProcessWatch) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield context.new_page()
    finally:
        processes.snapshot()  # kernels and renderers exist now
        context.close()
        lab.end_sessions()


# --- the learner's path through one notebook ------------------------------------------------

def open_and_run_all(page: Any, lab: LabServer, rel: str) -> list[dict]:
    """Open ``rel`` in JupyterLab, wait for its kernel, clear outputs, run all cells."""
    workspace = Path(rel).stem  # a fresh workspace: only this notebook is open
    page.goto(lab.url(f"lab/workspaces/{workspace}/tree/{rel}?reset&token={lab.token}"))
    page.wait_for_function(KERNEL_IDLE_JS, timeout=KERNEL_START_S * 1000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    counts = [c["count"] for c in page.evaluate(CELLS_JS)]
    assert all(c is None for c in counts), f"outputs not cleared before the run: {counts}"
    start = time.monotonic()
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    status = page.wait_for_function(RUN_STATUS_JS, timeout=RUN_ALL_S * 1000, polling=250)
    print(f"{rel}: Run All took {time.monotonic() - start:.1f} s in the browser")
    cells = page.evaluate(CELLS_JS)
    errors = error_outputs(cells)
    assert not errors, (
        f"{rel}: a cell ended with an error output in JupyterLab:\n" + "\n".join(errors)
    )
    assert status.json_value() == "done", f"{rel}: Run All ended with {status.json_value()!r}"
    return cells


def check_kernel(page: Any, lab: LabServer, rel: str) -> None:
    info = page.evaluate(KERNEL_INFO_JS)
    assert (info["name"], info["display"]) == (KERNELSPEC["name"], KERNELSPEC["display_name"]), (
        f"{rel} runs in kernel {info['name']!r} ({info['display']!r}); expected the course's "
        f"{KERNELSPEC['name']!r} ({KERNELSPEC['display_name']!r}). Run `make` to install it."
    )
    sessions = [s for s in lab.api("api/sessions") if s["path"] == rel]
    assert [s["kernel"]["name"] for s in sessions] == [KERNELSPEC["name"]], sessions
    toolbar = page.locator(".jp-NotebookPanel-toolbar").inner_text()
    assert KERNELSPEC["display_name"] in toolbar, f"toolbar shows {toolbar!r}"


def check_ran_in_order(cells: list[dict], rel: str) -> None:
    counts = [c["count"] for c in cells]
    assert all(counts) and counts == sorted(set(counts)), (
        f"{rel}: execution counts {counts}; Run All should run every code cell once, in order"
    )


def check_widgets_rendered(page: Any, rel: str) -> int:
    """Every widget output became real controls; returns how many there are."""
    expected = page.evaluate(WIDGET_OUTPUTS_JS)
    rendered = page.locator(".jp-OutputArea-output > .jupyter-widgets")
    deadline = time.monotonic() + WIDGET_S
    while rendered.count() < expected and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    broken = page.evaluate(BROKEN_WIDGETS_JS)
    assert not broken, (
        f"{rel}: widgets did not render: {broken} "
        "(is jupyterlab_widgets installed in .venv, matching ipywidgets?)"
    )
    assert rendered.count() == expected, (
        f"{rel}: {expected} widget outputs in the notebook but {rendered.count()} rendered "
        f"as controls after {WIDGET_S} s"
    )
    return expected


def check_progress_bar(page: Any, rel: str) -> None:
    bars = page.locator(".jp-OutputArea-output .widget-hprogress .progress-bar")
    assert bars.count() >= 1, (
        f"{rel}: no progress bar widget; lesson code should use `from tqdm.auto import tqdm`, "
        "which renders as a widget in JupyterLab (plain tqdm prints text to stderr)"
    )
    bars.first.scroll_into_view_if_needed()
    screenshot(page, f"{Path(rel).stem}-progress")


def read_explorer(explorer: Any) -> tuple[dict[str, int], int]:
    """The explorer's slider values by role and the total it displays."""
    sliders = explorer.locator(".widget-slider")
    labels = [sliders.nth(i).locator(".widget-label").inner_text()
              for i in range(sliders.count())]
    roles = slider_roles(labels)
    values = {role: int(sliders.nth(i).locator(".widget-readout").inner_text())
              for role, i in roles.items()}
    total = int(explorer.locator(".param-total").inner_text())
    return values, total


def move_slider(explorer: Any, label_pattern: str, steps: int) -> None:
    """Focus a slider's handle and press the arrow key, as a keyboard user would."""
    slider = explorer.locator(".widget-slider").filter(
        has=explorer.page.locator(".widget-label", has_text=re.compile(label_pattern, re.I))
    )
    handle = slider.locator(".noUi-handle")
    handle.focus()
    for _ in range(abs(steps)):
        handle.press("ArrowRight" if steps > 0 else "ArrowLeft")


def check_explorer_follows_sliders(page: Any, rel: str) -> None:
    explorer = page.locator(".jp-OutputArea-output", has=page.locator(".param-total")).first
    explorer.scroll_into_view_if_needed()
    values, total = read_explorer(explorer)
    assert total == mlp_param_count(**values), (
        f"{rel}: the explorer shows {total} parameters for {values}; "
        f"torch counts {mlp_param_count(**values)}"
    )
    move_slider(explorer, "width", +3)
    move_slider(explorer, "layers", +1 if values["hidden_layers"] < 3 else -1)
    deadline = time.monotonic() + WIDGET_S  # the kernel recomputes; the page follows
    while True:
        moved, total = read_explorer(explorer)
        expected = mlp_param_count(**moved)
        if (total == expected and moved != values) or time.monotonic() > deadline:
            break
        page.wait_for_timeout(200)
    assert moved["width"] == values["width"] + 3, f"{rel}: width slider {values} -> {moved}"
    assert moved["hidden_layers"] != values["hidden_layers"], f"{rel}: {values} -> {moved}"
    assert total == expected, (
        f"{rel}: after moving the sliders to {moved} the explorer shows {total} parameters; "
        f"torch counts {expected}"
    )
    screenshot(page, f"{Path(rel).stem}-explorer")


# --- the tests --------------------------------------------------------------------------------

def test_lessons_for_the_browser_exist() -> None:
    assert START_HERE.exists(), f"{START_HERE.relative_to(ROOT)} is missing"
    assert explorer_notebooks(), "no lesson in notebooks/ calls param_explorer( (expected 03)"


@needs_chromium
@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize(
    "path", browser_notebooks(), ids=[p.name for p in browser_notebooks()]
)
def test_notebook_runs_in_jupyterlab(path: Path, lab: LabServer, page: Any) -> None:
    assert path.exists(), f"{path.relative_to(ROOT)} is missing"
    rel = path.relative_to(ROOT).as_posix()
    for old in SCREENSHOTS.glob(f"{path.stem}*.png"):
        old.unlink()  # screenshots from an earlier run would mislead
    with explain_failure(page, path.stem, lab):
        cells = open_and_run_all(page, lab, rel)
        check_kernel(page, lab, rel)
        check_ran_in_order(cells, rel)
        check_widgets_rendered(page, rel)
        if path == START_HERE:
            check_progress_bar(page, rel)
        if "param_explorer(" in path.read_text():
            check_explorer_follows_sliders(page, rel)
    screenshot(page, path.stem)


@needs_chromium
@pytest.mark.browser
@pytest.mark.slow
def test_stopping_leaves_no_process_behind(playwright: Any, tmp_path: Path) -> None:
    """Start a server, a kernel and Chromium with a page, stop them as the fixtures do, and
    look for survivors by pid and start time. (The module's own processes, Playwright's
    driver included, are checked the same way when the module's fixtures end.)"""
    watch = ProcessWatch()
    server = start_lab(tmp_path, root=tmp_path, extra_env=watch.env)
    try:
        server.api("api/kernels", method="POST", body={"name": KERNELSPEC["name"]})
        chromium = launch_chromium(playwright, extra_env=watch.env)
        try:
            chromium.new_page().goto(server.url(f"lab?token={server.token}"))
            watch.snapshot()
        finally:
            chromium.close()
    finally:
        watch.snapshot()
        stop_lab(server)
    started = " ".join(" ".join(cmd) for cmd in watch.cmdlines.values())
    for part in ("jupyter-lab", "ipykernel_launcher", "chromium", "crashpad"):
        assert part in started, f"the test did not see {part} start: {watch.cmdlines}"
    survivors = watch.survivors()
    message = f"left behind (now killed):\n{describe(survivors)}"
    kill_all(survivors)
    assert not survivors, message
    mentioning = [p for p in psutil.process_iter(["cmdline"])
                  if str(tmp_path) in " ".join(p.info["cmdline"] or [])]
    assert not alive_among(mentioning), f"still running:\n{describe(mentioning)}"
