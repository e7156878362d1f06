"""The course website (``make book``) as a reader meets it: built, served, opened in Chromium.

Two parts:

- checks of ``book/conf.py``'s additions to the lesson pages (the run-locally note, the
  exercise link, the widget notes, progress bars in their final state), run on the
  committed notebooks in the course's own environment; of the manual's pages (``book/**/*.md``,
  staged with their measured tables rendered from ``book/measured/*.json``, which the tables
  must match); and of every relative link in ``README.md``, ``CONTRIBUTING.md`` and the pages
  (the file must exist, and an ``#anchor`` must name one of its headings);
- ``make book`` itself (it creates ``.venv-book`` on first use, which needs the package
  registry once), then the built site served on a loopback port: the home page lists every
  lesson in order; every local link, image, script and stylesheet resolves, anchors included;
  each lesson page loads in headless Chromium with its figures drawn (``naturalWidth > 0``),
  its notes and its exercise link, without a JavaScript error and without a single request
  leaving the machine; so does each page of the manual, whose previous/next links stay in the
  manual; the search box finds "numel". Screenshots go to ``test-output/book/``.

Chromium is Debian's ``/usr/bin/chromium`` (never a downloaded browser); where it is missing
the browser checks are skipped with the command that installs it. ``COURSE_SKIP_BOOK=1``
skips the build explicitly (e.g. offline before ``.venv-book`` exists); the tests then show
as skipped, never as passed.
"""

from __future__ import annotations

import doctest
import functools
import hashlib
import html.parser
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import nbformat
import pytest
from filelock import FileLock

from tests.content.test_environment import _norm, requirement_pins
from tests.integration.browser_support import (
    ProcessWatch,
    chromium_missing_reason,
    describe,
    kill_all,
    open_chromium,
)

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "test-output" / "book"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
IMAGE_MIMES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
MISSING_CHROMIUM = chromium_missing_reason()
PAGE_S = 30  # one page to load on a busy machine


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # book/build.py imports book/measurements.py by its name
    spec.loader.exec_module(module)
    return module


conf = _load("book_conf", ROOT / "book" / "conf.py")
measurements = _load("measurements", ROOT / "book" / "measurements.py")
build = _load("book_build", ROOT / "book" / "build.py")
LESSONS = build.lessons()
PAGES = build.pages()  # book/**/*.md
MANUAL = [p for p in PAGES if p.name != "index.md" or p.parent != ROOT / "book"]


def widget_cells(notebook: dict) -> list[int]:
    """Indices of the code cells with at least one widget output."""
    return [i for i, cell in enumerate(notebook["cells"])
            if any(WIDGET_VIEW in o.get("data", {}) for o in cell.get("outputs", []))]


def image_outputs(notebook: dict) -> int:
    """How many figures the committed notebook holds."""
    return sum(any(m in o.get("data", {}) for m in IMAGE_MIMES)
               for cell in notebook["cells"] for o in cell.get("outputs", []))


def page_name(page: Path) -> str:
    """A page of book/ as the site names it, without the suffix: ``instructors/grading``."""
    return page.relative_to(ROOT / "book").with_suffix("").as_posix()


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


# --- book/conf.py and book/build.py, without building anything ------------------------------

def test_conf_examples_run() -> None:
    result = doctest.testmod(conf, verbose=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0, result


def test_lessons_are_the_numbered_notebooks_in_order(tmp_path: Path) -> None:
    for name in ["10_later.ipynb", "02_b.ipynb", "00_start.ipynb", "Untitled.ipynb",
                 "scratch_02.ipynb", "02_b-checkpoint.ipynb"]:
        (tmp_path / name).write_text("{}")
    assert [p.name for p in build.lessons(tmp_path)] == ["00_start.ipynb", "02_b.ipynb",
                                                         "10_later.ipynb"]
    assert LESSONS and LESSONS[0].name == "00_start_here.ipynb", LESSONS


def test_index_lists_the_lessons_by_glob() -> None:
    """The table of contents is made from notebooks/ at build time: nothing to add by hand."""
    index = (ROOT / "book" / "index.md").read_text()
    assert re.search(r"```\{toctree\}[^`]*:glob:[^`]*\nnotebooks/\*\n```", index), index


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_lesson_page_adds_notes_and_keeps_every_cell(lesson: Path) -> None:
    committed = read(lesson)
    page = conf.lesson_page(read(lesson), lesson.name)
    original_ids = [c.get("id") for c in committed["cells"]]
    assert [c.get("id") for c in page["cells"] if not str(c.get("id")).startswith("book-")] \
        == original_ids, "the page must show every committed cell, in order"
    assert "widgets" not in page["metadata"], "the widget state would load widget JavaScript"
    nbformat.validate(nbformat.from_dict(page))

    note = "".join(page["cells"][1]["source"])
    assert page["cells"][1]["id"] == "book-run-locally"
    assert "`make lab`" in note and "`make test`" in note, note
    exercise = ROOT / "exercises" / lesson.name
    link = f'href="../exercises/{lesson.name}" download'
    assert (link in note) == exercise.is_file(), (
        f"{lesson.name}: the note must link to its exercise exactly when {exercise} exists:\n{note}")

    widgets = widget_cells(committed)
    for shift, index in enumerate(widgets):
        after = page["cells"][index + 2 + shift]  # +1 for the run-locally note, +1 for "after"
        assert after["id"] == f"book-widget-{index}", after
        assert "make lab" in after["source"] and lesson.name in after["source"], after["source"]


def test_progress_bars_show_their_final_state() -> None:
    """Each saved tqdm.auto bar is shown as its last text, e.g. ``desc: 100%|██████████| 20/20``."""
    bars = 0
    for lesson in LESSONS:
        committed = read(lesson)
        state = committed["metadata"].get("widgets", {}).get(conf.WIDGET_STATE, {}).get("state", {})
        page = conf.lesson_page(read(lesson), lesson.name)
        for cell in page["cells"]:
            for output in cell.get("outputs", []):
                view = output.get("data", {}).get(WIDGET_VIEW)
                if view is None or conf.progress_text(view["model_id"], state) is None:
                    continue
                bars += 1
                box = state[view["model_id"]]["state"]["children"]
                progress = state[box[1].removeprefix("IPY_MODEL_")]["state"]
                percent = round(100 * progress["value"] / progress["max"])
                shown = output["data"]["text/plain"]
                assert re.search(rf"\b{percent}%\|[█ ]{{10}}\|", shown), (lesson.name, shown)
                assert "&lt;" not in shown and "\u2007" not in shown, shown
    if bars == 0:
        pytest.skip("no lesson has a saved tqdm.auto progress bar")


# --- the manual's pages, their measured tables and every relative link -----------------------

def test_measurements_examples_run() -> None:
    result = doctest.testmod(measurements, verbose=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0, result


def test_pages_include_subfolders_and_render_their_tables(tmp_path: Path) -> None:
    """Every ``book/**/*.md`` is staged at its own path, with no ``{measured}`` block left."""
    names = {p.relative_to(ROOT / "book").as_posix() for p in PAGES}
    assert {"index.md", "benchmarks.md", "workshop.md", "instructors/index.md",
            "instructors/grading.md", "instructors/threat-model.md"} <= names, names
    build.stage(tmp_path / "src")
    for page in PAGES:
        staged = (tmp_path / "src" / page.relative_to(ROOT / "book")).read_text(encoding="utf-8")
        assert "{measured}" not in staged, f"{page}: a measured table was not rendered"
        if "{measured}" in page.read_text(encoding="utf-8"):
            assert "\n|" in staged, f"{page}: its measured blocks rendered no table"


def test_index_links_every_page_of_the_manual() -> None:
    index = (ROOT / "book" / "index.md").read_text()
    entries = set(re.findall(r"^([a-z][\w/-]*)$", index, re.MULTILINE))
    missing = {p.relative_to(ROOT / "book").with_suffix("").as_posix() for p in MANUAL} - entries
    assert not missing, f"pages of book/ missing from the tables of contents of book/index.md: {missing}"


def _table_rows(markdown: str, first_cell: str) -> list[list[str]]:
    """The cells of every Markdown table row whose first cell is ``first_cell``."""
    rows = []
    for line in markdown.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if cells and cells[0] == first_cell:
            rows.append(cells)
    return rows


def test_benchmarks_page_table_matches_the_json() -> None:
    data = measurements.load()
    page = measurements.render((ROOT / "book" / "benchmarks.md").read_text(), data)
    bench = data["bench.json"]
    for row in bench["notebooks"]["rows"]:
        [cells] = _table_rows(page, row["notebook"])
        assert float(cells[1]) == round(row["wall_s_median"], 1), (cells, row)
        assert float(cells[2]) == round(row["peak_rss_mb"]), (cells, row)
        slow = row["slowest_cell"]
        assert cells[3].startswith(f"[{slow['execution_count']}] "), (cells, row)
        assert float(cells[4]) == round(slow["seconds"], 1), (cells, row)
        assert cells[5] == f"{row['budget']['seconds']:g} s, {row['budget']['memory_mb']:g} MB"
        assert cells[6] == ("; ".join(row["problems"]) or "ok")
    total = sum(r["wall_s_median"] for r in bench["notebooks"]["rows"])
    [cells] = _table_rows(page, f"**total ({len(bench['notebooks']['rows'])} notebooks)**")
    assert cells[1] == f"**{total:.1f}**", cells
    for row in bench["inspection"]["rows"]:
        [cells] = _table_rows(page, row["case"])
        assert cells[-1] == (row["result"] if row["status"] == "ok" else row["status"]), cells
        if row["status"] == "ok":
            assert float(cells[2]) == round(row["call_s"], 3) and float(cells[3]) == round(row["peak_rss_mb"])
    graded = [r for r in page.splitlines() if r.startswith(("| sandboxed |", "| unsandboxed |"))]
    assert [float(r.split("|")[4]) for r in graded] == [r["seconds"] for r in bench["grading"]["rows"]]
    measured = bench["notebooks"]["measured"]
    assert f"*Measured on {measured['date']} at commit `{measured['commit']}`" in page


def test_workshop_and_mutation_tables_match_the_json() -> None:
    data = measurements.load()
    page = measurements.render((ROOT / "book" / "workshop.md").read_text(), data)
    load = data["workshop-load.json"]
    for row in load["rows"]:
        [cells] = _table_rows(page, str(row["learners"]))
        assert [int(cells[1]), int(cells[2]), int(cells[3])] == [row["finished"], row["cells"],
                                                                 row["failed_cells"]], cells
        assert float(cells[5]) == round(row["cell_p95_s"], 2), cells
        assert float(cells[8]) == round(row["rss_per_learner_mb"]), cells
    assert load["rule"].split(": ", 1)[1].split(" (")[0] in page.replace("plan ", ""), load["rule"]
    for line in load["rule"].splitlines()[1:]:  # the measurements behind the rule
        assert f"- {line.strip()}" in page, line
    page = measurements.render((ROOT / "book" / "instructors" / "mutation-score.md").read_text(), data)
    for row in data["bench.json"]["mutants"]["rows"]:
        [cells] = _table_rows(page, row["notebook"].removesuffix(".ipynb"))
        assert cells[1:] == [f"{row['caught']}/{row['total']}",
                             f"{row['solution_score']:g}/{row['max_score']:g}"], cells


def test_no_measured_figure_is_typed_into_prose() -> None:
    """A measured number lives in book/measured/*.json only: no source repeats a row of its tables."""
    data = measurements.load()
    rendered = "\n".join(measurements.RENDERERS[key](data[key[0]]) for key in measurements.RENDERERS)
    heads = ("| notebook |", "| helper", "| grader |", "| exercise |", "| learners |")
    rows = {line for line in rendered.splitlines()
            if line.startswith("| ") and "---" not in line and not line.startswith(heads)}
    seconds = {f"{r['seconds']:g} s" for r in data["bench.json"]["grading"]["rows"]}
    seconds.add(f"{data['bench.json']['mutants']['timing']['seconds']:g} s")
    for source in [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *PAGES]:
        text = source.read_text(encoding="utf-8")
        typed = {row for row in rows if row in text} | {s for s in seconds if re.search(rf"\b{s}\b", text)}
        assert not typed, f"{source.relative_to(ROOT)} types measured figures by hand: {sorted(typed)[:5]}"


def _outside_code_blocks(markdown: str) -> list[str]:
    """The lines of a Markdown text that are not inside a fenced code block."""
    kept, fence = [], None
    for line in markdown.splitlines():
        marker = re.match(r"^\s*(```|~~~)", line)
        if marker and (fence is None or marker[1] == fence):
            fence = None if fence else marker[1]
        elif fence is None:
            kept.append(line)
    return kept


def _prose(markdown: str) -> str:
    """Markdown without code blocks and inline code, where a link is not a link."""
    return "\n".join(re.sub(r"`[^`]*`", "", line) for line in _outside_code_blocks(markdown))


def heading_anchors(markdown: str) -> set[str]:
    """The anchors of a page's headings, as GitHub and MyST (``myst_heading_anchors``) make them.

    >>> sorted(heading_anchors("# Grade it\\n## How many learners? (`make load`)\\n```\\n# no\\n```"))
    ['grade-it', 'how-many-learners-make-load']
    """
    anchors = set()
    for line in _outside_code_blocks(markdown):
        found = re.match(r"^#{1,6} (.+?)\s*#*$", line.replace("`", ""))
        if found:
            title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", found[1])
            anchors.add(re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-"))
    return anchors


def test_relative_links_resolve_in_readme_contributing_and_pages() -> None:
    """Every relative link names a file that exists (a page links only to pages of book/, which
    is all the site holds), and every ``#anchor`` names a heading of its target."""
    broken = []
    for source in [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *PAGES]:
        text = source.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", _prose(text)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue  # another host (https:, mailto:)
            path, _, anchor = target.partition("#")
            file = (source.parent / path).resolve() if path else source
            where = f"{source.relative_to(ROOT)}: ({target})"
            if not file.exists():
                broken.append(f"{where}: no such file")
            elif source in PAGES and (ROOT / "book") not in file.parents:
                broken.append(f"{where}: outside book/, so not on the website")
            elif anchor and file.suffix == ".md" and anchor not in heading_anchors(file.read_text()):
                broken.append(f"{where}: no heading with the anchor {anchor!r}")
    assert not broken, "broken relative links:\n" + "\n".join(broken)


def test_record_folds_a_bench_report_into_the_data(tmp_path: Path) -> None:
    shutil.copy2(ROOT / "book" / "measured" / "bench.json", tmp_path / "bench.json")
    before = json.loads((tmp_path / "bench.json").read_text())
    report = {"created": "2027-01-05T10:00:00+0000", "runs": 3,
              "machine": {"python": "3.11.2", "torch": "2.13.0", "cpus": 2, "load_average": [0.4, 0.5, 0.6]},
              "notebooks": before["notebooks"]["rows"][:1], "inspection": [], "mutants": [],
              "grading": {"notebooks": 40, "jobs": 2, "seconds": 28.0, "sandboxed": True,
                          "wrong_scores": [], "load_average": [0.4, 0.5, 0.6]}}
    (tmp_path / "report.json").write_text(json.dumps(report))
    assert measurements.record(tmp_path / "report.json", "abc1234", tmp_path) == tmp_path / "bench.json"
    after = json.loads((tmp_path / "bench.json").read_text())
    assert after["notebooks"]["rows"] == report["notebooks"]
    assert after["notebooks"]["measured"] | {"machine": None} == {
        "date": "2027-01-05", "commit": "abc1234", "machine": None, "load_average": 0.4, "runs": 3,
        "command": "make bench"}
    assert "load_average" not in after["notebooks"]["measured"]["machine"]
    assert after["inspection"] == before["inspection"] and after["mutants"] == before["mutants"]
    assert after["grading"]["rows"][:-1] == before["grading"]["rows"]
    newest = after["grading"]["rows"][-1]
    assert (newest["seconds"], newest["commit"], newest["grader"]) == (28.0, "abc1234", "sandboxed")
    text = measurements.render("```{measured} bench.json notebooks\n```", measurements.load(tmp_path))
    assert "at commit `abc1234`" in text and "load average 0.4" in text, text
    shutil.copy2(ROOT / "book" / "measured" / "workshop-load.json", tmp_path / "workshop-load.json")
    load = json.loads((tmp_path / "workshop-load.json").read_text())
    rule = "Sizing rule: 5 learners per core and 1.2 GB of memory per learner (plus 1 GB ...).\n  CPU: ..."
    (tmp_path / "load.json").write_text(json.dumps({"rows": load["rows"][:1], "rule": rule, "think_s": 5}))
    measurements.record(tmp_path / "load.json", "def5678", tmp_path)
    page = measurements.render("```{measured} workshop-load.json rule\n```\n```{measured} workshop-load.json "
                               "capacity\n```", measurements.load(tmp_path))
    assert "plan 5 learners per core and 1.2 GB" in page and "commit `def5678`" in page, page
    assert "Think time 5 s" in page and "earlier run" not in page, page
    # a report that records when and where it was measured (load_test.py since 2026-12-03)
    (tmp_path / "load.json").write_text(json.dumps({
        "created": "2026-12-01T10:00:00", "machine": {"cpus": 8, "memory_gb": 32, "python": "3.12"},
        "rows": load["rows"][:1], "rule": rule, "think_s": 5}))
    measurements.record(tmp_path / "load.json", "def5678", tmp_path)
    page = measurements.render("```{measured} workshop-load.json capacity\n```", measurements.load(tmp_path))
    assert "Measured on 2026-12-01" in page and "8 cores, 32 GB, Python 3.12" in page, page
    with pytest.raises(ValueError, match="neither"):
        (tmp_path / "other.json").write_text("{}")
        measurements.record(tmp_path / "other.json", "abc1234", tmp_path)


# --- make book, then the site ---------------------------------------------------------------

needs_build = pytest.mark.skipif(os.environ.get("COURSE_SKIP_BOOK") == "1",
                                 reason="COURSE_SKIP_BOOK=1: the course website is not built")
needs_chromium = pytest.mark.skipif(MISSING_CHROMIUM is not None, reason=MISSING_CHROMIUM or "")


@pytest.fixture(scope="module")
def site() -> Path:
    """``make book`` (creating .venv-book on first use), once per test run, under a lock."""
    if shutil.which("make") is None:
        pytest.skip("`make` is not installed: the course's commands need it")
    lock = Path(tempfile.gettempdir()) / f"course-book-{hashlib.sha1(bytes(ROOT)).hexdigest()}"
    with FileLock(f"{lock}.lock", timeout=900):
        start = time.monotonic()
        done = subprocess.run(["make", "--no-print-directory", "book"], cwd=ROOT,
                              capture_output=True, text=True, timeout=900)
        seconds = time.monotonic() - start
    assert done.returncode == 0, (
        f"make book failed (creating .venv-book needs the package registry once; set "
        f"COURSE_SKIP_BOOK=1 to skip):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    print(f"make book took {seconds:.1f} s (load average {os.getloadavg()[0]:.1f})")
    assert (SITE / "index.html").is_file(), done.stdout
    return SITE


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[str]:
    """The built site served as static files on a free loopback port, as any host would."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler,
                                                                   directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


class _Page(html.parser.HTMLParser):
    """The references (``href``/``src``), element ids and toctree links of one HTML page
    (``toctree``: all of them; ``toctrees``: one list per table of contents), and the cells of
    its tables' rows."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.ids: set[str] = set()
        self.toctree: list[str] = []
        self.toctrees: list[list[str]] = []
        self.rows: list[list[str]] = []
        self._in_toctree = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"])
        if self._in_toctree:
            self._in_toctree += tag == "div"
        elif tag == "div" and "toctree-wrapper" in (values.get("class") or ""):
            self._in_toctree = 1
            self.toctrees.append([])
        for name in ("href", "src"):
            if values.get(name) and tag in ("a", "link", "img", "script", "source"):
                self.refs.append(values[name])
                if tag == "a" and self._in_toctree:
                    self.toctree.append(values[name])
                    self.toctrees[-1].append(values[name])
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th") and self.rows:
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._in_toctree and tag == "div":
            self._in_toctree -= 1
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None


def parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


@needs_build
def test_book_environment_has_the_pinned_versions(site: Path) -> None:
    pins = requirement_pins(ROOT / "requirements-book.txt")
    assert {"sphinx", "myst-nb", "sphinx-book-theme"} <= set(pins), pins
    python = ROOT / ".venv-book" / "bin" / "python"
    listed = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m, json; print(json.dumps("
         "{d.metadata['Name']: d.version for d in m.distributions()}))"],
        capture_output=True, text=True, timeout=120, check=True).stdout
    installed = {_norm(k): v for k, v in json.loads(listed).items()}
    wrong = {n: (v, installed.get(n)) for n, v in pins.items() if installed.get(n) != v}
    assert not wrong, f".venv-book differs from requirements-book.txt (pinned, installed): {wrong}"
    assert "torch" not in installed, "the website's builder must not need the course's kernel"


@needs_build
def test_home_page_lists_every_lesson_in_order(server: str) -> None:
    status, body = fetch(server + "index.html")
    assert status == 200
    lessons, *manual = parse(body.decode()).toctrees
    links = [h.split("#")[0] for h in lessons]
    expected = [f"notebooks/{p.stem}.html" for p in LESSONS]
    assert list(dict.fromkeys(links)) == expected, (
        f"the home page's table of contents lists {links}; expected the lessons {expected}")
    listed = {h.split("#")[0] for toc in manual for h in toc}
    pages = {p.relative_to(ROOT / "book").with_suffix(".html").as_posix() for p in MANUAL}
    assert listed == pages, f"the manual's tables of contents list {sorted(listed)}; expected {sorted(pages)}"


@needs_build
def test_exercises_are_in_the_site_unchanged(site: Path) -> None:
    exercises = sorted((ROOT / "exercises").glob("*.ipynb"))
    assert exercises
    for exercise in exercises:
        copy = site / "exercises" / exercise.name
        assert copy.is_file() and copy.read_bytes() == exercise.read_bytes(), copy


@needs_build
def test_no_broken_internal_links(server: str) -> None:
    """Crawl every page reachable from the home page; every local href/src must answer 200,
    every ``#anchor`` must name an element of its page, and so must CSS ``url(...)``s."""
    pages: dict[str, _Page] = {}
    status_of: dict[str, int] = {}
    queue, broken = [server + "index.html"], []
    while queue:
        url = queue.pop()
        if url in pages:
            continue
        status, body = fetch(url)
        status_of[url] = status
        pages[url] = parse(body.decode("utf-8", errors="replace"))
        for ref in pages[url].refs:
            target = urllib.parse.urljoin(url, ref)
            if not target.startswith(server):
                continue  # another host: not part of this site
            path = target.split("#")[0]
            if path.endswith(".html"):
                queue.append(path)
            elif path not in status_of:
                status_of[path], content = fetch(path)
                if path.endswith(".css"):
                    for found in re.findall(r"url\(['\"]?([^'\")]+)", content.decode(errors="replace")):
                        if not found.startswith(("data:", "http:", "https:", "#")):
                            asset = urllib.parse.urljoin(path, found).split("#")[0].split("?")[0]
                            status_of.setdefault(asset, fetch(asset)[0])
                            if status_of[asset] != 200:
                                broken.append(f"{path}: url({found}) -> {status_of[asset]}")
            if status_of.get(path, 200) != 200:
                broken.append(f"{url}: {ref} -> HTTP {status_of[path]}")
    for url, page in pages.items():
        for ref in page.refs:
            target = urllib.parse.urljoin(url, ref)
            path, _, anchor = target.partition("#")
            if target.startswith(server) and anchor and path in pages \
                    and anchor not in pages[path].ids:
                broken.append(f"{url}: {ref} -> no element with id {anchor!r}")
    for url, status in status_of.items():
        if url.endswith(".html") and status != 200:
            broken.append(f"{url} -> HTTP {status}")
    assert not broken, "broken links in the course website:\n" + "\n".join(sorted(set(broken)))
    crawled = {u.removeprefix(server) for u in pages}
    missing = {f"notebooks/{p.stem}.html" for p in LESSONS} - crawled
    assert not missing, f"lesson pages not reachable from the home page: {missing}"
    missing = {p.relative_to(ROOT / "book").with_suffix(".html").as_posix() for p in PAGES} - crawled
    assert not missing, f"pages of book/ not reachable from the home page: {missing}"
    exercises = {f"exercises/{p.name}" for p in (ROOT / "exercises").glob("*.ipynb")}
    linked = {u.removeprefix(server) for u in status_of} & exercises
    assert linked == {e for e in exercises if (ROOT / "notebooks" / Path(e).name).is_file()}, (
        f"exercise downloads linked from the lessons: {sorted(linked)}")


@needs_build
def test_built_benchmarks_page_shows_the_json(server: str) -> None:
    status, body = fetch(server + "benchmarks.html")
    assert status == 200
    shown = {row[0]: row for row in parse(body.decode()).rows if row}
    bench = measurements.load()["bench.json"]
    for row in bench["notebooks"]["rows"]:
        cells = shown.get(row["notebook"])
        assert cells is not None, f"benchmarks.html has no row for {row['notebook']}"
        assert (float(cells[1]), float(cells[2])) == (round(row["wall_s_median"], 1),
                                                      round(row["peak_rss_mb"])), (cells, row)
    measured = bench["notebooks"]["measured"]
    assert f"Measured on {measured['date']} at commit" in body.decode()


# --- in Chromium ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless; afterwards none of its processes may survive."""
    from playwright.sync_api import sync_playwright

    watch = ProcessWatch()
    with sync_playwright() as driver, open_chromium(driver, watch) as chromium:
        yield chromium
    survivors = watch.survivors()
    kill_all(survivors)
    assert not survivors, f"processes left behind by Chromium (now killed):\n{describe(survivors)}"


class Visit:
    """One page in a fresh browser context that records JavaScript errors and refuses (and
    records) every request that would leave the machine."""

    def __init__(self, browser: Any, server: str) -> None:
        self.context = browser.new_context(viewport={"width": 1300, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.context.route("**/*", self._route)
        self.server = server

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(self.server) or url.startswith(("data:", "blob:", "about:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def open(self, path: str) -> Any:
        response = self.page.goto(self.server + path, wait_until="load", timeout=PAGE_S * 1000)
        assert response is not None and response.status == 200, (path, response and response.status)
        return response

    def check_clean(self, what: str) -> None:
        assert not self.outside, f"{what} asked another host for {self.outside}"
        assert not self.errors, f"{what} raised JavaScript errors: {self.errors}"

    def shot(self, name: str, full_page: bool = False) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page, timeout=15_000)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser: Any, server: str) -> Iterator[Visit]:
    v = Visit(browser, server)
    try:
        yield v
    finally:
        v.close()


IMAGES_JS = """() => [...document.querySelectorAll('main img')].map(img => ({
  src: img.getAttribute('src'), loaded: img.complete && img.naturalWidth > 0,
  output: !!img.closest('.cell_output')}))"""


@needs_build
@needs_chromium
@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_lesson_page_in_chromium(visit: Visit, lesson: Path) -> None:
    committed = read(lesson)
    path = f"notebooks/{lesson.stem}.html"
    visit.open(path)
    page = visit.page
    title = page.locator("main h1").first.inner_text()
    first_line = "".join(committed["cells"][0]["source"]).splitlines()[0].lstrip("# ")
    assert title.replace("¶", "").strip() == re.sub(r"`", "", first_line).strip(), (title, first_line)

    position = LESSONS.index(lesson)
    expected_next = LESSONS[position + 1].stem + ".html" if position + 1 < len(LESSONS) else None
    following = page.locator("a.right-next")
    assert (following.get_attribute("href") if following.count() else None) == expected_next, (
        f"{path}: the 'next' link should lead to {expected_next}")

    images = page.evaluate(IMAGES_JS)
    broken = [i["src"] for i in images if not i["loaded"]]
    assert not broken, f"{path}: images that did not load: {broken}"
    figures = sum(i["output"] for i in images)
    assert figures == image_outputs(committed), (
        f"{path} shows {figures} figures in its outputs; the committed notebook has "
        f"{image_outputs(committed)}")

    note = page.locator(".admonition.tip", has_text="Run this lesson on your own machine")
    assert note.count() == 1
    text = note.inner_text()
    assert "make lab" in text and "make test" in text, text
    exercise = note.locator("a.book-exercise")
    if (ROOT / "exercises" / lesson.name).is_file():
        assert exercise.get_attribute("href") == f"../exercises/{lesson.name}"
        assert exercise.get_attribute("download") is not None
    else:
        assert exercise.count() == 0

    widget_notes = page.locator(".admonition.note", has_text="To use it live, run make lab")
    assert widget_notes.count() == len(widget_cells(committed)), (
        f"{path}: {widget_notes.count()} widget notes for {len(widget_cells(committed))} "
        "cells with widgets")
    assert page.locator("script[type*='widget']").count() == 0

    maths = page.locator("main div.math").count()
    if maths:  # MathJax, from the site itself, typesets every formula
        page.wait_for_function(f"() => document.querySelectorAll('main mjx-container').length >= {maths}",
                               timeout=PAGE_S * 1000)
    visit.check_clean(path)


@needs_build
@needs_chromium
@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("page", MANUAL, ids=lambda p: page_name(p))
def test_manual_page_in_chromium(visit: Visit, page: Path) -> None:
    """Each page of the manual loads clean, under its own title, with its measured tables, and
    its previous/next links stay in the manual."""
    path = page_name(page) + ".html"
    visit.open(path)
    title = visit.page.locator("main h1").first.inner_text().replace("¶", "").strip()
    first_line = page.read_text(encoding="utf-8").splitlines()[0].removeprefix("# ")
    assert title == first_line.replace("`", ""), (title, first_line)
    for link in ("a.left-prev", "a.right-next"):
        found = visit.page.locator(link)
        target = urllib.parse.urljoin(path, found.get_attribute("href") or "") if found.count() else ""
        assert not target.startswith("notebooks/"), f"{path}: {link} leads back into the lessons ({target})"
    blocks = page.read_text(encoding="utf-8").count("```{measured}")
    assert visit.page.locator("main table").count() >= blocks, f"{path}: a measured table is missing"
    visit.check_clean(path)


@needs_build
@needs_chromium
@pytest.mark.slow
@pytest.mark.browser
def test_search_box_finds_numel_and_screenshots(visit: Visit) -> None:
    visit.open("index.html")
    page = visit.page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    visit.shot("home")
    page.locator(".bd-sidebar .search-button-field").click()
    box = page.locator("#search-input")
    box.wait_for(state="visible", timeout=PAGE_S * 1000)
    box.fill("numel")
    box.press("Enter")
    page.wait_for_url(re.compile(r"search\.html\?q=numel"), timeout=PAGE_S * 1000)
    results = page.locator("#search-results ul.search li")
    results.first.wait_for(timeout=PAGE_S * 1000)
    hits = [a.get_attribute("href") for a in results.locator("a").all()]
    assert any(h and h.startswith("notebooks/") for h in hits), hits
    visit.shot("search-numel")

    with_figures = [p for p in LESSONS if image_outputs(read(p))]
    assert with_figures, "no lesson has a figure to screenshot"
    lesson = with_figures[0]
    visit.open(f"notebooks/{lesson.stem}.html")
    page.locator("main .cell_output img").first.scroll_into_view_if_needed()
    shot = visit.shot(lesson.stem)
    assert shot.stat().st_size > 10_000, shot
    visit.check_clean("the home, search and lesson pages")
