"""Sharded grading (``grade --shard I/N``) and ``grade merge``.

The end-to-end test grades four learners of lesson 01 (full marks, blank, partial,
unreadable plus a misnamed file) once without shards and once as three shards run at the
same time in separate processes, as a job array would, and checks that the merge is the
single run: same gradebook bytes, same feedback bytes, same results JSON except the
``seconds`` each test took (wall-clock time differs between any two runs). The merge itself
copies results byte for byte, which is checked too. The refusals are tested on small
outputs that a stand-in grader writes through the same ``sharded`` code path, with no kernel.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest

from course_utils.__main__ import main as cli
from course_utils.grading import gradebook, records, shard
from course_utils.grading import notebook_format as fmt
from course_utils.grading.cli import grade_main
from course_utils.grading.intake import learner_ids
from course_utils.grading.records import NotebookResult
from course_utils.grading.shard import Shard, ShardError, merge_outputs, shard_of

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "solutions"
NB01 = "01_layers_of_a_model.ipynb"
#: Learners whose names fall into shards 1, 2, 2 and 3 of 3 (checked below).
LEARNERS = {"ada": 1, "grace": 2, "barbara": 2, "alan": 3}


# ---------------------------------------------------------------- choosing the learners


def test_shard_of_is_pinned_so_every_machine_picks_the_same_learners() -> None:
    # sha256 of the UTF-8 name, big-endian, mod N, plus one: pinned so that a change of
    # scheme (which would split a class differently on two machines) fails here.
    assert {name: shard_of(name, 3) for name in LEARNERS} == LEARNERS
    assert shard_of("ada", 4) == int(hashlib.sha256(b"ada").hexdigest(), 16) % 4 + 1
    assert shard_of("Zoë", 7) == int(hashlib.sha256("Zoë".encode()).hexdigest(), 16) % 7 + 1


def test_every_learner_is_in_exactly_one_shard_and_a_new_learner_moves_nobody() -> None:
    roster = [f"learner{i:03d}" for i in range(300)]
    for n in (1, 2, 5):
        owners = {s: [i for i in range(1, n + 1) if Shard(i, n).owns(s)] for s in roster}
        assert all(len(found) == 1 for found in owners.values())
        sizes = [sum(1 for s in roster if shard_of(s, n) == i) for i in range(1, n + 1)]
        assert min(sizes) > 0.7 * len(roster) / n, sizes  # roughly even
    before = {s: shard_of(s, 4) for s in roster}
    grown = roster[:150] + ["newcomer", "late_joiner"] + roster[150:]
    assert all(shard_of(s, 4) == before[s] for s in grown if s in before)


@pytest.mark.parametrize(("text", "needle"), [
    ("0/4", "numbered 1 to 4"), ("5/4", "numbered 1 to 4"), ("2/0", "N must be"),
    ("2", "expected I/N"), ("a/b", "whole numbers"), ("1/4/2", "whole numbers"),
    ("-1/4", "numbered 1 to 4"),
])
def test_bad_shard_arguments_are_explained(text: str, needle: str) -> None:
    with pytest.raises(ShardError, match=needle):
        Shard.parse(text)


def test_the_grade_command_rejects_a_bad_shard_with_the_explanation(
        capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as stop:
        grade_main([str(tmp_path), "--out", str(tmp_path / "out"), "--shard", "0/4"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "1-based" in err and "JOB_COMPLETION_INDEX + 1" in err


# ---------------------------------------------------------------- refusals (no kernel)


def _submissions(root: Path, names: list[str]) -> Path:
    for name in names:
        (root / name).mkdir(parents=True)
        (root / name / NB01).write_text("{}")
    return root


def _fake_shard(subs: Path, out: Path, index: int, count: int, timeout: float = 60) -> Path:
    """A shard output from the real ``sharded`` wrapper and the real ``write_reports``
    around a stand-in grader (1 point of 2 for everyone)."""
    options = {"timeout": timeout, "memory_mb": 2048}
    with shard.sharded(Shard(index, count), subs, out, SOLUTIONS, options) as include:
        rows = [NotebookResult(student, NB01, 1.0, 2.0, "graded",
                               [records.TestResult("q1", 1.0, 2.0, "fail", "", 0.1)])
                for student in learner_ids(subs) if include(student)]
        gradebook.write_reports(rows, out, ["q1"], {NB01: {"q1": "assert q1"}}, learner_ids(subs))
    return out


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("fake")
    subs = _submissions(root / "subs", list(LEARNERS) + ["edsger", "donald"])
    return subs, [_fake_shard(subs, root / f"out{i}", i, 3) for i in (1, 2, 3)]


def test_the_shard_record_names_its_learners(fake: tuple[Path, list[Path]]) -> None:
    _, outs = fake
    records = [json.loads((out / "shard.json").read_text()) for out in outs]
    assert [(r["shard"], r["of"]) for r in records] == [(1, 3), (2, 3), (3, 3)]
    assert [r["students"] for r in records] == [["ada"], ["barbara", "grace"],
                                                ["alan", "donald", "edsger"]]
    assert len({r["solutions_sha256"] for r in records}) == 1
    assert records[0]["options"] == {"memory_mb": "2048", "timeout": "60"}


def test_a_merge_of_fake_shards_keeps_every_row_sorted(fake: tuple[Path, list[Path]],
                                                     tmp_path: Path) -> None:
    _, outs = fake
    assert merge_outputs(list(reversed(outs)), tmp_path / "merged") == []
    rows = list(csv.reader((tmp_path / "merged" / "grades.csv").open(newline="")))
    assert [r[0] for r in rows[1:]] == sorted(LEARNERS.keys() | {"edsger", "donald"})
    assert sorted(p.name for p in (tmp_path / "merged" / "feedback").iterdir()) == [r[0] for r in rows[1:]]
    assert [p.name for p in (tmp_path / "merged").iterdir() if p.is_file()] == ["grades.csv"]


@pytest.mark.parametrize(("pick", "needle"), [
    ([0, 1], r"missing shard\(s\) 3/3"),
    ([0, 1, 2, 1], r"overlapping shards: shard 2/3 appears 2 times"),
    ([], "no shard outputs"),
])
def test_missing_or_repeated_shards_are_refused(fake: tuple[Path, list[Path]], tmp_path: Path,
                                                pick: list[int], needle: str) -> None:
    _, outs = fake
    with pytest.raises(ShardError, match=needle):
        merge_outputs([outs[i] for i in pick], tmp_path / "merged")
    assert not (tmp_path / "merged").exists()  # nothing is written before the checks pass


def test_shards_of_another_split_other_options_or_other_solutions_are_refused(
        fake: tuple[Path, list[Path]], tmp_path: Path) -> None:
    subs, outs = fake
    other_n = _fake_shard(subs, tmp_path / "of4", 3, 4)
    with pytest.raises(ShardError, match=r"split the class differently.*shard 3/4"):
        merge_outputs([outs[0], outs[1], other_n], tmp_path / "m1")
    slower = _fake_shard(subs, tmp_path / "slow", 3, 3, timeout=600)
    with pytest.raises(ShardError, match="different grading options"):
        merge_outputs([outs[0], outs[1], slower], tmp_path / "m2")
    record = json.loads((outs[2] / "shard.json").read_text())
    record["solutions_sha256"] = "0" * 64
    edited = tmp_path / "edited"
    _fake_shard(subs, edited, 3, 3)
    (edited / "shard.json").write_text(json.dumps(record))
    with pytest.raises(ShardError, match="different solutions"):
        merge_outputs([outs[0], outs[1], edited], tmp_path / "m3")


def test_a_learner_in_two_shards_or_a_stray_result_is_refused(fake: tuple[Path, list[Path]],
                                                              tmp_path: Path) -> None:
    subs, outs = fake
    stray = _fake_shard(subs, tmp_path / "stray", 3, 3)
    (stray / "results" / "ada").mkdir()  # ada belongs to shard 1
    with pytest.raises(ShardError, match=r"shard 3/3 .* learners it did not grade: results/ada"):
        merge_outputs([outs[0], outs[1], stray], tmp_path / "m1")
    claimed = _fake_shard(subs, tmp_path / "claimed", 3, 3)
    record = json.loads((claimed / "shard.json").read_text())
    record["students"].append("ada")
    (claimed / "shard.json").write_text(json.dumps(record))
    with pytest.raises(ShardError, match="learner\\(s\\) of other shards: 'ada'"):
        merge_outputs([outs[0], outs[1], claimed], tmp_path / "m2")


def _copy_of(out: Path, target: Path) -> Path:
    shutil.copytree(out, target, symlinks=True)
    return target


def _rewrite_gradebook(out: Path, edit: Callable[[list[list[str]]], list[list[str]]]) -> None:
    table = gradebook.parse_csv(gradebook.read_gradebook_text(out))
    rows = edit(table[1:])
    (out / "grades.csv").write_bytes(gradebook.csv_text(table[0], rows).encode())


def test_a_gradebook_edited_against_its_own_results_is_refused(fake: tuple[Path, list[Path]],
                                                               tmp_path: Path) -> None:
    # issue 25: grades.csv edited to 11 while the shard's results JSON said 1
    _, outs = fake
    edited = _copy_of(outs[1], tmp_path / "edited")
    _rewrite_gradebook(edited, lambda rows: [[r[0], r[1], "11", *r[3:]] if r[0] == "grace" else r
                                             for r in rows])
    with pytest.raises(ShardError, match=r"shard 2/3 .*learner 'grace', notebook '01_layers.*"
                                         r"grades.csv says \['11'.* but results/grace/01_layers"):
        merge_outputs([outs[0], edited, outs[2]], tmp_path / "m1")
    status = _copy_of(outs[1], tmp_path / "status")
    _rewrite_gradebook(status, lambda rows: [[*r[:4], "tampered", *r[5:]] for r in rows])
    with pytest.raises(ShardError, match="learner 'barbara'.* says .*tampered"):
        merge_outputs([outs[0], status, outs[2]], tmp_path / "m2")
    assert not (tmp_path / "m1").exists() and not (tmp_path / "m2").exists()


def test_a_shard_that_drops_a_learner_is_refused(fake: tuple[Path, list[Path]],
                                                 tmp_path: Path) -> None:
    # issue 25: a shard silently dropped a learner (rows and pages gone, record intact)
    _, outs = fake
    dropped = _copy_of(outs[1], tmp_path / "dropped")
    _rewrite_gradebook(dropped, lambda rows: [r for r in rows if r[0] != "grace"])
    for kind in ("results", "feedback"):
        shutil.rmtree(dropped / kind / "grace")
    with pytest.raises(ShardError, match=r"shard 2/3 .*no grades.csv row for learner\(s\) 'grace'"):
        merge_outputs([outs[0], dropped, outs[2]], tmp_path / "m1")
    # ... and from its shard.json too: the class list every shard records still names her
    record = json.loads((dropped / "shard.json").read_text())
    record["students"].remove("grace")
    (dropped / "shard.json").write_text(json.dumps(record))
    with pytest.raises(ShardError, match=r"shard 2/3 .*does not list learner\(s\) 'grace'"):
        merge_outputs([outs[0], dropped, outs[2]], tmp_path / "m2")
    record["class"].remove("grace")
    (dropped / "shard.json").write_text(json.dumps(record))
    with pytest.raises(ShardError, match="different class lists"):
        merge_outputs([outs[0], dropped, outs[2]], tmp_path / "m3")


def test_a_results_file_with_no_row_is_refused(fake: tuple[Path, list[Path]],
                                               tmp_path: Path) -> None:
    _, outs = fake
    extra = _copy_of(outs[1], tmp_path / "extra")
    (extra / "results" / "grace" / "02_hidden.json").write_text("{}")
    with pytest.raises(ShardError, match="no grades.csv row accounts for: results/grace/02_hidden.json"):
        merge_outputs([outs[0], extra, outs[2]], tmp_path / "m")


@pytest.mark.parametrize("where", ["results/grace/01_layers_of_a_model.json", "results/grace",
                                   "feedback/secret.html", "shard.json", "notes.txt"])
def test_a_link_anywhere_in_a_shard_is_refused(fake: tuple[Path, list[Path]], tmp_path: Path,
                                               where: str) -> None:
    # issue 25: a symlink in results/ had merge copy a root-only file into the output, 0644
    _, outs = fake
    secret = tmp_path / "secret"
    secret.write_text('{"root only": true}')
    secret.chmod(0o600)
    linked = _copy_of(outs[1], tmp_path / "linked")
    path = linked / where
    if path.is_dir():
        shutil.rmtree(path)
    path.unlink(missing_ok=True)
    path.symlink_to(secret)
    with pytest.raises(ShardError, match=f"linked/{where} is a symbolic link"):
        merge_outputs([outs[0], linked, outs[2]], tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_a_pipe_or_a_hard_link_in_a_shard_is_refused(fake: tuple[Path, list[Path]],
                                                     tmp_path: Path) -> None:
    _, outs = fake
    piped = _copy_of(outs[1], tmp_path / "piped")
    os.mkfifo(piped / "feedback" / "grace" / "pipe.html")
    with pytest.raises(ShardError, match="pipe.html is a special file"):
        merge_outputs([outs[0], piped, outs[2]], tmp_path / "m1")
    linked = _copy_of(outs[1], tmp_path / "hard")
    os.link(linked / "results" / "grace" / "01_layers_of_a_model.json", tmp_path / "elsewhere")
    with pytest.raises(ShardError, match="01_layers_of_a_model.json has 2 hard links"):
        merge_outputs([outs[0], linked, outs[2]], tmp_path / "m2")


def test_the_merge_writes_its_own_files_whatever_the_umask_and_the_sources_mode(
        fake: tuple[Path, list[Path]], tmp_path: Path) -> None:
    _, outs = fake
    private = _copy_of(outs[1], tmp_path / "private")
    (private / "results" / "grace" / "01_layers_of_a_model.json").chmod(0o600)
    old = os.umask(0o077)
    try:
        merge_outputs([outs[0], private, outs[2]], tmp_path / "m")
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "m").rglob("*") if p.is_file()]
    assert len(files) == 1 + 2 * 6
    assert {stat.S_IMODE(p.lstat().st_mode) for p in files} == {0o644}


def test_look_alike_learners_in_two_shards_get_separate_folders(tmp_path: Path) -> None:
    names = ["Ada", "ada", "ADA", "adа"]
    assert len({shard_of(n, 2) for n in names}) == 2  # they fall into both shards
    subs = _submissions(tmp_path / "subs", names)
    outs = [_fake_shard(subs, tmp_path / f"out{i}", i, 2) for i in (1, 2)]
    merge_outputs(outs, tmp_path / "m")
    pages = [p.relative_to(tmp_path / "m").as_posix().lower() for p in (tmp_path / "m").rglob("*.json")]
    assert len(set(pages)) == len(names), pages  # distinct even on a case-insensitive disk
    notes = [json.loads(p.read_text())["notes"] for p in (tmp_path / "m").rglob("*.json")]
    assert all(any("looks like yours" in n for n in found) for found in notes), notes


def test_unsharded_outputs_and_a_used_target_are_refused(fake: tuple[Path, list[Path]],
                                                         tmp_path: Path) -> None:
    _, outs = fake
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ShardError, match="no shard.json"):
        merge_outputs([outs[0], plain], tmp_path / "m1")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "old.txt").write_text("x")
    with pytest.raises(ShardError, match="not empty"):
        merge_outputs(outs, tmp_path / "used")


def test_a_shard_whose_grading_failed_has_no_record(fake: tuple[Path, list[Path]],
                                                   tmp_path: Path) -> None:
    subs, _ = fake
    out = _fake_shard(subs, tmp_path / "again", 2, 3)  # an earlier, finished run
    options = {"timeout": 60, "memory_mb": 2048}
    with pytest.raises(RuntimeError), shard.sharded(Shard(2, 3), subs, out, SOLUTIONS, options):
        raise RuntimeError("the machine went away while grading")
    assert not (out / "shard.json").exists()
    with pytest.raises(ShardError, match="no shard.json"):
        merge_outputs([out], tmp_path / "m")


def test_grade_merge_on_the_command_line_reports_a_refusal(
        fake: tuple[Path, list[Path]], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _, outs = fake
    code = cli(["grade", "merge", str(outs[0]), str(outs[2]), "--out", str(tmp_path / "m")])
    assert code == 2
    assert "missing shard(s) 2/3" in capsys.readouterr().err


# ---------------------------------------------------------------- end to end, with kernels


def _put(folder: Path, data: bytes | nbformat.NotebookNode, name: str = NB01) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    text = data if isinstance(data, bytes) else nbformat.writes(data).encode("utf-8")
    (folder / name).write_bytes(text)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _without_seconds(data: bytes) -> bytes:
    return re.sub(rb'("seconds": )[-+0-9.eE]+', rb"\g<1>0", data)


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One unsharded run and three shards, as four processes running at the same time."""
    root = tmp_path_factory.mktemp("sharded")
    subs = root / "submissions"
    solution = nbformat.read(SOLUTIONS / NB01, as_version=4)
    exercise = nbformat.read(ROOT / "exercises" / NB01, as_version=4)
    partial = nbformat.read(ROOT / "exercises" / NB01, as_version=4)
    for cell in partial.cells:
        if fmt.grade_id(cell) == "q1_answer":
            cell.source = next(c.source for c in solution.cells if fmt.grade_id(c) == "q1_answer")
    _put(subs / "ada", solution)
    _put(subs / "grace", exercise)
    _put(subs / "grace", b"{}", "01_layers_of_a_model (1).ipynb")  # unknown_notebook
    _put(subs / "barbara", b'{"cells": [')  # unreadable
    _put(subs / "alan", partial)
    before = _tree(subs)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    outs = {"single": root / "single", **{f"shard{i}": root / f"shard{i}" for i in (1, 2, 3)}}
    commands = {name: [sys.executable, "-m", "course_utils", "grade", str(subs), "--out", str(out),
                       "--timeout", "60", *([] if name == "single" else
                                            ["--shard", f"{name[-1]}/3"])]
                for name, out in outs.items()}
    processes = {name: subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
                 for name, command in commands.items()}
    for name, process in processes.items():
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, f"{name}: {' '.join(commands[name])}\n{output}"
    assert _tree(subs) == before  # submissions are never modified
    outs["merged"] = root / "merged"
    assert cli(["grade", "merge", *(str(outs[f"shard{i}"]) for i in (3, 1, 2)),
                "--out", str(outs["merged"])]) == 0
    return outs


@pytest.mark.slow
def test_each_shard_graded_only_its_own_learners(graded: dict[str, Path]) -> None:
    for i in (1, 2, 3):
        record = json.loads((graded[f"shard{i}"] / "shard.json").read_text())
        owned = sorted(s for s, n in LEARNERS.items() if n == i)
        assert record["students"] == owned
        assert sorted(p.name for p in (graded[f"shard{i}"] / "results").iterdir()) == owned


@pytest.mark.slow
def test_three_merged_shards_are_the_single_run(graded: dict[str, Path]) -> None:
    single, merged = _tree(graded["single"]), _tree(graded["merged"])
    assert sorted(merged) == sorted(single)
    assert merged["grades.csv"] == single["grades.csv"]
    modes = {name: stat.S_IMODE((graded[name] / "grades.csv").stat().st_mode)
             for name in ("single", "merged")}
    assert modes["merged"] == modes["single"], modes  # the atomic write keeps the usual mode
    rows = list(csv.DictReader(single["grades.csv"].decode().splitlines()))
    assert {(r["student_id"], r["status"]) for r in rows} == {
        ("ada", "graded"), ("alan", "graded"), ("barbara", "unreadable"),
        ("grace", "graded"), ("grace", "unknown_notebook")}
    scores = {r["student_id"]: float(r["score"]) for r in rows if r["notebook"] == NB01}
    assert scores["ada"] == float(rows[0]["max_score"]) > scores["alan"] > scores["grace"] == 0
    for name, data in single.items():
        if name.startswith("feedback/"):
            assert merged[name] == data, name
        elif name.startswith("results/"):
            assert _without_seconds(merged[name]) == _without_seconds(data), name


@pytest.mark.slow
def test_the_merge_copies_each_shards_files_byte_for_byte(graded: dict[str, Path]) -> None:
    merged = _tree(graded["merged"])
    copied = 0
    for i in (1, 2, 3):
        for name, data in _tree(graded[f"shard{i}"]).items():
            if name.startswith(("results/", "feedback/")):
                assert merged[name] == data, name
                copied += 1
    assert copied == sum(1 for name in merged if name.startswith(("results/", "feedback/")))
