"""Lessons make the learner think: predict-first prompts, and answers to "Check yourself".

COURSE.md: before each key reveal a "Predict first" prompt asks for a guess; every
"Check yourself" question has its answer in a collapsible ``<details>`` cell. Every lesson
listed in ``LESSONS`` follows it; add a lesson once it does.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
LESSONS = sorted(p for p in (ROOT / "notebooks").glob("0[0-9]_*.ipynb"))
PROMPT = "**Predict first.**"


def _cells(path: Path) -> list:
    return nbformat.read(path, as_version=4).cells


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_three_or_more_predictions_each_with_a_place_for_the_guess(path: Path) -> None:
    cells = _cells(path)
    prompts = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and PROMPT in c.source]
    assert len(prompts) >= 3, f"{path.name}: {len(prompts)} 'Predict first' prompts, want ≥ 3"
    for i in prompts:
        guess, reveal = cells[i + 1], cells[i + 2]
        assert guess.cell_type == "code" and guess.source.startswith("my_guess = ..."), (
            f"{path.name}: cell {i + 1} should be a `my_guess = ...` cell after the prompt")
        assert reveal.cell_type == "code" or PROMPT not in reveal.source, (
            f"{path.name}: the prompt in cell {i} has no reveal after its guess cell")


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_every_check_yourself_question_has_an_answer(path: Path) -> None:
    cells = _cells(path)
    [where] = [i for i, c in enumerate(cells)
               if c.cell_type == "markdown" and "## Check yourself" in c.source]
    questions = re.findall(r"^(\d+)\. ", cells[where].source.split("## Check yourself")[1],
                           re.MULTILINE)
    answers = cells[where + 1] if where + 1 < len(cells) else None
    assert answers is not None and answers.cell_type == "markdown", (
        f"{path.name}: no answers cell after Check yourself")
    found = re.findall(r"<details><summary>Answer (\d+)</summary>", answers.source)
    assert found == questions and len(questions) >= 3, (
        f"{path.name}: questions {questions} but answers {found}")
    assert answers.source.count("</details>") == len(found)


# Issue 19: say less. Each lesson keeps to its story within these limits (lesson 00 is a map).
MAX_WORDS = {"00_start_here.ipynb": 1_200}
DEFAULT_MAX_WORDS, MAX_CELLS = 2_500, 65


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_stays_within_its_word_and_cell_targets(path: Path) -> None:
    cells = _cells(path)
    words = sum(len(c.source.split()) for c in cells if c.cell_type == "markdown")
    limit = MAX_WORDS.get(path.name, DEFAULT_MAX_WORDS)
    assert words <= limit, f"{path.name}: {words:,} words of markdown, the target is ≤ {limit:,}"
    assert len(cells) <= MAX_CELLS, f"{path.name}: {len(cells)} cells, the target is ≤ {MAX_CELLS}"
