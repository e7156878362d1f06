"""The package's shape, as the architecture review (§7) draws it, kept true by tests.

- arrows point one way: no import cycle anywhere in ``course_utils``, counting top-level,
  ``TYPE_CHECKING`` and function-level imports alike;
- modules stay readable: none over 500 lines, and the grader's orchestrator ``grade.py`` at
  most 250;
- three audiences, three folders: nothing a learner imports loads ``course_utils.grading``
  or ``course_utils.devtools``, and the grader never imports the maintainer tools;
- the shared rules that the instructor's tools read (``style``, ``_paths``) load no torch.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import course_utils

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "course_utils"
MAX_LINES = 500
MAX_GRADE_LINES = 250


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path) -> Iterator[tuple[str, bool]]:
    """(imported module, at module level?) for every import statement in ``path``.

    ``from a import b`` counts as importing ``a.b`` when that is a module of the package.
    Imports under ``if TYPE_CHECKING:`` are module level; those in a function are not.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]

    def visit(node: ast.AST, top: bool) -> Iterator[tuple[str, bool]]:
        for child in ast.iter_child_nodes(node):
            inside = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                yield from ((alias.name, top) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: resolve against this module's package
                    anchor = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in child.names:
                    full = f"{base}.{alias.name}"
                    yield (full if full in MODULES else base), top
            yield from visit(child, inside)

    yield from visit(tree, True)


def _graph() -> dict[str, set[str]]:
    return {name: {m for m, _ in _imports(path) if m in MODULES and m != name}
            for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def strongconnect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                strongconnect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)
    return found


def test_the_scanner_sees_every_kind_of_import(tmp_path: Path) -> None:
    assert ("course_utils._meta", True) in set(_imports(PACKAGE / "inspection.py"))
    assert ("course_utils.repro", False) in set(_imports(PACKAGE / "doctor.py"))  # in a function
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle() -> None:
    cycles = _cycles(_graph())
    assert not cycles, (
        "import cycles (each module reaches the others; give the types they share a module "
        f"of their own): {cycles}")


def test_no_module_is_over_500_lines_and_grade_is_orchestration_only() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    long = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by concern): {long}"
    grade = sizes.get("course_utils.grading.grade", 0)
    assert grade <= MAX_GRADE_LINES, f"grading/grade.py has {grade} lines (at most {MAX_GRADE_LINES})"


def _learner_modules() -> dict[str, Path]:
    """Every module at the top level of course_utils (learner modules, shims, the CLI)."""
    return {name: path for name, path in MODULES.items()
            if name.count(".") == 1 and path.parent == PACKAGE}


def test_learner_modules_do_not_import_the_grader_or_the_maintainer_tools() -> None:
    leaks = sorted(
        f"{name} imports {imported}"
        for name, path in _learner_modules().items()
        for imported, top in _imports(path)
        if top and imported.startswith(("course_utils.grading", "course_utils.devtools"))
    )
    assert not leaks, f"learner modules must not depend on the machinery: {leaks}"


def test_the_grader_never_imports_the_maintainer_tools() -> None:
    leaks = sorted(
        f"{name} imports {imported}"
        for name, path in MODULES.items() if name.startswith("course_utils.grading")
        for imported, _ in _imports(path) if imported.startswith("course_utils.devtools")
    )
    assert not leaks, f"the grader must not depend on maintainer tools: {leaks}"


def _loaded_after(statement: str) -> list[str]:
    code = (f"import sys\n{statement}\n"
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'course_utils'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    return out.stdout.split()


def test_what_lessons_import_loads_neither_grader_nor_maintainer_tools() -> None:
    imports = [f"import course_utils.{module}" for module in course_utils._PUBLIC]
    imports.append("from course_utils.notebooks import lesson_map")  # lesson 00, as it imports it
    loaded = _loaded_after("\n".join(imports))
    machinery = [m for m in loaded if m.startswith(("course_utils.grading", "course_utils.devtools"))]
    assert "course_utils.inspection" in loaded and not machinery, machinery


def test_style_and_paths_load_no_torch() -> None:
    loaded = _loaded_after("import course_utils.style, course_utils._paths")
    assert "torch" not in loaded, loaded
    # course_utils.doctor (standard library only) is bound by the package itself, so that the
    # name ``doctor`` stays the function (see course_utils/__init__.py)
    assert set(loaded) == {"course_utils", "course_utils.style", "course_utils._paths",
                           "course_utils.doctor"}, loaded
