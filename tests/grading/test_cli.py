"""The command lines: ``grade`` with its listed sub-command ``merge``, and ``report``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from course_utils.__main__ import main as cli
from course_utils.grading import cli as grading_cli


def test_grade_help_lists_the_merge_sub_command(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        cli(["grade", "--help"])
    out = capsys.readouterr().out
    assert stop.value.code == 0
    assert "grade merge OUT_1 ... OUT_N --out MERGED" in out.split("\n\n")[0]  # the usage
    assert "merge" in out.split("positional arguments:")[1].split("options:")[0]
    assert "--notebook-timeout" in out and "--shard I/N" in out
    with pytest.raises(SystemExit) as stop:
        cli(["grade", "merge", "--help"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith("usage: python -m course_utils grade merge")


@pytest.mark.parametrize("argv", [
    ["SUBS", "--out", "OUT", "--jobs", "3"],
    ["--jobs", "3", "SUBS", "--out", "OUT"],
    ["--out", "OUT", "--jobs", "3", "SUBS"],
])
def test_options_may_come_before_or_after_the_submissions(argv: list[str]) -> None:
    args = grading_cli.grade_parser().parse_args(argv)
    assert (args.command, args.submissions, args.out, args.jobs) == (
        None, Path("SUBS"), Path("OUT"), 3)


def test_merge_is_parsed_by_its_own_parser() -> None:
    args = grading_cli.grade_parser().parse_args(["merge", "a", "b", "--out", "m"])
    assert (args.command, args.outputs, args.out) == ("merge", [Path("a"), Path("b")], Path("m"))


def test_grade_without_out_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        cli(["grade", str(tmp_path)])
    assert stop.value.code == 2
    assert "the following arguments are required: --out" in capsys.readouterr().err


def test_a_shard_of_nobody_records_the_grading_options(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    """No learner, so no kernel: the command line's options reach the shard record."""
    (tmp_path / "subs").mkdir()
    out = tmp_path / "out"
    assert cli(["grade", str(tmp_path / "subs"), "--out", str(out), "--shard", "1/2",
                "--timeout", "30", "--jobs", "2", "--no-sandbox"]) == 0
    record = json.loads((out / "shard.json").read_text())
    assert record["options"] == {"memory_mb": "2048", "no_sandbox": "True",
                                 "notebook_timeout": "600.0", "timeout": "30.0"}
    assert record["students"] == []
    printed = capsys.readouterr().out
    assert "shard 1/2: 0 learner(s); merge with" in printed and "0 row(s)" in printed
    header, *rows = (out / "grades.csv").read_text().splitlines()
    assert header.startswith("student_id,notebook,score,max_score,status,q1_test") and rows == []
