"""The trusted checks' files: ``solutions/probes/NN_topic.py``, read as text (pure).

A probe is a function marked ``@probe("qN_test", n=(1, 64), flag=[True, False])`` whose
parameters are ``observe``, ``seed`` and the drawn variables; ``trusted`` runs its body in
the learner's kernel and in the reference kernel and compares the results. A second function
marked ``@name.reference`` gives the reference kernel its own body (it also gets ``learner``,
the learner's result as JSON text). The file is parsed with ``ast`` and never imported by the
grader; ``probe`` exists so that the file is also valid Python for linters and editors.

>>> draw_values({"n": (4, 4), "flag": [True]}, random.Random(0))["flag"]
True
"""

from __future__ import annotations

import ast
import dataclasses
import random
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PROBES_DIR", "Probe", "probe", "load_probes", "draw_values"]

PROBES_DIR = "probes"


@dataclass(frozen=True)
class Probe:
    """One check of a question: the body of a function run in both kernels (``code``) with
    the values drawn for ``params``, and optionally the reference kernel's own body."""

    name: str
    params: tuple[str, ...]
    code: str
    vars: dict = field(default_factory=dict)
    reference: str = ""
    judge: bool = False
    repeat: int = 3
    rtol: float = 1e-5
    atol: float = 1e-6
    what: str = ""
    reasons: dict = field(default_factory=dict)  # a judge's reason keys -> the text shown


_OPTIONS = {"judge", "repeat", "rtol", "atol", "what", "reasons"}


def probe(test: str, **spec: Any) -> Any:
    """Mark a function in ``solutions/probes/*.py`` as a probe of ``test`` (the grader reads
    these files as text, never imports them). ``spec``: variables as ``(low, high)`` ints
    or ``[choices]``, and the options ``judge``, ``repeat``, ``rtol``, ``atol``, ``what`` and
    ``reasons`` (a judge returns one of its keys, and the learner sees its text: never text
    built from the learner's own data).

    >>> @probe("q1_test", n=(1, 9))
    ... def count(observe, seed, n):
    ...     return n
    >>> count.reference(len) is len
    True
    """
    def mark(function: Any) -> Any:
        function.reference = lambda other: other
        return function

    return mark


def _body(function: ast.FunctionDef, lines: list[str]) -> str:
    first = function.body[0]
    if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) \
            and isinstance(first.value.value, str) and len(function.body) > 1:
        first = function.body[1]  # a docstring is the maintainer's, not the kernel's
    return textwrap.dedent("\n".join(lines[first.lineno - 1:function.end_lineno]))


def load_probes(solutions: Path, notebook: str) -> dict[str, list[Probe]]:
    """The probes of every test cell of ``notebook``, from ``solutions/probes/<stem>.py``
    ({} when there is none), read with ``ast``: nothing in the file runs here."""
    path = Path(solutions) / PROBES_DIR / (Path(notebook).stem + ".py")
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    lines, found, bodies = text.split("\n"), {}, {}
    for node in ast.parse(text, str(path)).body:
        if not isinstance(node, ast.FunctionDef) or len(node.decorator_list) != 1:
            continue
        mark = node.decorator_list[0]
        where = f"{path.name}:{node.lineno} {node.name}"
        if isinstance(mark, ast.Attribute) and mark.attr == "reference":
            bodies[getattr(mark.value, "id", "")] = _body(node, lines)
            continue
        if not (isinstance(mark, ast.Call) and getattr(mark.func, "id", "") == "probe"):
            continue
        params = tuple(a.arg for a in node.args.args)
        test = ast.literal_eval(mark.args[0])
        spec = {k.arg: ast.literal_eval(k.value) for k in mark.keywords}
        options = {k: spec.pop(k) for k in _OPTIONS & set(spec)}
        if params[:2] != ("observe", "seed") or set(params[2:]) != set(spec):
            raise ValueError(f"{where}: the parameters must be observe, seed and the drawn "
                             f"variables {sorted(spec)}; got {list(params)}")
        found.setdefault(test, []).append(Probe(node.name, params, _body(node, lines), spec,
                                                **options))
    for tests in found.values():
        for i, one in enumerate(tests):
            if one.name in bodies:
                tests[i] = dataclasses.replace(one, reference=bodies[one.name])
    return found


def draw_values(spec: dict, rng: random.Random) -> dict[str, Any]:
    """One value per variable: ``(lo, hi)`` an int in that range, ``[...]`` one of the
    items; ``seed`` is always drawn."""
    values: dict[str, Any] = {"seed": rng.randrange(2**31)}
    for name, rule in spec.items():
        if isinstance(rule, list):
            values[name] = rng.choice(rule)
        else:
            low, high = rule
            values[name] = rng.randint(int(low), int(high))
    return values


