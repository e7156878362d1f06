"""Build ``exercises/`` from ``solutions/`` (``python -m course_utils build``).

For each solution notebook: solution regions become nbgrader's stub, hidden tests are
removed, outputs cleared, nbgrader's lock flags and checksums added, and the cells that
call a stubbed name are tagged ``raises-exception``. The output is deterministic: building
twice gives identical bytes, and :func:`stale_exercises` says which files are out of date.

    python -m course_utils build                       # every solution -> exercises/
    python -m course_utils build solutions/01_layers_of_a_model.ipynb --out /tmp/ex
"""

from __future__ import annotations

import argparse
import ast
import copy
import sys
from pathlib import Path

import nbformat
from IPython.core.inputtransformer2 import TransformerManager

from course_utils._paths import KERNELSPEC, ROOT
from course_utils.grading import notebook_format as fmt

__all__ = [
    "ROOT", "RAISES_TAG", "BuildError", "solution_problems", "build_exercise", "raising_cells",
    "exercise_bytes", "build_all", "stale_exercises", "main",
]

RAISES_TAG = "raises-exception"
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


class BuildError(fmt.NotebookFormatError):
    """A solution notebook cannot be turned into an exercise."""


def _where(index: int, cell: dict) -> str:
    return f"cell {index} (grade_id {fmt.grade_id(cell)!r})"


def _python(source: str) -> ast.Module:
    """Parse a cell as IPython would run it (``%magics`` and ``!shell`` become calls)."""
    return ast.parse(TransformerManager().transform_cell(source))


def _stub_problems(stubbed: str) -> list[str]:
    """A stub must sit inside a function body, so the answer cell itself runs."""
    try:
        tree = _python(stubbed)
    except SyntaxError as error:
        return [f"after replacing the solution by the stub the cell is not valid Python "
                f"(line {error.lineno}: {error.msg}); keep whole statements inside the markers"]
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, _FUNCTIONS[:2]):
            inside |= {id(child) for child in ast.walk(node)}
    return [
        f"line {node.lineno}: the solution region is at module or class level; put it inside "
        "a function or method body so the exercise's answer cell runs and only its callers "
        "raise NotImplementedError"
        for node in ast.walk(tree)
        if isinstance(node, ast.Raise) and id(node) not in inside
        and "NotImplementedError" in ast.unparse(node)
    ]


def solution_problems(nb: nbformat.NotebookNode) -> list[str]:
    """Everything that stops ``nb`` from being built, one readable line per problem."""
    problems = fmt.metadata_problems(nb.cells)
    graded = 0
    for index, cell in enumerate(nb.cells):
        where = _where(index, cell)
        meta = fmt.nbgrader_meta(cell)
        try:
            solutions = fmt.marker_regions(cell.source, fmt.BEGIN_SOLUTION, fmt.END_SOLUTION)
            hidden = fmt.marker_regions(cell.source, fmt.BEGIN_HIDDEN, fmt.END_HIDDEN)
        except ValueError as error:
            problems.append(f"{where}: unbalanced markers: {error}")
            continue
        if solutions and not fmt.is_solution(cell):
            problems.append(f"{where}: has a solution region but is not a solution cell "
                            "(set metadata.nbgrader.solution = true)")
        if hidden and not fmt.is_grade(cell):
            problems.append(f"{where}: has hidden tests but is not a grade cell")
        if meta.get("task") or (fmt.is_grade(cell) and fmt.is_solution(cell)):
            problems.append(f"{where}: manually graded cells (task, or grade + solution) are "
                            "not supported by the course's autograder")
        if cell.cell_type == "code" and fmt.is_solution(cell):
            if not solutions:
                problems.append(f"{where}: an answer cell needs a ### BEGIN SOLUTION / "
                                "### END SOLUTION region inside a function body")
            else:
                stubbed, _ = fmt.clear_solutions(cell.source)
                problems += [f"{where}: {p}" for p in _stub_problems(stubbed)]
        graded += fmt.is_grade(cell)
    if not graded:
        problems.append("no grade cell: an exercise needs at least one test cell with points")
    return problems


def _bound_names(tree: ast.Module) -> set[str]:
    """Names a cell binds at module level (assignments, defs, classes, imports, loops)."""
    names: set[str] = set()
    for node in tree.body:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)
            elif isinstance(sub, (ast.alias,)):
                names.add((sub.asname or sub.name).split(".")[0])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
    return names


def _executed_names(tree: ast.AST) -> set[str]:
    """Names read when the cell runs: not those inside function bodies (only defined)."""
    names: set[str] = set()
    pending = list(ast.iter_child_nodes(tree))
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            pending += node.decorator_list + node.args.defaults + [
                d for d in node.args.kw_defaults if d is not None]
            continue
        if isinstance(node, ast.Lambda):
            pending += node.args.defaults
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            names.add(node.id)
        pending += ast.iter_child_nodes(node)
    return names


def _all_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def raising_cells(cells: list[dict]) -> dict[int, str]:
    """Which code cells of an exercise raise when run top to bottom, and why.

    A name is "raising" when calling it reaches a stub: a top-level function or class of an
    answer cell that contains ``raise NotImplementedError()``, or a later function whose body
    uses a raising name. A cell that uses a raising name when it runs raises
    NotImplementedError; names first bound in such a cell are never bound, so cells that use
    them raise NameError. Returns ``{cell index: reason}``.

    >>> stub = {"cell_type": "code", "metadata": {"nbgrader": {"solution": True}},
    ...         "source": "def f():\\n    raise NotImplementedError()"}
    >>> found = raising_cells([stub, {"cell_type": "code", "metadata": {}, "source": "y = f()"},
    ...                        {"cell_type": "code", "metadata": {}, "source": "print(y)"}])
    >>> for index, reason in found.items():
    ...     print(index, reason)
    1 NotImplementedError: uses 'f' (stubbed in answer cell '')
    2 NameError: uses 'y', never bound
    """
    raising: dict[str, str] = {}
    unbound: set[str] = set()
    bound: set[str] = set()
    found: dict[int, str] = {}
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        try:
            tree = _python(cell["source"])
        except SyntaxError:
            continue
        for node in tree.body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            stubbed = fmt.is_solution(cell) and fmt.CODE_STUB.split("\n")[1] in ast.unparse(node)
            calls = _all_names(node) & set(raising)
            if stubbed:
                raising[node.name] = f"stubbed in answer cell {fmt.grade_id(cell)!r}"
            elif calls:
                raising[node.name] = f"calls {sorted(calls)[0]!r}"
        used = _executed_names(tree)
        if used & set(raising):
            name = sorted(used & set(raising))[0]
            found[index] = f"NotImplementedError: uses {name!r} ({raising[name]})"
        elif used & unbound:
            found[index] = f"NameError: uses {sorted(used & unbound)[0]!r}, never bound"
        names = _bound_names(tree)
        if index in found:
            unbound |= names - bound
        else:
            unbound -= names
            bound |= names
    return found


def build_exercise(solution: nbformat.NotebookNode, name: str = "notebook") -> (
        nbformat.NotebookNode):
    """The exercise (student version) of a solution notebook; raises ``BuildError``."""
    problems = solution_problems(solution)
    if problems:
        raise BuildError(name, problems)
    nb = copy.deepcopy(solution)
    for index, cell in enumerate(nb.cells):
        cell.setdefault("id", f"cell-{index}")
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            for key in ("collapsed", "scrolled", "execution"):
                cell.metadata.pop(key, None)
        if "nbgrader" not in cell.metadata:
            continue
        cell.metadata.update(fmt.lock_metadata(cell))
        if fmt.is_solution(cell):
            cell.source, _ = fmt.clear_solutions(cell.source, cell.cell_type)
        if fmt.is_grade(cell):
            cell.source, _ = fmt.remove_hidden_tests(cell.source)
        if fmt.is_grade(cell) or fmt.is_solution(cell) or fmt.is_locked(cell):
            cell.metadata.nbgrader["checksum"] = fmt.compute_checksum(cell)
            cell.metadata.nbgrader["cell_type"] = cell.cell_type
    for index in raising_cells(nb.cells):
        tags = nb.cells[index].metadata.setdefault("tags", [])
        if RAISES_TAG not in tags:
            tags.append(RAISES_TAG)
    own = {k: v for k, v in solution.metadata.get("course_utils", {}).items()
           if k != "source_sha256"}
    nb.metadata = nbformat.from_dict({
        "kernelspec": dict(KERNELSPEC),
        "language_info": solution.metadata.get("language_info", {"name": "python"}),
        "course_utils": {**own, "generated_from": f"solutions/{name}"},
    })
    nb.nbformat, nb.nbformat_minor = 4, max(5, solution.get("nbformat_minor", 5))
    nbformat.validate(nb)
    return nb


def exercise_bytes(solution_path: Path) -> bytes:
    """The exact bytes ``build`` writes for ``solution_path``."""
    solution = nbformat.read(solution_path, as_version=4)
    text = nbformat.writes(build_exercise(solution, solution_path.name))
    return (text if text.endswith("\n") else text + "\n").encode("utf-8")


def build_all(solutions: Path, out: Path, paths: list[Path] | None = None) -> list[Path]:
    """Write one exercise per solution notebook into ``out``; return the paths written.

    Every notebook is checked before anything is written, so a broken solution leaves
    ``out`` untouched; the error lists the problems of every broken notebook.
    """
    paths = sorted(Path(solutions).glob("*.ipynb")) if paths is None else list(paths)
    built, errors = {}, []
    for path in paths:
        try:
            built[path.name] = exercise_bytes(path)
        except fmt.NotebookFormatError as error:
            errors.append(str(error))
    if errors:
        raise BuildError("solutions", ["\n".join(errors)])
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, data in built.items():
        target = out / filename
        if not target.exists() or target.read_bytes() != data:
            target.write_bytes(data)
        written.append(target)
    return written


def stale_exercises(solutions: Path, exercises: Path) -> list[str]:
    """Why ``exercises`` differs from a fresh build (missing, outdated or orphan files)."""
    expected = {p.name: p for p in sorted(Path(solutions).glob("*.ipynb"))}
    found = {p.name for p in Path(exercises).glob("*.ipynb")}
    reasons = [f"exercises/{n} has no solutions/{n}" for n in sorted(found - set(expected))]
    for filename, path in expected.items():
        target = Path(exercises) / filename
        if not target.exists():
            reasons.append(f"exercises/{filename} is missing")
        elif target.read_bytes() != exercise_bytes(path):
            reasons.append(f"exercises/{filename} differs from what solutions/{filename} builds")
    return reasons


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="solution notebooks to build (default: every one in --solutions)")
    parser.add_argument("--solutions", type=Path, default=ROOT / "solutions")
    parser.add_argument("--out", type=Path, default=ROOT / "exercises")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when exercises/ is stale")
    args = parser.parse_args(argv)
    if args.check:
        reasons = stale_exercises(args.solutions, args.out)
        print("\n".join(reasons) or "exercises/ is up to date")
        return 1 if reasons else 0
    try:
        written = build_all(args.solutions, args.out, args.notebooks or None)
    except BuildError as error:
        print(f"build failed, nothing written:\n{error.problems[0]}", file=sys.stderr)
        return 1
    for path in written:
        print(f"built {path}")
    return 0
