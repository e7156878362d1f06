"""Re-execute and save the course's notebooks (``make notebooks``), and check they are fresh.

Each saved notebook records, under ``metadata.course_utils.source_sha256``, a hash of its
cells' sources. ``tests/content/test_notebooks_fresh.py`` recomputes it: a notebook whose code or
prose was edited without being regenerated fails the test.

    python -m course_utils regenerate notebooks solutions          # everything
    python -m course_utils regenerate notebooks/01_layers_of_a_model.ipynb
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import nbformat

from course_utils._paths import KERNEL_NAME, KERNELSPEC

__all__ = ["CELL_TIMEOUT_S", "source_hash", "notebook_paths", "execute_notebook", "regenerate", "main"]

CELL_TIMEOUT_S = 600


def source_hash(nb: nbformat.NotebookNode) -> str:
    """SHA-256 over every cell's type and source, in order: what "the notebook's text" is.

    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    >>> len(source_hash(nb))
    64
    """
    digest = hashlib.sha256()
    for cell in nb.cells:
        digest.update(json.dumps([cell.cell_type, cell.source]).encode())
    return digest.hexdigest()


def notebook_paths(targets: list[str | Path]) -> list[Path]:
    """Expand folders into their ``*.ipynb`` files (sorted); keep files as given."""
    paths: list[Path] = []
    for target in map(Path, targets):
        if target.is_dir():
            paths += sorted(target.glob("*.ipynb"))
        elif target.suffix == ".ipynb" and target.is_file():
            paths.append(target)
        else:
            raise FileNotFoundError(f"{target}: not a notebook or a folder of notebooks")
    return paths


def execute_notebook(
    nb: nbformat.NotebookNode, cwd: Path, *, timeout: int = CELL_TIMEOUT_S,
    kernel_name: str = KERNEL_NAME,
) -> nbformat.NotebookNode:
    """Run every cell of ``nb`` top to bottom in a fresh kernel; return the executed copy.

    A cell that raises stops the run (``nbclient.exceptions.CellExecutionError``) unless
    it carries the ``raises-exception`` tag.
    """
    from nbclient import NotebookClient

    executed = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in executed.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
    client = NotebookClient(
        executed, timeout=timeout, kernel_name=kernel_name,
        resources={"metadata": {"path": str(cwd)}}, record_timing=False, store_widget_state=True,
    )
    # The kernel must draw inline: a non-interactive MPLBACKEND (say Agg, set for tests)
    # inherited from this process would silently drop every figure from the saved notebook.
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    client.execute(env=env)
    return executed


def regenerate(path: Path) -> float:
    """Execute ``path`` in place and stamp its source hash; return the seconds it took.

    The file is written only after a successful run, so a failing notebook keeps its
    previous committed version.
    """
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    start = time.perf_counter()
    executed = execute_notebook(nb, path.parent.resolve())
    seconds = time.perf_counter() - start
    executed.metadata.setdefault("course_utils", {})["source_sha256"] = source_hash(executed)
    if not _has_widget_output(executed):
        executed.metadata.pop("widgets", None)
    nbformat.validate(executed)
    nbformat.write(executed, path)
    return seconds


def _has_widget_output(nb: nbformat.NotebookNode) -> bool:
    return any(
        "application/vnd.jupyter.widget-view+json" in out.get("data", {})
        for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils regenerate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", default=["notebooks", "solutions"],
                        help="notebooks or folders of notebooks (default: notebooks solutions)")
    args = parser.parse_args(argv)
    from nbclient.exceptions import CellExecutionError

    failed = []
    for path in notebook_paths(args.targets):
        print(f"{path} ...", end=" ", flush=True)
        try:
            print(f"{regenerate(path):.1f} s", flush=True)
        except CellExecutionError as error:
            print("FAILED (file left unchanged)")
            print(str(error)[-3000:], file=sys.stderr)
            failed.append(path)
    if failed:
        print(f"{len(failed)} notebook(s) failed: {', '.join(map(str, failed))}", file=sys.stderr)
        return 1
    return 0
