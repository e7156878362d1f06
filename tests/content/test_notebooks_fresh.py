"""Committed notebooks must be what the regeneration command produced.

- a cell tagged ``nbval-check-output`` must have saved outputs (nbval silently skips it otherwise);
- notebooks/ and solutions/ are committed executed: every code cell ran once, top to bottom,
  and the stamped source hash matches the cells (an edit without ``make notebooks`` fails);
- exercises/ are committed without outputs.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from course_utils.notebooks import KERNEL_NAME, KERNELSPEC, source_hash

ROOT = Path(__file__).resolve().parents[2]
EXECUTED = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
    (ROOT / "solutions").glob("*.ipynb")
)
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))
ALL = EXECUTED + EXERCISES


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in paths]


def _code_cells(path: Path) -> list:
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def test_lessons_exist() -> None:
    assert (ROOT / "notebooks" / "00_start_here.ipynb").exists()
    assert len(list((ROOT / "notebooks").glob("*.ipynb"))) >= 2


@pytest.mark.parametrize("path", EXECUTED, ids=_ids(EXECUTED))
def test_tagged_cells_have_saved_outputs(path: Path) -> None:
    empty = [
        i
        for i, cell in enumerate(_code_cells(path))
        if "nbval-check-output" in cell.metadata.get("tags", []) and not cell.outputs
    ]
    assert not empty, (
        f"{path.name}: code cells {empty} are tagged nbval-check-output but have no saved "
        "output; nbval would skip them silently"
    )


@pytest.mark.parametrize("path", EXECUTED, ids=_ids(EXECUTED))
def test_executed_in_order_by_the_regeneration_command(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name}: execution counts {counts} are not 1..{len(counts)}; run `make notebooks`"
    )
    stamp = nb.metadata.get("course_utils", {}).get("source_sha256")
    assert stamp == source_hash(nb), (
        f"{path.name} was edited after it was last executed; "
        "run `make notebooks` and commit the result"
    )
    assert nb.metadata.get("kernelspec", {}).get("name") == KERNEL_NAME


@pytest.mark.parametrize("path", EXERCISES, ids=_ids(EXERCISES))
def test_exercises_have_no_outputs(path: Path) -> None:
    with_outputs = [i for i, c in enumerate(_code_cells(path)) if c.outputs or c.execution_count]
    assert not with_outputs, (
        f"{path.name}: cells {with_outputs} carry outputs; exercises are committed clean"
    )


def test_guard_catches_a_tagged_cell_without_output(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("1 + 1", metadata={"tags": ["nbval-check-output"]})]
    )
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(AssertionError, match="no saved output"):
        test_tagged_cells_have_saved_outputs(path)


def test_freshness_check_catches_an_edit(tmp_path: Path) -> None:
    cell = nbformat.v4.new_code_cell("1 + 1", execution_count=1)
    nb = nbformat.v4.new_notebook(cells=[cell], metadata={"kernelspec": dict(KERNELSPEC)})
    nb.metadata["course_utils"] = {"source_sha256": source_hash(nb)}
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    test_executed_in_order_by_the_regeneration_command(path)  # fresh: passes
    nb.cells[0].source = "1 + 2"
    nbformat.write(nb, path)
    with pytest.raises(AssertionError, match="edited after"):
        test_executed_in_order_by_the_regeneration_command(path)
