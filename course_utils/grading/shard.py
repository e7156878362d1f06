"""Grade a large class in shards (``grade --shard I/N``) and merge them (``grade merge``).

    python -m course_utils grade SUBMISSIONS --out OUT_I --shard I/N     # once per I = 1..N
    python -m course_utils grade merge OUT_1 OUT_2 ... OUT_N --out MERGED

A learner belongs to shard ``sha256(student_id) mod N + 1`` (shards are numbered from 1,
as Slurm's ``--array=1-N``). The hash depends only on the learner's folder name, so every
machine picks the same learners, and adding or removing a learner moves nobody else.

A sharded run grades its learners' folders (and roster entries) with the ordinary grader and writes
``OUT/shard.json``: which shard it is, every learner it owned, a digest of the solutions and
the grading options. ``merge`` checks those records before it writes anything, and refuses,
naming the outputs and learners, shards of different N, a missing or repeated shard,
a learner in two shards, and outputs graded with other solutions or other options. The
merged ``grades.csv`` (written last, atomically), ``results/`` and ``feedback/`` are what one
unsharded run gives.

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
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat

from course_utils.grading import gradebook
from course_utils.grading.gradebook import GRADEBOOK, PER_LEARNER, write_atomically
from course_utils.grading.intake import learner_entries, learner_folders, shown_name

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
    names = [shown_name(p.name) for p in learner_entries(submissions)] + list(roster)
    record = {
        "shard": shard.index, "of": shard.count, "scheme": SCHEME,
        "students": sorted({n for n in names if shard.owns(n)}),
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

    def __str__(self) -> str:
        return f"shard {self.shard} ({self.folder})"


def _load(folder: Path) -> _Part:
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not folder.is_dir():
        raise ShardError(f"{folder}: not a folder")
    if not manifest_path.is_file():
        raise ShardError(f"{folder}: no {MANIFEST}, so it is not the output of "
                         "`grade --shard I/N` (an unsharded output needs no merge)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        shard = Shard.parse(f"{manifest['shard']}/{manifest['of']}")
        students = manifest["students"]
    except (ValueError, KeyError, TypeError) as error:
        raise ShardError(f"{manifest_path}: not a shard record ({error})") from None
    if manifest.get("scheme") != SCHEME:
        raise ShardError(f"{manifest_path}: learners were assigned with {manifest.get('scheme')!r}, "
                         f"this version assigns {SCHEME!r}; grade every shard with one version")
    strays = [s for s in students if shard_of(s, shard.count) != shard.index]
    if strays:
        raise ShardError(f"{manifest_path} lists learner(s) of other shards: "
                         f"{', '.join(map(repr, strays[:10]))}; the record was edited or corrupted")
    path = gradebook.gradebook_path(folder)
    if not path.is_file():
        raise ShardError(f"{folder}: no {GRADEBOOK}; did that shard's grading finish?")
    text = gradebook.read_gradebook_text(folder)  # the \r\n endings kept
    table = gradebook.parse_csv(text)
    if not table:
        raise ShardError(f"{path}: empty, not even a header row")
    header, rows = table[0], table[1:]
    if any(len(row) < 2 for row in rows):
        raise ShardError(f"{path}: a row without student_id and notebook; was it edited?")
    if gradebook.csv_text(header, rows) != text:
        raise ShardError(f"{path}: not written the way the grader writes gradebooks, so a "
                         "merge could not reproduce it; was it edited?")
    return _Part(folder, shard, manifest, header, rows)


def _check(parts: list[_Part]) -> None:
    """Refuse shards that do not make up exactly one grading run; nothing is written yet."""
    def listing(items: list[_Part]) -> str:
        return "; ".join(map(str, items))

    if len({p.shard.count for p in parts}) > 1:
        raise ShardError(f"the outputs split the class differently: {listing(parts)}. "
                         "Merge the N outputs of one --shard I/N run")
    count = parts[0].shard.count
    for key, what in (("solutions_sha256", "solutions"), ("options", "grading options")):
        values = [json.dumps(p.manifest.get(key), sort_keys=True) for p in parts]
        if len(set(values)) > 1:
            detail = "; ".join(f"{p}: {v}" for p, v in zip(parts, values))
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
    for p in parts:
        if p.header != parts[0].header:
            raise ShardError(f"the gradebooks have different columns: {parts[0]} has "
                             f"{parts[0].header}, {p} has {p.header}")
        strays = sorted({row[0] for row in p.rows} - set(p.manifest["students"]))
        strays += sorted(
            f"{folder}/{child.name}" for folder in PER_LEARNER if (p.folder / folder).is_dir()
            for child in (p.folder / folder).iterdir()
            if child.name not in p.manifest["students"])
        if strays:
            raise ShardError(f"{p} holds results of learners it did not grade: "
                             f"{', '.join(strays[:10])}; grade each shard into an empty folder")


def _copy_tree(source: Path, target: Path, origin: dict[Path, Path]) -> None:
    """Copy ``source`` into ``target``; two shards never write the same file."""
    for path in sorted(source.rglob("*")):
        if path.is_dir():
            continue
        destination = target / path.relative_to(source)
        if destination in origin:
            raise ShardError(f"{path} and {origin[destination]} would both become {destination}")
        origin[destination] = path
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)


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
    skipped = sorted({child.name for p in parts for child in p.folder.iterdir()
                      if child.is_file() and child.name not in (MANIFEST, GRADEBOOK)})
    if skipped:
        warnings.append(f"not merged: {', '.join(skipped)} (files of a single shard; for the "
                        f"class report run `python -m course_utils report {out}`)")
    out.mkdir(parents=True, exist_ok=True)
    origin: dict[Path, Path] = {}
    for p in parts:
        for child in sorted(p.folder.iterdir()):
            if child.is_dir():
                _copy_tree(child, out / child.name, origin)
    rows = sorted((row for p in parts for row in p.rows), key=lambda row: (row[0], row[1]))
    write_atomically(gradebook.gradebook_path(out), gradebook.csv_text(parts[0].header, rows))
    return warnings
