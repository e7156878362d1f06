"""Learner ids and file names: one to one whatever the bytes, look-alikes found.

The red team's attack: a folder named literally like the grader's escape of another
learner's non-UTF-8 name (``bad\\xfename`` next to ``b"bad\\xfe" + b"name"``) got the same
gradebook id. ``shown_name`` is checked on those names and on random byte strings: no two
names share an id, and ``original_name`` gives each name back.
"""

from __future__ import annotations

import os
import random
import unicodedata

from course_utils.grading.intake import shown_name
from course_utils.grading.names import file_names, lookalike_key, lookalikes, original_name

#: Names that look like each other's escapes, or like nothing at all.
ADVERSARIAL = [os.fsdecode(b) for b in (
    b"bad\xfename", b"bad\\xfename", b"bad\\\\xfename", b"bad\\x5cxfename", b"bad\\", b"\\",
    b"\\\\", b"\\x", b"\\xZZ", b"\\xff", b"\xff", b"\\u00ff", b"\xc3\xbf", b"\xed\xa0\x80",
    b"\\udcff", b"ada", b"Ada", b"ADA", b"ada ", b"a\xe2\x80\x8bda", b"ad\xd0\xb0", b"~",
    b"ada~616461", b"'=1", b"=1", b"..", b"a:b", b"\x01", b"\xf0\x9f\x98\x80",
)]


def _random_names(count: int, seed: int = 25) -> list[str]:
    rng = random.Random(seed)
    alphabet = [b"\\", b"x", b"f", b"e", b"5", b"c", b"~", b"a", b"A", b" ", b"\xff", b"\xfe",
                b"\xc3", b"\xa9", b"\xe2\x80\x8b", b"\xd0\xb0", b"u", b"0", b"'"]
    names = set()
    while len(names) < count:
        if rng.random() < 0.5:  # any bytes a file name can hold (no NUL, no slash)
            raw = bytes(rng.choice([b for b in range(1, 256) if b != 0x2F])
                        for _ in range(rng.randint(1, 12)))
        else:  # the pieces escapes are made of, so that near-collisions are likely
            raw = b"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
        names.add(os.fsdecode(raw))
    return sorted(names)


def test_the_red_teams_folders_get_two_ids() -> None:
    other = os.fsdecode(b"bad\xfename")
    assert shown_name(other) == "bad\\xfename"  # today's id of a non-UTF-8 name is kept
    assert shown_name("bad\\xfename") != shown_name(other)


def test_ids_are_one_to_one_and_reversible_on_adversarial_and_random_names() -> None:
    for names in (ADVERSARIAL, _random_names(20_000)):
        ids = [shown_name(n) for n in names]
        assert len(set(ids)) == len(set(names)), "two names share one id"
        assert all(original_name(i) == n for i, n in zip(ids, names))
        assert all(i.encode("utf-8") for i in ids)  # every id is valid text


def test_ordinary_names_are_their_own_id() -> None:
    for name in ("ada", "Zoë", "李雷", "o'brien", "ada lovelace", "a-b_c.d", "=HYPERLINK(1)"):
        assert shown_name(name) == name


def _as_one_file(name: str) -> list[str]:
    """What case-insensitive, normalising file systems (macOS, Windows) compare of a file
    name (more than they do: Unicode case folding, NFD, upper case, trailing spaces)."""
    return [unicodedata.normalize("NFD", name.upper().casefold()).rstrip(" ."), name.lower()]


def test_file_names_never_clash_even_on_a_case_insensitive_file_system() -> None:
    for names in ([shown_name(n) for n in ADVERSARIAL],
                  [shown_name(n) for n in _random_names(3_000, seed=7)],
                  ["Ada", "ada", "ADA", "Zoë", unicodedata.normalize("NFD", "Zoë"), "ß", "ss"]):
        chosen = file_names(names)
        files = list(chosen.values())
        for fold in (0, 1):
            assert len({_as_one_file(f)[fold] for f in files}) == len(names), "two names, one file"
        assert all(f not in ("", ".", "..") and "/" not in f and "\\" not in f for f in files)
        assert all(len(f.encode()) <= 255 for f in files)


def test_a_class_of_ordinary_distinct_names_keeps_its_folders() -> None:
    names = ["ada", "grace", "Zoë", "alan_turing", "learner007", "o'brien"]
    assert file_names(names) == {n: n for n in names}


def test_the_five_look_alike_folders_are_one_group() -> None:
    five = ["ada", "ada ", "Ada", "ad\u0430", "a\u200bda"]  # trailing space, case, Cyrillic, ZWSP
    assert len({lookalike_key(n) for n in five}) == 1
    assert lookalikes([*five, "grace", "adam"]) == [sorted(five)]
    assert len(set(file_names(five).values())) == 5
