"""Grade a large class in shards (``grade --shard I/N``) and merge them (``grade merge``).

    python -m course_utils grade SUBMISSIONS --out OUT_I --shard I/N     # once per I = 1..N
    python -m course_utils grade merge OUT_1 OUT_2 ... OUT_N --out MERGED

A learner belongs to shard ``sha256(student_id) mod N + 1`` (shards are numbered from 1,
as Slurm's ``--array=1-N``). The hash depends only on the learner's folder name, so every
machine picks the same learners, and adding or removing a learner moves nobody else.

A sharded run grades its learners' folders (and roster entries) with the ordinary grader and writes
``OUT/shard.json``: which shard it is, every learner it owned (``students``), every learner of
the class (``class``), a digest of the solutions and the grading options. ``merge`` checks
every shard before it writes anything, and refuses, naming the outputs and learners, shards
of different N, a missing or repeated shard, a learner in two shards, outputs graded with
other solutions, options or class lists; a shard whose ``grades.csv`` is not what the grader
writes from its own results JSON, that lacks a learner its record (or the class) gives it,
or holds a file no row accounts for; and any symbolic link, special file or hard-linked file
in a shard. It reads files without following links and creates each file it writes
(``gradebook.read_output_file``, ``write_new_file``). The merged ``grades.csv`` (written
last, atomically), ``results/`` and ``feedback/`` are what one unsharded run gives.

The command lines are ``cli``'s: the functions here take explicit arguments and print nothing.

>>> Shard.parse("2/4")
Shard(index=2, count=4)
>>> shard_of("ada", 1)
1
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat

from course_utils.grading import gradebook
from course_utils.grading.gradebook import FIXED_COLUMNS, GRADEBOOK, PER_LEARNER, write_atomically
from course_utils.grading.intake import learner_folders, learner_ids, shown_name

__all__ = [
    "MANIFEST", "SCHEME", "ShardError", "Shard", "shard_of", "learner_folders",
    "solutions_digest", "sharded", "summary", "merge_outputs", "write_atomically",
]

MANIFEST = "shard.json"
SCHEME = "sha256(student_id utf-8) mod N, numbered 1..N"


class ShardError(ValueError):
    """A shard that cannot be graded or merged; the message says which and why."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"`` -> Shard; ShardError explaining the format otherwise.

        >>> Shard.parse("0/4")
        Traceback (most recent call last):
        ...
        course_utils.grading.shard.ShardError: --shard 0/4: shards are numbered 1 to 4 \
(1-based, like Slurm's --array=1-4). From a 0-based index such as Kubernetes' \
JOB_COMPLETION_INDEX pass $((JOB_COMPLETION_INDEX + 1))/4.
        """
        index, _, count = text.strip().partition("/")
        try:
            shard = cls(int(index), int(count))
        except ValueError:
            raise ShardError(f"--shard {text!r}: expected I/N with whole numbers, e.g. 2/4 for "
                             "the second of four shards") from None
        if shard.count < 1:
            raise ShardError(f"--shard {text}: N must be a whole number >= 1, e.g. 2/4")
        if not 1 <= shard.index <= shard.count:
            raise ShardError(
                f"--shard {text}: shards are numbered 1 to {shard.count} (1-based, like Slurm's "
                f"--array=1-{shard.count}). From a 0-based index such as Kubernetes' "
                f"JOB_COMPLETION_INDEX pass $((JOB_COMPLETION_INDEX + 1))/{shard.count}.")
        return shard

    def owns(self, student_id: str) -> bool:
        return shard_of(student_id, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_argument(text: str) -> Shard:
    """``Shard.parse`` for argparse (its own message instead of 'invalid value')."""
    try:
        return Shard.parse(text)
    except ShardError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def shard_of(student_id: str, count: int) -> int:
    """The shard (1..count) a learner belongs to; the same on every machine.

    >>> [shard_of(name, 3) for name in ("ada", "grace", "alan")]
    [1, 2, 3]
    """
    digest = hashlib.sha256(student_id.encode("utf-8")).digest()
    return int.from_bytes(digest, "big") % count + 1


def solutions_digest(solutions: Path) -> str:
    """sha256 of what grading reads from ``solutions/*.ipynb``: names, cell types, sources
    and metadata (outputs and execution times left out, so re-running a solution keeps it)."""
    canonical = []
    for path in sorted(Path(solutions).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        cells = [[c.cell_type, c.source, {k: v for k, v in c.metadata.items() if k != "execution"}]
                 for c in nb.cells]
        canonical.append([path.name, cells])
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@contextmanager
def sharded(shard: Shard | None, submissions: Path, out: Path, solutions: Path,
            options: Mapping[str, object], roster: Iterable[str] = ()
            ) -> Iterator[Callable[[str], bool] | None]:
    """Which learners ``grade`` should grade: ``None`` (all of them) without a ``shard``;
    with one, a predicate true for the shard's learners, and ``OUT/shard.json`` afterwards.

    ``options`` are the grading options that change a grade (every shard must agree on them);
    ``roster`` the student ids of the roster, whose absent learners get a row too.
    Nothing is copied: the grader itself skips the other learners, so a submission folder
    is read exactly as an unsharded run reads it (special files included)."""
    if shard is None:
        yield None
        return
    names = learner_ids(submissions, roster)
    record = {
        "shard": shard.index, "of": shard.count, "scheme": SCHEME,
        "students": [n for n in names if shard.owns(n)], "class": names,
        "solutions_sha256": solutions_digest(solutions),
        "options": {k: str(v) for k, v in sorted(options.items())},
    }
    manifest = Path(out) / MANIFEST
    manifest.unlink(missing_ok=True)  # until this run succeeds, merge refuses the folder
    yield shard.owns
    manifest.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(manifest, json.dumps(record, indent=1, ensure_ascii=False) + "\n")


def summary(out: Path) -> str:
    """One line about the shard graded into ``out`` and how to merge it."""
    record = json.loads((Path(out) / MANIFEST).read_text(encoding="utf-8"))
    return (f"shard {record['shard']}/{record['of']}: {len(record['students'])} learner(s); merge "
            f"with `python -m course_utils grade merge OUT_1 ... OUT_{record['of']} --out MERGED`")


# ------------------------------------------------------------------------------ merging


@dataclass
class _Part:
    """One shard's output folder, its manifest and its gradebook."""

    folder: Path
    shard: Shard
    manifest: dict
    header: list[str]
    rows: list[list[str]]
    files: list[tuple[str, ...]]

    def __str__(self) -> str:
        return f"shard {self.shard} ({self.folder})"


def _read(folder: Path, name: str) -> str:
    try:
        return gradebook.read_output_file(folder, (name,)).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as error:
        raise ShardError(f"{folder / name}: cannot be read as the grader writes it ({error})") from None


def _load(folder: Path) -> _Part:
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not folder.is_dir():
        raise ShardError(f"{folder}: not a folder")
    try:  # nothing is read until no link and no special file is left anywhere in it
        files = gradebook.output_files(folder)
    except (OSError, ValueError) as error:
        raise ShardError(f"{folder}: {error}. A grading output holds only files the grader "
                         "wrote; grade that shard again into an empty folder") from None
    if (MANIFEST,) not in files:
        raise ShardError(f"{folder}: no {MANIFEST}, so it is not the output of "
                         "`grade --shard I/N` (an unsharded output needs no merge)")
    try:
        manifest = json.loads(_read(folder, MANIFEST))
        shard = Shard.parse(f"{manifest['shard']}/{manifest['of']}")
        students, everyone = manifest["students"], manifest["class"]
        if not all(isinstance(s, str) for s in [*students, *everyone]):
            raise TypeError("student ids must be strings")
    except KeyError as error:
        raise ShardError(f"{manifest_path}: not a shard record of this version (no {error}); "
                         "grade every shard with this version of the grader") from None
    except (ValueError, TypeError) as error:
        raise ShardError(f"{manifest_path}: not a shard record ({error})") from None
    if manifest.get("scheme") != SCHEME:
        raise ShardError(f"{manifest_path}: learners were assigned with {manifest.get('scheme')!r}, "
                         f"this version assigns {SCHEME!r}; grade every shard with one version")
    strays = [s for s in students if shard_of(s, shard.count) != shard.index]
    strays += [f"{s} (not in its class)" for s in students if s not in everyone]
    if strays:
        raise ShardError(f"{manifest_path} lists learner(s) of other shards: "
                         f"{', '.join(map(repr, strays[:10]))}; the record was edited or corrupted")
    path = gradebook.gradebook_path(folder)
    if (GRADEBOOK,) not in files:
        raise ShardError(f"{folder}: no {GRADEBOOK}; did that shard's grading finish?")
    text = _read(folder, GRADEBOOK)  # the \r\n endings kept
    table = gradebook.parse_csv(text)
    if not table:
        raise ShardError(f"{path}: empty, not even a header row")
    header, rows = table[0], table[1:]
    if header[:len(FIXED_COLUMNS)] != list(FIXED_COLUMNS) or any(len(row) != len(header) for row in rows):
        raise ShardError(f"{path}: not the grader's columns ({', '.join(FIXED_COLUMNS)}, then "
                         "one per question) on every row; was it edited?")
    if gradebook.csv_text(header, rows) != text:
        raise ShardError(f"{path}: not written the way the grader writes gradebooks, so a "
                         "merge could not reproduce it; was it edited?")
    return _Part(folder, shard, manifest, header, rows, files)


def _check(parts: list[_Part]) -> None:
    """Refuse shards that do not make up exactly one grading run; nothing is written yet."""
    def listing(items: list[_Part]) -> str:
        return "; ".join(map(str, items))

    if len({p.shard.count for p in parts}) > 1:
        raise ShardError(f"the outputs split the class differently: {listing(parts)}. "
                         "Merge the N outputs of one --shard I/N run")
    count = parts[0].shard.count
    for key, what in (("solutions_sha256", "solutions"), ("options", "grading options"),
                      ("class", "class lists (submissions/ and roster)")):
        values = [json.dumps(p.manifest.get(key), sort_keys=True) for p in parts]
        if len(set(values)) > 1:
            detail = "; ".join(f"{p}: {v[:200]}" for p, v in zip(parts, values))
            raise ShardError(f"the shards were graded with different {what}, so their grades do "
                             f"not compare: {detail}. Grade every shard with the same ones")
    by_index: dict[int, list[_Part]] = {}
    for p in parts:
        by_index.setdefault(p.shard.index, []).append(p)
    repeated = {i: ps for i, ps in by_index.items() if len(ps) > 1}
    if repeated:
        raise ShardError("overlapping shards: " + "; ".join(
            f"shard {i}/{count} appears {len(ps)} times ({', '.join(str(p.folder) for p in ps)})"
            for i, ps in sorted(repeated.items())))
    missing = [i for i in range(1, count + 1) if i not in by_index]
    if missing:
        raise ShardError(f"missing shard(s) {', '.join(f'{i}/{count}' for i in missing)}; got "
                         f"{listing(sorted(parts, key=lambda p: p.shard.index))}. Grade the "
                         "missing shard(s) and merge again")
    owner: dict[str, _Part] = {}
    for p in parts:
        for student in p.manifest["students"]:
            if student in owner:
                raise ShardError(f"overlapping shards: learner {student!r} is in {owner[student]} "
                                 f"and in {p}")
            owner[student] = p
    everyone = parts[0].manifest["class"]
    for p in parts:
        if p.header != parts[0].header:
            raise ShardError(f"the gradebooks have different columns: {parts[0]} has "
                             f"{parts[0].header}, {p} has {p.header}")
        listed = set(p.manifest["students"])
        dropped = [s for s in everyone if p.shard.owns(s) and s not in listed]
        if dropped:
            raise ShardError(f"{p} does not list learner(s) {', '.join(map(repr, dropped[:10]))} "
                             f"of its class in its {MANIFEST}; was it edited? Grade that shard again")
        _check_rows(p, everyone)


def _check_rows(p: _Part, everyone: list[str]) -> None:
    """The shard's gradebook, its results JSON and its files tell one story, learner by learner."""
    students = set(p.manifest["students"])
    rows = [(gradebook.cell_text(row[0]), gradebook.cell_text(row[1]), row) for row in p.rows]
    strays = sorted({student for student, _, _ in rows} - students)
    paths = gradebook.page_paths(((s, nb, row[4]) for s, nb, row in rows), everyone)
    folders = gradebook.page_folders(everyone)
    mine = {folders[s] for s in students}
    strays += sorted(f"{folder}/{shown_name(child.name)}" for folder in PER_LEARNER
                     if (p.folder / folder).is_dir()
                     for child in (p.folder / folder).iterdir() if child.name not in mine)
    if strays:
        raise ShardError(f"{p} holds results of learners it did not grade: "
                         f"{', '.join(strays[:10])}; grade each shard into an empty folder")
    absent = sorted(students - {student for student, _, _ in rows})
    if absent:
        raise ShardError(f"{p} has no {GRADEBOOK} row for learner(s) {', '.join(map(repr, absent[:10]))} "
                         f"that its {MANIFEST} lists; was a learner removed? Grade that shard again")
    files = {"/".join(f) for f in p.files if f[0] in PER_LEARNER}
    expected = set()
    for student, notebook, row in rows:
        where = f"{p}: learner {student!r}, notebook {notebook!r}"
        if not notebook:
            if row != gradebook.record_row({"student_id": student, "notebook": "", "score": 0,
                                            "max_score": 0, "status": "missing", "tests": []},
                                           p.header[len(FIXED_COLUMNS):]):
                raise ShardError(f"{where}: a row without a notebook that is not a 'missing' row "
                                 f"with no points ({row[2:5]}); was {GRADEBOOK} edited?")
            continue
        result, page = paths[student, notebook]
        expected |= {result, page}
        if result not in files or page not in files:
            if row[4] == "grader_error" and row[2] == "0" and result not in files and page not in files:
                continue  # its pages could not be written; the row says so
            raise ShardError(f"{where}: {result} or {page} is missing; grade that shard again")
        try:
            record = json.loads(gradebook.read_output_file(p.folder, tuple(result.split("/"))))
            said = gradebook.record_row(record, p.header[len(FIXED_COLUMNS):])
        except (ValueError, KeyError, TypeError) as error:
            raise ShardError(f"{where}: {result} is not a result record ({error})") from None
        if said != row:
            raise ShardError(f"{where}: {GRADEBOOK} says {row[2:]} but {result} says {said[2:]} "
                             f"(score, max_score, status, points); one was edited. Grade that shard again")
    extra = sorted(files - expected)
    if extra:
        raise ShardError(f"{p} holds file(s) no {GRADEBOOK} row accounts for: {', '.join(extra[:10])}; "
                         "grade each shard into an empty folder")


def _copy_tree(part: _Part, target: Path, origin: dict[Path, str]) -> None:
    """Copy the shard's ``results/`` and ``feedback/`` into ``target``: bytes read without
    following a link, written to files created here (``FILE_MODE``); two shards never write
    the same file."""
    for parts in part.files:
        if parts[0] not in PER_LEARNER:
            continue
        destination = target.joinpath(*parts)
        source = f"{part.folder}/{'/'.join(parts)}"
        if destination in origin:
            raise ShardError(f"{source} and {origin[destination]} would both become {destination}")
        origin[destination] = source
        try:
            data = gradebook.read_output_file(part.folder, parts)
        except ValueError as error:
            raise ShardError(f"{part}: {error}; it changed during the merge") from None
        destination.parent.mkdir(parents=True, exist_ok=True)
        gradebook.write_new_file(destination, data)


def merge_outputs(outputs: list[Path], out: Path) -> list[str]:
    """Merge the shard outputs into ``out`` (a new or empty folder); returns warnings."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ShardError(f"{out} already exists and is not empty; merge into a new folder")
    if not outputs:
        raise ShardError("no shard outputs given")
    parts = [_load(folder) for folder in outputs]
    _check(parts)
    warnings = []
    skipped = sorted({shown_name(f[0]) for p in parts for f in p.files
                      if f[0] not in (MANIFEST, GRADEBOOK, *PER_LEARNER)})
    if skipped:
        warnings.append(f"not merged: {', '.join(skipped)} (files of a single shard; for the "
                        f"class report run `python -m course_utils report {out}`)")
    out.mkdir(parents=True, exist_ok=True)
    origin: dict[Path, str] = {}
    for p in parts:
        _copy_tree(p, out, origin)
    rows = sorted((row for p in parts for row in p.rows), key=lambda row: (row[0], row[1]))
    write_atomically(gradebook.gradebook_path(out), gradebook.csv_text(parts[0].header, rows))
    return warnings
