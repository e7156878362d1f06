"""The regeneration command (course_utils.devtools.regenerate) executes, stamps, and never
overwrites a notebook that fails; the old course_utils.notebooks still imports it all."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from course_utils.devtools.regenerate import main, notebook_paths, source_hash


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


@pytest.mark.slow
def test_figures_are_saved_even_when_tests_set_a_non_interactive_backend(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")
    path = _write(tmp_path / "d.ipynb", "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()")
    assert main([str(path)]) == 0
    outputs = nbformat.read(path, as_version=4).cells[0].outputs
    assert any("image/png" in o.get("data", {}) for o in outputs)


def test_the_old_notebooks_module_still_imports_everything_it_had() -> None:
    import subprocess
    import sys

    from course_utils import _paths, lessons, notebooks
    from course_utils.devtools import regenerate

    assert notebooks.lesson_map is lessons.lesson_map and notebooks.LessonInfo is lessons.LessonInfo
    assert (notebooks.KERNEL_NAME, notebooks.KERNELSPEC) == (_paths.KERNEL_NAME, _paths.KERNELSPEC)
    for name in ("source_hash", "execute_notebook", "regenerate", "main", "notebook_paths",
                 "CELL_TIMEOUT_S"):
        assert getattr(notebooks, name) is getattr(regenerate, name), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        notebooks.nope  # noqa: B018
    code = ("import sys; from course_utils.notebooks import lesson_map; "
            "print(any(m.startswith('course_utils.devtools') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # lesson 00's import does not load the maintainer tools
