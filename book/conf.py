"""Sphinx configuration of the course website (``make book``; see book/build.py).

The pages are the committed lesson notebooks, rendered with MyST-NB without executing
anything. Three things are added at build time, never written back to the notebooks:

- under each lesson's title, a note on how to run it locally (``make lab``, ``make test``) with
  a link to its exercise notebook, which is copied into the site as a download;
- under each widget, the fallback the page shows and how to get the live widget; a
  ``tqdm.auto`` progress bar shows its final state, read from the widget state the notebook
  saved;
- MathJax served from the site itself (from the ``sphinx-mathjax-offline`` wheel), so no page
  loads anything from another host;
- previous/next links that stay inside their part of the site: the last lesson has no "next"
  into the instructors' manual, and the manual's first page no "previous" back into the lessons.
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ROOT / "exercises"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

project = "How to size a neural network"
author = "the course's contributors"
root_doc = "index"
extensions = ["myst_nb", "sphinx.ext.githubpages"]  # the latter writes .nojekyll
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
# The build fails on any warning (book/build.py runs Sphinx with -W), except a heading that
# skips a level, which is a matter of style, not a broken page.
suppress_warnings = ["myst.header"]

# Show what the tests checked: the committed outputs, never a fresh run.
nb_execution_mode = "off"
# Widgets: no widget JavaScript from a CDN, and the text fallback instead of an empty box.
nb_ipywidgets_js: dict[str, dict[str, str]] = {}
nb_mime_priority_overrides = [("html", WIDGET_VIEW, None)]
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

html_theme = "sphinx_book_theme"
html_title = project
html_theme_options = {
    "home_page_in_toc": True,
    "use_download_button": True,  # the page's notebook, as committed
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
html_last_updated_fmt = None
html_show_sphinx = False
html_show_copyright = False
mathjax_path = "mathjax/tex-chtml.js"  # copied into _static/ by copy_mathjax below

# --- what is added to each lesson page --------------------------------------------------

RUN_LOCALLY = """\
```{{admonition}} Run this lesson on your own machine
:class: tip
This page is the lesson as committed: its outputs and figures are the ones the course's tests
checked, and nothing runs in your browser. To run it, clone the course and use its two commands:
`make lab` opens it in JupyterLab (creating the `.venv` environment the first time), and
`make test` runs every check of the course.

{exercise}
```
"""

EXERCISE = (
    'Exercise: <a class="book-exercise" href="../exercises/{name}" download>'
    "exercises/{name}</a> (download it, open it in JupyterLab, fill in the cells marked "
    "`# YOUR CODE HERE` and run the test cell under each answer)."
)

WIDGET_NOTE = """\
```{{note}}
{what} To use it live, run `make lab` and open `notebooks/{name}` in JupyterLab.
```
"""


def _markdown_cell(cell_id: str, text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": text}


def run_locally_note(notebook: str, exercises: Path = EXERCISES) -> str:
    """The note under a lesson's title: the two commands and, when there is one, its exercise.

    >>> "make lab" in run_locally_note("00_start_here.ipynb", Path("/nonexistent"))
    True
    """
    exercise = EXERCISE.format(name=notebook) if (exercises / notebook).is_file() else ""
    return RUN_LOCALLY.format(exercise=exercise)


def progress_text(model_id: str, state: dict[str, Any]) -> str | None:
    """The last line a ``tqdm.auto`` bar showed, from the notebook's saved widget state
    (an HBox of HTML, FloatProgress, HTML), in tqdm's text format; None for other widgets.

    >>> state = {"b": {"model_name": "HBoxModel", "state": {"children": [
    ...     "IPY_MODEL_l", "IPY_MODEL_p", "IPY_MODEL_r"]}},
    ...     "l": {"model_name": "HTMLModel", "state": {"value": "fit:\\u2007100%"}},
    ...     "p": {"model_name": "FloatProgressModel", "state": {"value": 4.0, "max": 4.0}},
    ...     "r": {"model_name": "HTMLModel", "state": {"value": "\\u20074/4\\u2007[00:01&lt;00:00]"}}}
    >>> progress_text("b", state)
    'fit: 100%|██████████| 4/4 [00:01<00:00]'
    """
    box = state.get(model_id, {})
    if box.get("model_name") != "HBoxModel":
        return None
    children = [state.get(c.removeprefix("IPY_MODEL_"), {})
                for c in box.get("state", {}).get("children", [])]
    names = [c.get("model_name") for c in children]
    if names != ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None
    left, bar, right = (c.get("state", {}) for c in children)
    filled = round(10 * bar.get("value", 0) / bar["max"]) if bar.get("max") else 0

    def text(value: str) -> str:
        return html.unescape(re.sub(r"<[^>]+>", "", value)).replace("\u2007", " ")

    return f"{text(left.get('value', ''))}|{'█' * filled}{' ' * (10 - filled)}|" \
           f"{text(right.get('value', ''))}"


def lesson_page(notebook: dict[str, Any], name: str, exercises: Path = EXERCISES) -> dict[str, Any]:
    """The notebook as the site shows it: the run-locally note after the first cell, a note
    after each cell with a widget, progress bars in their final state, no widget state."""
    saved = notebook.get("metadata", {}).pop("widgets", {}).get(WIDGET_STATE, {})
    state = saved.get("state", {})
    cells = []
    for index, cell in enumerate(notebook["cells"]):
        cells.append(cell)
        if index == 0:
            cells.append(_markdown_cell("book-run-locally", run_locally_note(name, exercises)))
        kinds = []
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view is None:
                continue
            bar = progress_text(view.get("model_id", ""), state)
            if bar is not None:
                output["data"]["text/plain"] = bar
            kinds.append("bar" if bar is not None else "widget")
        if kinds:
            what = ("In JupyterLab this output is a live progress bar (`tqdm.auto`); this page "
                    "shows, as text, the state it finished in." if set(kinds) == {"bar"} else
                    "In JupyterLab this output is a live widget that you can change; this page "
                    "shows its text version.")
            cells.append(_markdown_cell(f"book-widget-{index}", WIDGET_NOTE.format(what=what, name=name)))
    notebook["cells"] = cells
    return notebook


def add_notes(app: Any, docname: str, source: list[str]) -> None:
    """Sphinx ``source-read``: rewrite a lesson notebook's JSON before MyST-NB reads it."""
    if docname.startswith("notebooks/"):
        notebook = json.loads(source[0])
        name = docname.split("/", 1)[1] + ".ipynb"
        source[0] = json.dumps(lesson_page(notebook, name))


def copy_downloads(app: Any, exception: Exception | None) -> None:
    """Sphinx ``build-finished``: the exercise notebooks and MathJax go into the site."""
    if exception is not None or app.builder.format != "html":
        return
    out = Path(app.outdir)
    target = out / "exercises"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for notebook in sorted(EXERCISES.glob("*.ipynb")):
        shutil.copy2(notebook, target / notebook.name)
    copy_mathjax(out / "_static" / "mathjax")


def copy_mathjax(target: Path) -> None:
    """MathJax 3's TeX-to-HTML bundle with its fonts and on-demand TeX extensions (about
    3 MB of the wheel's 24 MB)."""
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or spec.origin is None:
        raise RuntimeError("sphinx-mathjax-offline is missing: install requirements-book.txt")
    source = Path(spec.origin).parent / "static" / "mathjax"
    if (target / "tex-chtml.js").is_file():
        return
    for part in ("tex-chtml.js", "output/chtml", "input/tex/extensions", "ui", "a11y"):
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part, dirs_exist_ok=True)
        else:
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / part, target / part)


def part_of(docname: str) -> str:
    """Which part of the site a page belongs to: the lessons, or the manual around them.

    >>> part_of("notebooks/03_counting_parameters"), part_of("instructors/grading"), part_of("index")
    ('lessons', 'manual', 'home')
    """
    if docname == root_doc:
        return "home"
    return "lessons" if docname.startswith("notebooks/") else "manual"


def same_part_links(app: Any, pagename: str, templatename: str, context: dict[str, Any],
                    doctree: Any) -> None:
    """Sphinx ``html-page-context``: drop a previous/next link that leaves the page's part (the
    home page leads into the lessons, so its "next" stays)."""
    relations = app.env.collect_relations().get(pagename)
    if relations is None or part_of(pagename) == "home":
        return
    for key, neighbour in (("prev", relations[1]), ("next", relations[2])):
        if neighbour is not None and part_of(neighbour) not in (part_of(pagename), "home"):
            context[key] = None


def setup(app: Any) -> dict[str, Any]:
    app.connect("source-read", add_notes)
    app.connect("html-page-context", same_part_links)
    app.connect("build-finished", copy_downloads)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
