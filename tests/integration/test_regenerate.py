"""The regeneration command executes, stamps, and never overwrites a notebook that fails."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from course_utils.notebooks import lesson_map, main, notebook_paths, source_hash


def _write(path: Path, *sources: str, tags: list[str] | None = None) -> Path:
    cells = [nbformat.v4.new_code_cell(s, metadata={"tags": tags or []}) for s in sources]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


@pytest.mark.slow
def test_regenerate_executes_and_stamps(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.ipynb", "x = 6 * 7", "print(x)")
    assert main([str(path)]) == 0
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[1].outputs[0]["text"] == "42\n"
    assert [c.execution_count for c in nb.cells] == [1, 2]
    assert nb.metadata["course_utils"]["source_sha256"] == source_hash(nb)
    assert nb.metadata["kernelspec"]["name"] == "sizing-nn"


@pytest.mark.slow
def test_a_failing_notebook_is_left_unchanged(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path / "b.ipynb", "1 / 0")
    before = path.read_bytes()
    assert main([str(path)]) == 1
    assert path.read_bytes() == before
    assert "ZeroDivisionError" in capsys.readouterr().err


@pytest.mark.slow
def test_raises_exception_tag_is_honoured(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.ipynb", "raise ValueError('shown on purpose')", tags=["raises-exception"])
    assert main([str(path)]) == 0
    assert nbformat.read(path, as_version=4).cells[0].outputs[0]["ename"] == "ValueError"


def test_notebook_paths_expands_folders_and_rejects_others(tmp_path: Path) -> None:
    _write(tmp_path / "02_b.ipynb", "1")
    _write(tmp_path / "01_a.ipynb", "1")
    assert [p.name for p in notebook_paths([tmp_path])] == ["01_a.ipynb", "02_b.ipynb"]
    with pytest.raises(FileNotFoundError, match="not a notebook"):
        notebook_paths([tmp_path / "missing.txt"])


def test_lesson_map_reads_titles_and_minutes(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "# 03 · Counting parameters\n\n**Estimated time:** 40 minutes")])
    nbformat.write(nb, tmp_path / "03_counting_parameters.ipynb")
    (info,) = lesson_map(tmp_path)
    assert (info.number, info.title, info.minutes) == ("03", "Counting parameters", 40)


def test_every_lesson_states_title_and_time() -> None:
    lessons = lesson_map(Path(__file__).resolve().parents[2] / "notebooks")
    assert lessons, "no lessons found"
    missing = [lesson.file for lesson in lessons if lesson.minutes is None]
    assert not missing, f"lessons without '**Estimated time:** N minutes' in their first cell: {missing}"


@pytest.mark.slow
def test_figures_are_saved_even_when_tests_set_a_non_interactive_backend(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")
    path = _write(tmp_path / "d.ipynb", "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()")
    assert main([str(path)]) == 0
    outputs = nbformat.read(path, as_version=4).cells[0].outputs
    assert any("image/png" in o.get("data", {}) for o in outputs)
