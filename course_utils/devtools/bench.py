"""Time and measure every notebook (``make bench``), and the inspection helpers on a huge model.

Each notebook runs top to bottom in a fresh course kernel, ``--runs`` times, with
``OMP_NUM_THREADS=1``. What is measured:

- **wall s**: from asking for a kernel to the last cell's reply, kernel start included
  (what "Restart kernel and run all" costs a learner); the median over the runs;
- **peak MB**: the kernel's peak resident memory (``VmHWM`` from ``/proc``, read after every
  cell; a sampled maximum elsewhere) plus the sampled peak of any processes the kernel
  starts (data-loader workers); the maximum over the runs;
- **slowest cell**: the code cell with the largest median time, shown as ``[n]`` (its
  execution count) and its first line.

A notebook's budget is 30 s and 1024 MB unless its metadata names a larger one::

    nb.metadata["course_utils"]["budget"] = {"seconds": 60, "memory_mb": 1024}

The table is printed and saved as JSON (``results/bench.json``); the exit code is 1 when a
notebook fails or is over its budget. This is a benchmark, not a test: ``make test`` does
not run it.

    python -m course_utils bench                       # notebooks/ and solutions/, 3 runs
    python -m course_utils bench --runs 1 --only 03    # one quick pass over matching names
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import psutil

from course_utils._paths import KERNEL_NAME
from course_utils.devtools.mutants import format_scores, load_mutants, mutant_files, score_mutants
from course_utils.devtools.regenerate import CELL_TIMEOUT_S, notebook_paths
from course_utils.devtools.throughput import NOTEBOOK, format_throughput, grading_throughput

__all__ = [
    "Budget", "DEFAULT_BUDGET", "Run", "BenchResult", "budget_of", "select_notebooks",
    "run_notebook", "bench_notebook", "format_bench_table", "inspection_bench",
    "format_inspection", "main", "NotebookResult", "format_table",
]
# In __all__ only so that old imports keep working: the grader has a NotebookResult and a
# format_table of its own, so these were renamed BenchResult and format_bench_table.
_KEPT_FOR_OLD_IMPORTS = ("NotebookResult", "format_table")

MB = 1024 * 1024
DEFAULT_TARGETS = ("notebooks", "solutions")


@dataclass(frozen=True)
class Budget:
    """What one notebook may cost: wall seconds (median run) and peak memory in MB."""

    seconds: float = 30
    memory_mb: float = 1024


DEFAULT_BUDGET = Budget()


def budget_of(nb: nbformat.NotebookNode) -> Budget:
    """The notebook's budget: ``metadata.course_utils.budget`` if present, else the default.

    >>> nb = nbformat.v4.new_notebook()
    >>> budget_of(nb)
    Budget(seconds=30, memory_mb=1024)
    >>> nb.metadata["course_utils"] = {"budget": {"seconds": 60}}
    >>> budget_of(nb)
    Budget(seconds=60, memory_mb=1024)
    """
    given = nb.metadata.get("course_utils", {}).get("budget", {})
    unknown = set(given) - {"seconds", "memory_mb"}
    bad = [k for k, v in given.items() if not isinstance(v, (int, float)) or v <= 0]
    if unknown or bad:
        raise ValueError(
            f"metadata.course_utils.budget = {dict(given)}: use positive numbers under the keys "
            "'seconds' and 'memory_mb', e.g. {'seconds': 60, 'memory_mb': 1024}"
        )
    return Budget(**{**asdict(DEFAULT_BUDGET), **given})


def select_notebooks(targets: list[str | Path], only: str | None = None) -> list[Path]:
    """Notebooks under ``targets`` (folders or files) whose path contains ``only``.

    Missing folders are skipped, so a checkout without ``solutions/`` still benches.
    """
    present = [t for t in targets if Path(t).exists()]
    paths = notebook_paths(present)
    return [p for p in paths if only is None or only in str(p)]


# ------------------------------------------------------------------------------ measuring


@dataclass
class Run:
    """One execution of a notebook in a fresh kernel."""

    wall_s: float
    peak_rss_mb: float
    cell_s: dict[int, float] = field(default_factory=dict)  # execution count -> seconds
    error: str | None = None


def _peak_rss_bytes(proc: psutil.Process) -> int:
    """A process's peak resident memory so far (Linux: exact ``VmHWM``; else current RSS)."""
    status = Path(f"/proc/{proc.pid}/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return proc.memory_info().rss


class _MemoryWatch:
    """Follows a kernel: its own peak RSS, and the sampled peak of its child processes."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.proc = psutil.Process(pid)
        self.kernel_peak = 0
        self.children_peak = 0
        self._lock = threading.Lock()  # read() runs in the sampler and after every cell
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(interval,), daemon=True)
        self._thread.start()

    def read(self) -> None:
        try:
            kernel = _peak_rss_bytes(self.proc)
            children = sum(c.memory_info().rss for c in self.proc.children(recursive=True))
        except (psutil.Error, OSError):  # the kernel or a child just exited
            return
        with self._lock:
            self.kernel_peak = max(self.kernel_peak, kernel)
            self.children_peak = max(self.children_peak, children)

    def _sample(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.read()

    def stop(self) -> float:
        """Stop sampling; return the peak in MB (kernel + its children)."""
        self._stop.set()
        self._thread.join()
        return (self.kernel_peak + self.children_peak) / MB


def kernel_env() -> dict[str, str]:
    """The kernel's environment: one thread, and the inline plots a learner's kernel draws."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("MPLBACKEND", None)
    return env


def _tail(text: str, lines: int = 3) -> str:
    """The last lines of a kernel's stderr, minus the routine transport warning."""
    kept = [line for line in text.strip().splitlines() if "without encryption" not in line]
    return "".join(f"\n    kernel: {line[:200]}" for line in kept[-lines:])


def run_notebook(path: Path, kernel_name: str = KERNEL_NAME,
                 timeout: int = CELL_TIMEOUT_S) -> Run:
    """Execute ``path`` once in a fresh kernel (nothing is saved) and measure it."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    watch: list[_MemoryWatch] = []
    started: dict[int, float] = {}
    cell_s: dict[int, float] = {}

    def on_start(**_: Any) -> None:
        watch.append(_MemoryWatch(client.km.provisioner.pid))

    def on_execute(cell_index: int, **_: Any) -> None:
        started[cell_index] = time.perf_counter()

    def on_executed(cell: Any, cell_index: int, **_: Any) -> None:
        cell_s[cell.execution_count] = time.perf_counter() - started[cell_index]
        watch[0].read()

    client.on_notebook_start = on_start
    client.on_cell_execute = on_execute
    client.on_cell_executed = on_executed
    start, error = time.perf_counter(), None
    with tempfile.TemporaryFile() as kernel_log:  # the kernel's own stderr: shown on failure
        try:
            client.execute(env=kernel_env(), stderr=kernel_log)
        except Exception as exc:  # a failing notebook is a row in the table, not a crash
            error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:200]}"
            kernel_log.seek(0)
            error += _tail(kernel_log.read().decode(errors="replace"))
    wall = time.perf_counter() - start
    peak = watch[0].stop() if watch else 0.0
    return Run(wall_s=wall, peak_rss_mb=peak, cell_s=cell_s, error=error)


@dataclass
class BenchResult:
    """Several runs of one notebook, summarised, and the budget they must meet."""

    path: str
    budget: Budget
    runs: list[Run]
    first_lines: dict[int, str] = field(default_factory=dict)  # execution count -> source

    @property
    def error(self) -> str | None:
        return next((r.error for r in self.runs if r.error), None)

    @property
    def wall_s(self) -> float:
        return statistics.median(r.wall_s for r in self.runs)

    @property
    def peak_rss_mb(self) -> float:
        return max(r.peak_rss_mb for r in self.runs)

    def slowest_cell(self) -> tuple[int, float] | None:
        """(execution count, median seconds) of the slowest code cell."""
        counts = set.intersection(*(set(r.cell_s) for r in self.runs)) if self.runs else set()
        medians = {n: statistics.median(r.cell_s[n] for r in self.runs) for n in counts}
        return max(medians.items(), key=lambda item: item[1]) if medians else None

    def problems(self) -> list[str]:
        """Why this notebook fails its budget (empty when it meets it).

        >>> result = BenchResult("x.ipynb", Budget(30, 1024), [Run(31.0, 500.0)])
        >>> result.problems()
        ['31.0 s > 30 s']
        """
        found = [f"failed: {self.error}"] if self.error else []
        if self.wall_s > self.budget.seconds:
            found.append(f"{self.wall_s:.1f} s > {self.budget.seconds:g} s")
        if self.peak_rss_mb > self.budget.memory_mb:
            found.append(f"{self.peak_rss_mb:.0f} MB > {self.budget.memory_mb:g} MB")
        return found

    def to_dict(self) -> dict[str, Any]:
        slowest = self.slowest_cell()
        return {
            "notebook": self.path, "wall_s_median": round(self.wall_s, 2),
            "wall_s_runs": [round(r.wall_s, 2) for r in self.runs],
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "slowest_cell": None if slowest is None else {
                "execution_count": slowest[0], "seconds": round(slowest[1], 2),
                "first_line": self.first_lines.get(slowest[0], ""),
            },
            "budget": asdict(self.budget), "problems": self.problems(),
        }


def bench_notebook(path: Path, runs: int = 3, kernel_name: str = KERNEL_NAME) -> BenchResult:
    """Run ``path`` ``runs`` times (stopping early if it fails) and summarise."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    first_lines = {i: (c.source.strip().splitlines() or [""])[0][:60]
                   for i, c in enumerate(code, start=1)}
    results = []
    for _ in range(runs):
        results.append(run_notebook(path, kernel_name=kernel_name))
        if results[-1].error:
            break
    return BenchResult(str(path), budget_of(nb), results, first_lines)


def format_bench_table(results: list[BenchResult]) -> str:
    """The results as an aligned Markdown table, with totals and a verdict per row.

    >>> r = BenchResult("notebooks/x.ipynb", Budget(), [Run(12.3, 456.0, {1: 0.5, 2: 9.0})],
    ...                    {1: "import torch", 2: "fit(model)"})
    >>> print(format_bench_table([r]))  # doctest: +NORMALIZE_WHITESPACE
    | notebook | wall s | peak MB | slowest cell | cell s | budget | verdict |
    |---|---:|---:|---|---:|---|---|
    | notebooks/x.ipynb | 12.3 | 456 | [2] fit(model) | 9.0 | 30 s, 1024 MB | ok |
    | **total (1 notebooks)** | **12.3** | **456 (max)** | | | | **all within budget** |
    """
    lines = ["| notebook | wall s | peak MB | slowest cell | cell s | budget | verdict |",
             "|---|---:|---:|---|---:|---|---|"]
    for r in results:
        slowest = r.slowest_cell()
        cell = ("", "") if slowest is None else (
            f"[{slowest[0]}] {r.first_lines.get(slowest[0], '')}".replace("|", "\\|"),
            f"{slowest[1]:.1f}")
        verdict = "; ".join(r.problems()).replace("|", "\\|").replace("\n", " ") or "ok"
        lines.append(f"| {r.path} | {r.wall_s:.1f} | {r.peak_rss_mb:.0f} | {cell[0]} | "
                     f"{cell[1]} | {r.budget.seconds:g} s, {r.budget.memory_mb:g} MB | {verdict} |")
    over = sum(bool(r.problems()) for r in results)
    total_s = sum(r.wall_s for r in results)
    peak = max((r.peak_rss_mb for r in results), default=0.0)
    verdict = f"{over} over budget or failed" if over else "all within budget"
    lines.append(f"| **total ({len(results)} notebooks)** | **{total_s:.1f}** | "
                 f"**{peak:.0f} (max)** | | | | **{verdict}** |")
    return "\n".join(lines)


# ------------------------------------------------------------ inspection helpers on a huge model

#: A 5.3-billion-parameter decoder-sized stack (32 layers, d_model 4096), built on ``meta``.
BUILD_MODEL = """
import torch
from torch import nn
with torch.device("meta"):
    model = nn.Sequential(
        nn.Embedding(32000, 4096),
        *[nn.TransformerEncoderLayer(4096, 32, 11008, batch_first=True) for _ in range(32)],
        nn.LayerNorm(4096), nn.Linear(4096, 32000),
    )
"""

#: name -> (statement that sets ``result``, module it needs). Each runs in its own process.
INSPECTION_CASES: dict[str, tuple[str, str]] = {
    "build the model on meta (baseline)": ("result = type(model).__name__", "torch"),
    "count_params(model)":
        ("from course_utils import count_params\nresult = count_params(model)", "torch"),
    "sum(p.numel() for p in model.parameters())":
        ("result = sum(p.numel() for p in model.parameters())", "torch"),
    "layer_table(model, (1, 512), dtype=torch.long)":
        ("from course_utils import layer_table\n"
         "result = layer_table(model, (1, 512), dtype=torch.long).total_params", "torch"),
    "torchinfo.summary(model, (1, 512), dtypes=[torch.long], device='meta')":
        ("import torchinfo\nresult = torchinfo.summary(model, input_size=(1, 512), "
         "dtypes=[torch.long], device='meta', verbose=0).total_params", "torchinfo"),
}

_CASE_SCRIPT = """
import json, resource, sys, time
start = time.perf_counter()
{build}
built = time.perf_counter()
{statement}
done = time.perf_counter()
scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, kB on Linux
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
print(json.dumps({{"build_s": built - start, "call_s": done - built, "peak_rss_mb": peak / 2**20,
                  "result": str(result)}}))
"""


def _installed(module: str) -> bool:
    probe = [sys.executable, "-c", f"import importlib.util, sys; "
             f"sys.exit(importlib.util.find_spec({module!r}) is None)"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def inspection_bench(cases: dict[str, tuple[str, str]] | None = None) -> list[dict[str, Any]]:
    """Run each case in a fresh Python process; report its seconds and the process's peak RSS.

    ``call_s`` times only the statement; ``peak_rss_mb`` is the whole process (Python, torch,
    the meta model), so compare it with the baseline row.
    """
    rows = []
    for name, (statement, module) in (cases or INSPECTION_CASES).items():
        if not _installed(module):
            rows.append({"case": name, "status": f"{module} not installed"})
            continue
        script = _CASE_SCRIPT.format(build=BUILD_MODEL, statement=statement)
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env=kernel_env(), timeout=900)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
            rows.append({"case": name, "status": f"failed: {last[:200]}"})
            continue
        rows.append({"case": name, "status": "ok", **json.loads(proc.stdout.splitlines()[-1])})
    return rows


def format_inspection(rows: list[dict[str, Any]]) -> str:
    """The inspection rows as a Markdown table (``build s``: import torch and build the model).

    >>> print(format_inspection([{"case": "f(m)", "status": "ok", "build_s": 1.0,
    ...       "call_s": 0.25, "peak_rss_mb": 350.0, "result": "42"},
    ...       {"case": "g(m)", "status": "g not installed"}]))
    | helper (5.3 B-parameter model on meta) | build s | call s | process peak MB | result |
    |---|---:|---:|---:|---|
    | f(m) | 1.0 | 0.250 | 350 | 42 |
    | g(m) | | | | g not installed |
    """
    lines = ["| helper (5.3 B-parameter model on meta) | build s | call s | process peak MB "
             "| result |", "|---|---:|---:|---:|---|"]
    for row in rows:
        if row["status"] != "ok":
            lines.append(f"| {row['case']} | | | | {row['status']} |")
        else:
            lines.append(f"| {row['case']} | {row['build_s']:.1f} | {row['call_s']:.3f} | "
                         f"{row['peak_rss_mb']:.0f} | {row['result']} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ command line


def _machine() -> dict[str, Any]:
    """This machine; its CPU and the kernels torch picks on it (AVX2, AVX-512...) set the
    rounding path, so they say which machines' training results compare with these."""
    import torch

    info = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in (info.read_text().splitlines() if info.exists()
             else []) if line.startswith("model name")]
    return {"cpu": names[0] if names else platform.processor() or "unknown",
            "python": platform.python_version(), "torch": torch.__version__,
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "platform": platform.platform(), "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "load_average": [round(x, 2) for x in os.getloadavg()]
            if hasattr(os, "getloadavg") else None}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m course_utils bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", default=list(DEFAULT_TARGETS),
                        help="notebooks or folders (default: notebooks solutions)")
    parser.add_argument("--runs", type=int, default=3, help="runs per notebook (default 3)")
    parser.add_argument("--only", metavar="PATTERN",
                        help="only notebooks whose path contains PATTERN")
    parser.add_argument("--json", type=Path, default=Path("results/bench.json"),
                        help="where to write the results (default results/bench.json)")
    parser.add_argument("--no-inspection", action="store_true",
                        help="skip timing count_params/layer_table on the huge model")
    parser.add_argument("--kernel", default=KERNEL_NAME, help=f"kernel (default {KERNEL_NAME})")
    parser.add_argument("--no-mutants", action="store_true",
                        help="skip grading the exercises' mutants (solutions/mutants/)")
    parser.add_argument("--no-grading", action="store_true",
                        help="skip timing the grader on 40 submissions of exercise 01 (only "
                        "timed on a full run: default targets, no --only)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def _run(args: argparse.Namespace, paths: list[Path]) -> dict[str, Any]:
    """Bench every notebook, then the optional phases; print as it goes; return the report."""
    results = []
    for path in paths:
        print(f"{path}: {args.runs} run(s) ...", end=" ", flush=True)
        results.append(bench_notebook(path, runs=args.runs, kernel_name=args.kernel))
        print(f"{results[-1].wall_s:.1f} s, {results[-1].peak_rss_mb:.0f} MB"
              + (f"  FAILED: {results[-1].error}" if results[-1].error else ""), flush=True)
    print("\n" + format_bench_table(results))
    inspection = [] if args.no_inspection else inspection_bench()
    if inspection:
        print("\n" + format_inspection(inspection))
    solved = {p.name for p in map(Path, paths) if p.parent.name == "solutions"}
    mutation = [] if args.no_mutants else [
        score_mutants(f) for f in mutant_files() if load_mutants(f).notebook in solved]
    if mutation:  # mutants caught by each exercise's tests (see tests/content/test_mutants.py)
        print("\n" + format_scores(mutation))
    grading = None
    full_run = args.only is None and list(args.targets) == list(DEFAULT_TARGETS)
    if full_run and not args.no_grading and Path("solutions", NOTEBOOK).exists():
        grading = grading_throughput()
        print("\n" + format_throughput(grading))
    report = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "runs": args.runs,
              "machine": _machine(), "notebooks": [r.to_dict() for r in results],
              "inspection": inspection, "grading": grading,
              "mutants": [{"notebook": m.notebook, "caught": m.caught, "total": m.total,
                           "solution_score": m.solution_score, "max_score": m.max_score}
                          for m in mutation]}
    return report


def _write(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwritten {path}")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    paths = select_notebooks(args.targets, args.only)
    if not paths:
        print(f"no notebook matches {args.targets} --only {args.only!r}", file=sys.stderr)
        return 2
    report = _run(args, paths)
    _write(report, args.json)
    over = [row["notebook"] for row in report["notebooks"] if row["problems"]]
    if over:
        print(f"{len(over)} notebook(s) failed or over budget: {', '.join(over)}", file=sys.stderr)
    return 1 if over else 0


NotebookResult = BenchResult  # kept for old imports
format_table = format_bench_table  # kept for old imports
