"""Measured figures on the website: tables rendered from ``book/measured/*.json``, never typed.

A page asks for a table with a fenced block naming a data file and a section::

    ```{measured} bench.json notebooks
    ```

``book/build.py`` replaces each block, in the staged copy of the page, with a Markdown table and
a line saying when, where, at which commit and under what load it was measured. An unknown
file or section stops the build. The data files are refreshed from a fresh measurement with
``record`` (``python book/build.py --record results/bench.json --commit HASH``), never edited
by hand, so the prose refers to the tables and no number in it can go stale.

>>> print(render("Before.\\n```{measured} x.json nothing\\n```\\nAfter.", {"x.json": {}}))
Traceback (most recent call last):
...
KeyError: "book/measured/x.json has no section 'nothing' (a page asks for it)"
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "measured"
BLOCK = re.compile(r"^```\{measured\} (?P<file>\S+) (?P<section>\S+)[ \t]*\n```[ \t]*$", re.MULTILINE)

Section = dict[str, Any]
NAMES = {"python": "Python", "jupyterhub": "JupyterHub", "cpu": "CPU",
         "torch_cpu_capability": "torch CPU kernels"}


def _cell(text: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(head: list[str], align: str, rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(head) + " |", align]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def provenance(measured: Section) -> str:
    """One line: when, at which commit, on what machine, under what load, with which command.

    >>> provenance({"date": "2026-12-02", "commit": "a38b253", "machine": {"cpus": 2,
    ...             "python": "3.11"}, "load_average": 1.5, "command": "make bench"})
    '*Measured on 2026-12-02 at commit `a38b253`, 2 cores, Python 3.11, load average 1.5, with `make bench`.*'
    """
    machine = dict(measured.get("machine", {}))
    parts = [f"{machine.pop('cpus')} cores"] if "cpus" in machine else []
    if "memory_gb" in machine:
        parts.append(f"{machine.pop('memory_gb'):g} GB")
    parts += [machine.pop("platform")] if "platform" in machine else []
    parts += [f"{NAMES.get(name, name)} {value}" for name, value in machine.items()]
    load = measured.get("load_average")
    parts.append(f"load average {load:g}" if load is not None else "load average not recorded")
    if measured.get("load"):
        parts[-1] += f" ({measured['load']})"
    text = f"*Measured on {measured['date']} at commit `{measured['commit']}`, {', '.join(parts)}"
    if measured.get("command"):
        runs = measured.get("runs")
        text += f", with `{measured['command']}`" + (f", {runs} run{'s' * (runs != 1)} each" if runs else "")
    return text + ".*"


# --- bench.json: what `make bench` measures ----------------------------------------------------

def notebooks_table(section: Section) -> str:
    """The notebooks' wall time, peak memory and slowest cell (``make bench``'s own table)."""
    rows, over = [], 0
    for r in section["rows"]:
        slow = r.get("slowest_cell") or {}
        cell = (f"[{slow['execution_count']}] {slow['first_line']}", f"{slow['seconds']:.1f}") \
            if slow else ("", "")
        budget = f"{r['budget']['seconds']:g} s, {r['budget']['memory_mb']:g} MB"
        over += bool(r["problems"])
        rows.append([r["notebook"], f"{r['wall_s_median']:.1f}", f"{r['peak_rss_mb']:.0f}", *cell, budget,
                     "; ".join(r["problems"]) or "ok"])
    total = sum(r["wall_s_median"] for r in section["rows"])
    peak = max(r["peak_rss_mb"] for r in section["rows"])
    verdict = f"{over} over budget or failed" if over else "all within budget"
    rows.append([f"**total ({len(section['rows'])} notebooks)**", f"**{total:.1f}**", f"**{peak:.0f} (max)**",
                 "", "", "", f"**{verdict}**"])
    text = _table(["notebook", "wall s", "peak MB", "slowest cell", "cell s", "budget", "verdict"],
                  "|---|---:|---:|---|---:|---|---|", rows)
    return text + _provenance_and(section, "busy", (
        " For comparison, on a busy machine `{notebook}` took {wall_s:g} s under a load average of "
        "about {load_average:g} ({date}, commit `{commit}`)."))


def _provenance_and(section: Section, key: str, sentence: str) -> str:
    """The section's provenance line, then ``sentence`` filled from ``section[key]`` if present.

    >>> section = {"measured": {"date": "2026-12-03", "commit": "8bc1a15"}, "x": {"n": 3}}
    >>> _provenance_and(section, "x", " n is {n}.")[-12:], _provenance_and(section, "y", "")[-2:]
    ('ed.* n is 3.', '.*')
    """
    extra = section.get(key)
    return "\n\n" + provenance(section["measured"]) + (sentence.format(**extra) if extra else "")


def inspection_table(section: Section) -> str:
    """The inspection helpers on a 5.3-billion-parameter model built on ``meta``."""
    rows = [[r["case"], "", "", "", r["status"]] if r["status"] != "ok" else
            [r["case"], f"{r['build_s']:.1f}", f"{r['call_s']:.3f}", f"{r['peak_rss_mb']:.0f}", r["result"]]
            for r in section["rows"]]
    head = ["helper (5.3 B-parameter model on meta)", "build s", "call s", "process peak MB", "result"]
    return _table(head, "|---|---:|---:|---:|---|", rows) + "\n\n" + provenance(section["measured"])


def _load(row: Section) -> str:
    shown = f"{row['load_average'][0]:.1f}" if row.get("load_average") else ""
    return f"{shown} ({row['load']})" if shown and row.get("load") else shown or row.get("load", "")


def grading_table(section: Section) -> str:
    """The grader's throughput: each measurement, oldest first, and the budget."""
    rows = [[r["grader"], r["notebooks"], r["jobs"], f"{r['seconds']:.1f}",
             f"{r['seconds'] * r['jobs'] / max(1, r['notebooks']):.2f}", _load(r), r["date"],
             f"`{r['commit']}`"] for r in section["rows"]]
    text = _table(["grader", "notebooks", "--jobs", "seconds", "s per notebook per job", "load average",
                   "date", "commit"], "|---|---:|---:|---:|---:|---|---|---|", rows)
    budget = section.get("budget")
    if budget:
        base = next(r for r in section["rows"]
                    if r["grader"] == budget["grader"] and r["load"] == budget["load"])
        text += (f"\n\n**Budget:** {budget['factor']:g} × the {budget['grader']} grader's {budget['load']} "
                 f"time ({base['seconds']:.1f} s) = **{budget['factor'] * base['seconds']:.1f} s** for "
                 f"{base['notebooks']} notebooks with `--jobs {base['jobs']}`.")
    return text


def mutants_table(section: Section) -> str:
    """Mutants caught per exercise, and the solution's own score."""
    rows = [[r["notebook"].removesuffix(".ipynb"), f"{r['caught']}/{r['total']}",
             f"{r['solution_score']:g}/{r['max_score']:g}"] for r in section["rows"]]
    caught, total = (sum(r[k] for r in section["rows"]) for k in ("caught", "total"))
    rows.append(["**total**", f"**{caught}/{total}**", ""])
    text = _table(["exercise", "mutants caught", "solution"], "| --- | --- | --- |", rows)
    return text + _provenance_and(section, "timing", (
        " Grading {mutants} mutants of exercises {exercises} took {seconds:g} s on a {load} ({date}, "
        "commit `{commit}`)."))


# --- workshop-load.json: what `make workshop-load` measures ---------------------------------

def capacity_table(data: Section) -> str:
    """The load test's capacity table, one row per class size (as ``deploy/load_test.py`` prints it)."""
    rows = [[r["learners"], r["finished"], r["cells"], r["failed_cells"], f"{r['cell_p50_s']:.2f}",
             f"{r['cell_p95_s']:.2f}", f"{r['start_p50_s']:.1f} / {r['start_max_s']:.1f}",
             f"{r['check_p50_s']:.1f}", f"{r['rss_per_learner_mb']:.0f}", f"{r['uss_per_learner_mb']:.0f}",
             f"{r['total_rss_gb']:.2f}", f"{r['total_uss_gb']:.2f}",
             f"{r['cpu_s_per_learner']:.0f} / {r['learner_wall_s']:.0f} s", f"{r['load_avg_max']:.1f}"]
            for r in data["rows"]]
    head = ["learners", "finished", "cells run", "failed cells", "cell p50 s", "cell p95 s",
            "start-up p50 / max s", "check s", "RSS per learner MB", "USS per learner MB", "total RSS GB",
            "total USS GB", "CPU s per learner", "load avg (max)"]
    text = _table(head, "|" + "---:|" * len(head), rows) + "\n\n" + provenance(data["measured"])
    text += f" Think time {data['think_s']:g} s."
    if data.get("earlier_run"):
        e = data["earlier_run"]
        text += (f" An earlier run under heavier outside load (load average {e['load_average']}) gave "
                 f"{e['cpu']}, p95 latencies of {e['cell_p95_s'][0]:g} to {e['cell_p95_s'][1]:g} s and up to "
                 f"{e['rss_per_learner_mb_max']:g} MB per learner.")
    return text


def sizing_rule(data: Section) -> str:
    """The rule the load test printed, what it means on the measured machine and for 30 learners,
    and the measurements behind it (the lines the load test prints under the rule).

    >>> print(sizing_rule({"rule": "Sizing rule: 7 learners per core and 0.8 GB of memory per "
    ...     "learner (plus 1 GB for the system and the hub).",
    ...     "measured": {"machine": {"cpus": 2, "memory_gb": 24}}}))  # doctest: +NORMALIZE_WHITESPACE
    **Sizing rule** (printed by the load test): **plan 7 learners per core and 0.8 GB of memory per
    learner, plus 1 GB for the system and the hub.** On the measured machine (2 cores, 24 GB) the rule
    allows 2 × 7 = 14 learners by CPU and (24 − 1) / 0.8 ≈ 28 by memory, so **14 learners**. For a
    class of 30, rent 5 cores and 25 GB (30 / 7 ≈ 4.3 cores; 30 × 0.8 + 1 GB).
    """
    found = re.search(r"(\d+) learners per core and ([\d.]+) GB of memory per learner", data["rule"])
    if found is None:
        raise ValueError(f"not a sizing rule of deploy/load_test.py: {data['rule']!r}")
    per_core, gb = int(found[1]), float(found[2])
    cores, memory = data["measured"]["machine"]["cpus"], data["measured"]["machine"]["memory_gb"]
    by_cpu, by_memory = cores * per_core, math.floor((memory - 1) / gb + 1e-9)
    holds = min(by_cpu, by_memory)
    return (f"**Sizing rule** (printed by the load test): **plan {per_core} learners per core and {gb:g} "
            f"GB of memory per learner, plus 1 GB for the system and the hub.** On the measured machine "
            f"({cores} cores, {memory:g} GB) the rule allows {cores} × {per_core} = {by_cpu} learners by CPU "
            f"and ({memory:g} − 1) / {gb:g} ≈ {by_memory} by memory, so **{holds} learners**. "
            f"For a class of 30, rent {math.ceil(30 / per_core)} cores and {30 * gb + 1:g} GB "
            f"(30 / {per_core} ≈ {30 / per_core:.1f} cores; 30 × {gb:g} + 1 GB)."
            + "".join(f"\n- {line.strip()}" for line in data["rule"].splitlines()[1:]))


RENDERERS: dict[tuple[str, str], Callable[[Section], str]] = {
    ("bench.json", "notebooks"): lambda d: notebooks_table(d["notebooks"]),
    ("bench.json", "inspection"): lambda d: inspection_table(d["inspection"]),
    ("bench.json", "grading"): lambda d: grading_table(d["grading"]),
    ("bench.json", "mutants"): lambda d: mutants_table(d["mutants"]),
    ("workshop-load.json", "capacity"): capacity_table,
    ("workshop-load.json", "rule"): sizing_rule,
}


def load(folder: Path = DATA) -> dict[str, Section]:
    """Every data file of ``folder``, by file name."""
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}


def render(text: str, data: dict[str, Section] | None = None) -> str:
    """``text`` with each ``{measured}`` block replaced by its table."""
    data = load() if data is None else data

    def table(match: re.Match[str]) -> str:
        file, section = match["file"], match["section"]
        if (file, section) not in RENDERERS:
            raise KeyError(f"book/measured/{file} has no section {section!r} (a page asks for it)")
        return RENDERERS[file, section](data[file])

    return BLOCK.sub(table, text)


# --- refreshing the data from a new measurement -------------------------------------------

def _measured(report: Section, commit: str, command: str) -> Section:
    machine = {k: v for k, v in report.get("machine", {}).items() if k != "load_average"}
    load = (report.get("machine") or {}).get("load_average")
    return {"date": report.get("created", "")[:10], "commit": commit, "machine": machine,
            "load_average": load[0] if load else None, "runs": report.get("runs"), "command": command}


def _this_machine() -> Section:
    """This machine, for a report that does not record it (load tests before 2026-12-03)."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpus": os.cpu_count(), "memory_gb": round(memory), "python": platform.python_version()}


def record(report_path: Path, commit: str, folder: Path = DATA) -> Path:
    """Fold a fresh ``results/bench.json`` (``make bench``) or ``results/workshop-load.json``
    (``make workshop-load``) into ``folder``; returns the data file it rewrote.

    A bench report replaces the sections it measured (notebooks; inspection and mutants when
    it ran them) and adds its grading throughput as the newest row of that table.
    """
    report = json.loads(report_path.read_text(encoding="utf-8"))
    if "notebooks" in report:
        target = folder / "bench.json"
        data = json.loads(target.read_text(encoding="utf-8"))
        measured = _measured(report, commit, "make bench")
        data["notebooks"] = {"measured": measured, "rows": report["notebooks"]}
        if report.get("inspection"):
            data["inspection"] = {"measured": measured, "rows": report["inspection"]}
        if report.get("mutants"):
            data["mutants"] = {"measured": measured, "rows": report["mutants"]}
        if report.get("grading"):
            kind = "sandboxed" if report["grading"]["sandboxed"] else "unsandboxed"
            row = dict(report["grading"], grader=kind, date=measured["date"], commit=commit)
            row["load_average"] = row.get("load_average") and row["load_average"][:1]
            data["grading"]["rows"].append(row)
    elif "rule" in report and "rows" in report:
        target = folder / "workshop-load.json"
        data = json.loads(target.read_text(encoding="utf-8"))
        data.update(rows=report["rows"], rule=report["rule"], think_s=report["think_s"])
        data.pop("earlier_run", None)
        data["measured"] = {"date": report.get("created", time.strftime("%Y-%m-%d"))[:10],
                            "commit": commit, "machine": report.get("machine") or _this_machine(),
                            "load_average": None,
                            "load": "the last column gives its highest value during each class size",
                            "command": "make workshop-load"}
    else:
        raise ValueError(f"{report_path} is neither a make bench nor a make workshop-load report")
    target.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return target
