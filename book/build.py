"""Build the course website into _build/html (``make book``), executing nothing.

Every build starts from scratch (it takes seconds): Sphinx reads a staging folder,
``_build/src``, holding every page ``book/**/*.md`` (subfolders such as ``book/instructors/``
included) and a copy of every lesson ``notebooks/NN_*.ipynb``. The home page's table of
contents globs ``notebooks/*``, so a new lesson appears by itself, and a removed one leaves no
stale page behind. Measured figures are not typed into the pages: each ``{measured}`` block
becomes a table rendered from ``book/measured/*.json`` (see ``book/measurements.py``). The
configuration is ``book/conf.py``. Run it with the book environment's Python::

    .venv-book/bin/python book/build.py            # or: make book

``--record`` folds a new measurement into ``book/measured/`` instead of building::

    .venv/bin/python book/build.py --record results/bench.json --commit "$(git rev-parse --short HEAD)"
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import time
from pathlib import Path

from measurements import record, render

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
BUILD = ROOT / "_build"
LESSON = re.compile(r"^\d\d_\w+\.ipynb$")


def lessons(folder: Path = ROOT / "notebooks") -> list[Path]:
    """The lesson notebooks, in course order (``NN_topic.ipynb``)."""
    return sorted(p for p in folder.glob("*.ipynb") if LESSON.match(p.name))


def pages(book: Path = BOOK) -> list[Path]:
    """The website's own pages: every ``.md`` file under ``book/``, subfolders included."""
    hidden = (".", "_")  # .ipynb_checkpoints, _build and the like
    return sorted(p for p in book.rglob("*.md")
                  if not any(part.startswith(hidden) for part in p.relative_to(book).parts))


def stage(src: Path) -> list[Path]:
    """Copy the pages (their measured tables rendered) and the lessons into an empty ``src``;
    returns the lessons."""
    found = lessons()
    if not found:
        sys.exit(f"no lesson notebooks (NN_topic.ipynb) found in {ROOT / 'notebooks'}")
    (src / "notebooks").mkdir(parents=True)
    for page in pages():
        target = src / page.relative_to(BOOK)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(page.read_text(encoding="utf-8")), encoding="utf-8")
    for lesson in found:
        shutil.copy2(lesson, src / "notebooks" / lesson.name)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BUILD / "html", help="output folder")
    parser.add_argument("--record", type=Path, metavar="REPORT",
                        help="fold results/bench.json or results/workshop-load.json into book/measured/ "
                        "(and build nothing)")
    parser.add_argument("--commit", help="with --record: the commit that was measured")
    args = parser.parse_args(argv)
    if args.record:
        if not args.commit:
            parser.error("--record needs --commit (the commit that was measured)")
        print(f"updated {record(args.record, args.commit)}: commit it with the report's figures")
        return 0
    from sphinx.cmd.build import build_main

    start = time.monotonic()
    src, doctrees = BUILD / "src", BUILD / "doctrees"
    for folder in (src, doctrees, args.out):
        shutil.rmtree(folder, ignore_errors=True)
    found = stage(src)
    # -W: a warning (a broken reference, a bad directive) fails the build.
    status = build_main(["-b", "html", "-c", str(BOOK), "-d", str(doctrees), "-q", "-W",
                         "--keep-going", str(src), str(args.out)])
    if status == 0:
        print(f"Website of {len(found)} lessons built in {time.monotonic() - start:.1f} s: "
              f"open {args.out / 'index.html'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
