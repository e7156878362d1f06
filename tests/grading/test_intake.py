"""What was handed in: reading a notebook safely, rosters, and which entries are learners."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from course_utils.grading.intake import (
    learner_entries,
    learner_folders,
    learner_ids,
    learner_notebooks,
    read_roster,
    read_submission,
    unknown_notebook,
)


def test_intake_refuses_what_is_not_a_regular_notebook(tmp_path: Path) -> None:
    good = {"cells": [{"cell_type": "code", "source": ["x = 1\n", "y = 2"], "metadata": {},
                       "outputs": [], "execution_count": None}],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
            "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "good.ipynb").write_text(json.dumps(good))
    assert read_submission(tmp_path / "good.ipynb").cells[0].source == "x = 1\ny = 2"
    cases = {
        "kernelspec.ipynb": (dict(good, metadata={"kernelspec": "python3"}), "kernelspec"),
        "source.ipynb": (dict(good, cells=[dict(good["cells"][0], source=7)]), "source"),
        "cells.ipynb": (dict(good, cells={"a": 1}), "cells must be a list"),
        "nbformat.ipynb": (dict(good, nbformat=3), "nbformat must be 4"),
    }
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_text(json.dumps(data))
        with pytest.raises(ValueError, match=reason):
            read_submission(tmp_path / name)
    (tmp_path / "link.ipynb").symlink_to(tmp_path / "good.ipynb")
    os.mkfifo(tmp_path / "fifo.ipynb")
    (tmp_path / "deep.ipynb").write_text("[" * 100_000 + "]" * 100_000)
    for name, reason in (("link.ipynb", "symbolic link"), ("fifo.ipynb", "regular file"),
                         ("deep.ipynb", "JSON")):
        with pytest.raises(ValueError, match=reason):
            read_submission(tmp_path / name)
    (tmp_path / "big.ipynb").write_bytes(b" " * 1000)
    with pytest.raises(ValueError, match="limit"):
        read_submission(tmp_path / "big.ipynb", limit=100)


def test_rosters_skip_headers_comments_and_blank_lines(tmp_path: Path) -> None:
    (tmp_path / "roster.csv").write_text("student_id,name\n# a comment\nada,Ada\n\ngrace\n")
    assert read_roster(tmp_path / "roster.csv") == ["ada", "grace"]


@pytest.fixture
def submissions(tmp_path: Path) -> Path:
    root = tmp_path / "subs"
    for name in ("ada", "grace", "empty", ".hidden"):
        (root / name).mkdir(parents=True)
    (root / "ada" / "01.ipynb").write_text("{}")
    (root / "ada" / "02.ipynb").write_text("{}")
    (root / "grace" / "01.ipynb").write_text("{}")
    (root / "empty" / "notes.txt").write_text("no notebook here")
    (root / "stray.txt").write_text("a file, not a learner's folder")
    (root / "linked").symlink_to(root / "ada")
    return root


def test_one_definition_of_which_entries_are_learners(submissions: Path) -> None:
    assert [p.name for p in learner_entries(submissions)] == [
        "ada", "empty", "grace", "linked", "stray.txt"]
    assert [p.name for p in learner_folders(submissions)] == ["ada", "empty", "grace"]


def test_every_learner_gets_a_task_or_a_missing_row(submissions: Path) -> None:
    tasks, missing = learner_notebooks(submissions, ["ada", "alan"])
    assert [(s, p.name) for s, p in tasks] == [("ada", "01.ipynb"), ("ada", "02.ipynb"),
                                               ("grace", "01.ipynb")]
    notes = {r.student_id: r.notes for r in missing}
    assert all(r.status == "missing" and r.notebook == "" for r in missing)
    assert list(notes) == ["empty", "linked", "stray.txt", "alan"]
    assert notes["empty"] == ["no notebook (*.ipynb) in the folder; found: notes.txt"]
    assert "not a folder" in notes["linked"][0] and "not a folder" in notes["stray.txt"][0]
    assert notes["alan"] == ["on the roster, but no folder was handed in"]


def test_include_keeps_only_some_learners_and_their_roster_entries(submissions: Path) -> None:
    tasks, missing = learner_notebooks(submissions, ["alan", "zoe"],
                                       include=lambda s: s in {"grace", "zoe"})
    assert [(s, p.name) for s, p in tasks] == [("grace", "01.ipynb")]
    assert [r.student_id for r in missing] == ["zoe"]


def test_an_unknown_notebook_names_the_expected_ones(tmp_path: Path) -> None:
    row = unknown_notebook("ada", tmp_path / os.fsdecode(b"x\xff.ipynb"), ["01.ipynb", "02.ipynb"])
    assert (row.status, row.notebook, row.score) == ("unknown_notebook", "x\\xff.ipynb", 0.0)
    assert "expected one of: 01.ipynb, 02.ipynb" in row.notes[0]


def test_a_folder_named_like_anothers_escape_is_another_learner(tmp_path: Path) -> None:
    # issue 25: b"bad\xfe" + b"name" is shown as bad\xfename; a folder literally named so
    # got the same id, and one learner's results overwrote the other's
    for raw in (b"bad\xfename", b"bad\\xfename", b"bad\\x5cxfename"):
        (tmp_path / os.fsdecode(raw)).mkdir()
        (tmp_path / os.fsdecode(raw) / "01.ipynb").write_text("{}")
    tasks, missing = learner_notebooks(tmp_path, [])
    ids = [student for student, _ in tasks]
    assert len(set(ids)) == 3 and not missing, ids
    assert "bad\\xfename" in ids  # the non-UTF-8 name keeps today's id
    assert learner_ids(tmp_path, ["bad\\xfename"]) == sorted(ids)  # the roster, escaped alike
