"""The lesson map (course_utils.lessons): number, title and time of every lesson."""

from __future__ import annotations

from pathlib import Path

import nbformat

from course_utils.lessons import lesson_map


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
