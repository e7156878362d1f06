"""Learner and file names: one reversible escape, look-alike keys, and file names that never clash.

A folder's name becomes the learner's gradebook id with ``shown_name``: text that can be written
anywhere. Bytes that are not UTF-8 become ``\\xNN`` and a backslash itself becomes ``\\x5c``, so
every backslash of an id starts an escape, ``original_name`` undoes it, and no two folders
share an id (a folder literally named ``bad\\xfename`` is ``bad\\x5cxfename``). Ordinary names
(UTF-8, no backslash) are their own id, as before.

Two ids can still be one file where the output lives: ``Ada`` and ``ada`` on a case-insensitive
file system, or ``Zoë`` in two Unicode forms on macOS. ``lookalike_key`` folds what a file
system or a reader's eye would take for the same name (Unicode NFKC, case, spaces at the
ends, invisible characters, a short table of Cyrillic and Greek letters that look Latin);
``file_names`` keeps each name as its own file name unless it shares its key with another
name of the class (or is no portable file name), and gives those ``<letters>~<hex of the
name's UTF-8>`` instead: lower-case ASCII, unique, never another name. ``lookalikes`` lists the
groups, so the grader can flag them: they stay separate learners, since it must not guess.

>>> shown_name(os.fsdecode(b"bad\\xfename")), shown_name("bad\\\\xfename")
('bad\\\\xfename', 'bad\\\\x5cxfename')
>>> lookalike_key("Ad\\u0430 "), lookalike_key("a\\u200bda")
('ada', 'ada')
>>> file_names(["ada", "Ada", "grace"])
{'Ada': 'ada~416461', 'ada': 'ada~616461', 'grace': 'grace'}
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Iterable

__all__ = ["shown_name", "original_name", "lookalike_key", "lookalikes", "file_names",
           "LOOKALIKE_NOTE"]

#: The note on each row of a learner whose name looks like another's (it names nobody else:
#: learners read their notes; the instructor report lists the names).
LOOKALIKE_NOTE = ("another learner's folder name looks like yours (it differs only in case, "
                  "spaces, invisible characters or look-alike letters); you are graded as "
                  "separate learners, and your instructor is asked to check which is whose")

_ESCAPE = re.compile(r"\\(?:x([0-9a-f]{2})|u([0-9a-f]{4}))")
#: Cyrillic and Greek letters that look like Latin ones (Unicode's confusables are many more).
_HOMOGLYPHS = str.maketrans("аеорсухіјѕԁһԛԝвкмнтАВЕКМНОРСТУХІЈЅαβεικνορτυχΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
                            "aeopcyxijsdhqwbkmhtABEKMHOPCTYXIJSabeikvoptuxABEZHIKMNOPTYX")
_INVISIBLE = {0x034F, 0x115F, 0x1160, 0x3164, 0xFFA0, *range(0xFE00, 0xFE10)}
_NOT_PORTABLE = set('<>:"|?*\\/~')
_MAX_BYTES = 200


def shown_name(name: str) -> str:
    """A file or folder name as text that can be written anywhere, one to one: bytes that
    are not UTF-8 become ``\\xNN``, a backslash ``\\x5c`` (a lone surrogate ``\\uNNNN``).

    >>> shown_name("ada"), shown_name(os.fsdecode(b"x\\xff.ipynb"))
    ('ada', 'x\\\\xff.ipynb')
    """
    try:
        text = os.fsencode(name).decode("utf-8", "surrogateescape")
    except UnicodeError:  # a lone surrogate that no file system name decodes to
        text = name
    parts = []
    for char in text:
        code = ord(char)
        if char == "\\":
            parts.append("\\x5c")
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8 (surrogateescape)
            parts.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            parts.append(f"\\u{code:04x}")
        else:
            parts.append(char)
    return "".join(parts)


def original_name(shown: str) -> str:
    """The name ``shown_name`` escaped, as ``os.listdir`` gives it (its inverse).

    >>> os.fsencode(original_name("bad\\\\xfename")), original_name("a\\\\x5cb")
    (b'bad\\xfename', 'a\\\\b')
    """
    def back(match: re.Match) -> str:
        if match[1]:
            value = int(match[1], 16)
            return "\\" if value == 0x5C else chr(0xDC00 + value)
        return chr(int(match[2], 16))

    text = _ESCAPE.sub(back, shown)
    return os.fsdecode(text.encode("utf-8", "surrogateescape"))


def lookalike_key(name: str) -> str:
    """What is left of ``name`` once the differences a reader (or a case-insensitive,
    normalising file system) does not see are removed: NFKC, invisible characters,
    look-alike Cyrillic and Greek letters, case, spaces and dots at the ends.

    >>> lookalike_key("Zoe\\u0308"), lookalike_key("ADA\\ufeff. ")
    ('zoë', 'ada')
    """
    text = unicodedata.normalize("NFKC", name)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf" and ord(c) not in _INVISIBLE)
    text = unicodedata.normalize("NFKC", text.translate(_HOMOGLYPHS).upper().casefold())
    return text.strip().rstrip(".").strip()


def lookalikes(names: Iterable[str]) -> list[list[str]]:
    """The groups of two or more different names with one ``lookalike_key``, sorted.

    >>> lookalikes(["ada", "ada ", "Ada", "grace"])
    [['Ada', 'ada', 'ada ']]
    """
    groups: dict[str, set[str]] = {}
    for name in names:
        groups.setdefault(lookalike_key(name), set()).add(name)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def _portable(name: str) -> bool:
    """A name that is the same file on any file system (given its key is unique)."""
    return (name not in ("", ".", "..") and not _NOT_PORTABLE & set(lookalike_key(name) + name)
            and not any(unicodedata.category(c) in ("Cc", "Cs") for c in name)
            and len(name.encode("utf-8", "surrogatepass")) <= _MAX_BYTES)


def _encoded(name: str) -> str:
    letters = "".join(c for c in lookalike_key(name) if c.isascii() and c.isalnum())[:40]
    data = name.encode("utf-8", "surrogatepass")
    digits = data.hex() if len(data) <= 80 else "~" + hashlib.sha256(data).hexdigest()
    return f"{letters}~{digits}"


def file_names(names: Iterable[str], keep: Iterable[str] = ()) -> dict[str, str]:
    """Name -> the file name it gets: itself, unless another name has its ``lookalike_key``
    or it is no portable file name; then ``<letters>~<hex>``. A name in ``keep`` (say, the
    exercise whose look-alike a learner handed in) stays itself if it is its group's only one.

    >>> file_names(["01.ipynb", "01.IPYNB", "a:b"], keep=["01.ipynb"])
    {'01.IPYNB': '01ipynb~30312e4950594e42', '01.ipynb': '01.ipynb', 'a:b': 'ab~613a62'}
    """
    names, keep = sorted(set(names)), set(keep)
    keys: dict[str, list[str]] = {}
    for name in names:
        keys.setdefault(lookalike_key(name), []).append(name)
    chosen = {}
    for name in names:
        group = keys[lookalike_key(name)]
        alone = len(group) == 1 or (name in keep and sum(n in keep for n in group) == 1)
        chosen[name] = name if alone and _portable(name) else _encoded(name)
    return chosen
