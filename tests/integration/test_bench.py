"""``python -m course_utils bench``: budgets, summaries, the table, and a real run of a tiny
notebook (kernel start included) that must be reported over a deliberately small budget."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from course_utils.devtools import bench
from course_utils.devtools.bench import BenchResult, Budget, Run, budget_of, format_bench_table

SLEEP_S = 0.6


def _notebook(path: Path, cells: list[str], budget: dict | None = None) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    if budget is not None:
        nb.metadata["course_utils"] = {"budget": budget}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def test_budget_defaults_and_override() -> None:
    nb = nbformat.v4.new_notebook()
    assert budget_of(nb) == Budget(seconds=30, memory_mb=1024)
    nb.metadata["course_utils"] = {"budget": {"seconds": 60, "memory_mb": 2048}}
    assert budget_of(nb) == Budget(seconds=60, memory_mb=2048)


@pytest.mark.parametrize("bad", [{"second": 60}, {"seconds": "60"}, {"memory_mb": -1}])
def test_budget_rejects_typos_with_a_clear_message(bad: dict) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["course_utils"] = {"budget": bad}
    with pytest.raises(ValueError, match="'seconds' and 'memory_mb'"):
        budget_of(nb)


def test_summary_uses_median_time_max_memory_and_median_cell_times() -> None:
    runs = [Run(10.0, 300.0, {1: 1.0, 2: 5.0}), Run(50.0, 900.0, {1: 9.0, 2: 6.0}),
            Run(12.0, 400.0, {1: 2.0, 2: 4.0})]
    result = BenchResult("a.ipynb", Budget(30, 1024), runs, {1: "import torch", 2: "fit()"})
    assert result.wall_s == 12.0  # one slow outlier run does not decide
    assert result.peak_rss_mb == 900.0  # memory: the worst run
    assert result.slowest_cell() == (2, 5.0)  # cell 1 was slow once only (median 2.0)
    assert result.problems() == []


def test_problems_name_each_exceeded_budget() -> None:
    result = BenchResult("a.ipynb", Budget(30, 1024), [Run(31.0, 1500.0)])
    assert result.problems() == ["31.0 s > 30 s", "1500 MB > 1024 MB"]
    bigger = BenchResult("a.ipynb", Budget(60, 2048), [Run(31.0, 1500.0)])
    assert bigger.problems() == []
    failed = BenchResult("a.ipynb", Budget(), [Run(1.0, 100.0, error="CellExecutionError: x")])
    assert failed.problems() == ["failed: CellExecutionError: x"]


def test_table_has_one_row_per_notebook_totals_and_verdicts() -> None:
    ok = BenchResult("n/ok.ipynb", Budget(), [Run(5.0, 200.0, {1: 4.0})], {1: "a | b"})
    slow = BenchResult("n/slow.ipynb", Budget(), [Run(40.0, 200.0, {1: 39.0})], {1: "x"})
    lines = format_bench_table([ok, slow]).splitlines()
    assert len(lines) == 2 + 2 + 1
    assert "| n/ok.ipynb | 5.0 | 200 | [1] a \\| b | 4.0 | 30 s, 1024 MB | ok |" == lines[2]
    assert lines[3].endswith("| 40.0 s > 30 s |")
    assert "**45.0**" in lines[4] and "1 over budget or failed" in lines[4]


def test_select_notebooks_filters_and_skips_missing_folders(tmp_path: Path) -> None:
    a = _notebook(tmp_path / "nb" / "01_a.ipynb", ["1"])
    b = _notebook(tmp_path / "nb" / "02_b.ipynb", ["1"])
    assert bench.select_notebooks([tmp_path / "nb", tmp_path / "missing"]) == [a, b]
    assert bench.select_notebooks([tmp_path / "nb"], only="02_") == [b]


def test_format_inspection_marks_missing_tools() -> None:
    text = bench.format_inspection([{"case": "torchinfo", "status": "torchinfo not installed"}])
    assert "| torchinfo | | | | torchinfo not installed |" in text


def test_the_huge_model_has_the_advertised_size() -> None:
    d, ff, vocab, layers = 4096, 11008, 32000, 32
    attention = (3 * d * d + 3 * d) + (d * d + d)  # in_proj and out_proj, with biases
    block = attention + (d * ff + ff) + (ff * d + d) + 2 * (2 * d)  # + feed-forward, 2 norms
    expected = vocab * d + layers * block + 2 * d + (d * vocab + vocab)
    assert expected == 5_296_880_896  # the "5.3 B" in the table's header
    scope: dict = {}
    exec(bench.BUILD_MODEL, scope)
    assert sum(p.numel() for p in scope["model"].parameters()) == expected


def test_inspection_bench_runs_cases_in_fresh_processes() -> None:
    cases = {"numel": ("result = sum(p.numel() for p in model.parameters())", "torch"),
             "missing": ("import nope_not_a_module\nresult = 0", "nope_not_a_module")}
    rows = bench.inspection_bench(cases)
    assert rows[0]["status"] == "ok" and rows[0]["result"] == "5296880896", rows[0]
    assert 0 < rows[0]["call_s"] < 60 and rows[0]["peak_rss_mb"] > 50  # torch alone
    assert rows[1] == {"case": "missing", "status": "nope_not_a_module not installed"}


@pytest.mark.slow
def test_real_run_measures_time_memory_and_cells(tmp_path: Path) -> None:
    path = _notebook(tmp_path / "tiny.ipynb", [
        "import time\nblock = bytearray(200 * 1024 * 1024)  # 200 MB, touched below",
        "block[::4096] = b'x' * len(block[::4096])",
        f"time.sleep({SLEEP_S})",
    ])
    result = bench.bench_notebook(path, runs=1)
    run = result.runs[0]
    assert run.error is None
    assert set(run.cell_s) == {1, 2, 3}
    assert run.cell_s[3] >= SLEEP_S  # the sleeping cell
    assert result.slowest_cell() == max(run.cell_s.items(), key=lambda item: item[1])
    assert run.wall_s > sum(run.cell_s.values())  # kernel start is included
    assert 200 < run.peak_rss_mb < 1024, run.peak_rss_mb  # the 200 MB block is seen


@pytest.mark.slow
def test_main_exits_nonzero_over_budget_and_writes_json(tmp_path: Path, capsys) -> None:
    _notebook(tmp_path / "nb" / "01_fast.ipynb", ["1 + 1"])
    _notebook(tmp_path / "nb" / "02_slow.ipynb", [f"import time; time.sleep({SLEEP_S})"],
              budget={"seconds": 0.1})
    _notebook(tmp_path / "nb" / "03_broken.ipynb", ["1 / 0", "print('not reached')"])
    out = tmp_path / "results" / "bench.json"
    code = bench.main([str(tmp_path / "nb"), "--runs", "1", "--no-inspection",
                       "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 1
    report = json.loads(out.read_text())
    rows = {Path(r["notebook"]).name: r for r in report["notebooks"]}
    assert rows["01_fast.ipynb"]["problems"] == []
    assert rows["02_slow.ipynb"]["budget"] == {"seconds": 0.1, "memory_mb": 1024}
    assert rows["02_slow.ipynb"]["problems"][0].endswith("s > 0.1 s")
    assert rows["03_broken.ipynb"]["problems"][0].startswith("failed: ")
    assert "ZeroDivisionError" in rows["03_broken.ipynb"]["problems"][0]
    assert "| **total (3 notebooks)** |" in printed


def test_main_only_filters_and_exits_zero_within_budget(tmp_path: Path) -> None:
    _notebook(tmp_path / "nb" / "01_fast.ipynb", ["1 + 1"])
    _notebook(tmp_path / "nb" / "02_other.ipynb", ["1 / 0"])
    out = tmp_path / "bench.json"
    code = bench.main([str(tmp_path / "nb"), "--only", "01_", "--runs", "1",
                       "--no-inspection", "--json", str(out)])
    assert code == 0
    assert [Path(r["notebook"]).name for r in json.loads(out.read_text())["notebooks"]] == [
        "01_fast.ipynb"]


def test_main_says_when_nothing_matches(tmp_path: Path, capsys) -> None:
    assert bench.main([str(tmp_path), "--only", "nothing", "--no-inspection"]) == 2
    assert "no notebook matches" in capsys.readouterr().err


@pytest.mark.slow
def test_a_dying_kernel_is_reported_with_its_last_words(tmp_path: Path) -> None:
    path = _notebook(tmp_path / "dies.ipynb", [
        "import os\nos.write(2, b'out of memory, say\\n')\nos._exit(3)", "print('not reached')",
    ])
    result = bench.bench_notebook(path, runs=3)
    assert len(result.runs) == 1  # no point repeating a failure
    assert "DeadKernelError" in result.error
    assert "kernel: out of memory, say" in result.error
    assert result.problems()[0].startswith("failed: DeadKernelError")


def test_the_old_names_still_work() -> None:
    import course_utils.bench as old
    from course_utils.grading.records import NotebookResult as GradedNotebook

    assert old.NotebookResult is bench.BenchResult is bench.NotebookResult
    assert old.format_table is bench.format_bench_table is bench.format_table
    assert old.main is bench.main and old.budget_of is budget_of
    assert bench.BenchResult is not GradedNotebook  # the name no longer means two things


def test_parse_rejects_zero_runs_and_write_creates_the_folder(tmp_path: Path, capsys) -> None:
    args = bench._parse(["--runs", "2", "--only", "03"])
    assert (args.runs, args.only, args.targets) == (2, "03", ["notebooks", "solutions"])
    with pytest.raises(SystemExit):
        bench._parse(["--runs", "0"])
    assert "--runs must be at least 1" in capsys.readouterr().err
    out = tmp_path / "deep" / "bench.json"
    bench._write({"runs": 1}, out)
    assert json.loads(out.read_text()) == {"runs": 1}
