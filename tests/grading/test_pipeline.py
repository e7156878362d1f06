"""The grader's modules import only earlier stages, in the order its package docstring lists.

Every import is read with ``ast`` (top level, inside functions, under ``TYPE_CHECKING``);
no module is imported, so this runs in a moment.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import course_utils.grading

PACKAGE = Path(course_utils.grading.__file__).parent
NAME = "course_utils.grading"
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
#: Marks a line kept only for old imports (reported, never exempted).
SHIM = "kept for old imports"


def _order() -> list[str]:
    """The module names of the docstring's bullet list, top to bottom."""
    order = []
    for line in (course_utils.grading.__doc__ or "").splitlines():
        if line.startswith("- "):
            order += re.findall(r"``(\w+)``", line.split(":")[0])
    return order


ORDER = _order()


def _imports(module: str) -> list[tuple[str, int, bool]]:
    """(grading module imported, line, inside a function on a shim line) for every import."""
    path = PACKAGE / f"{module}.py"
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source)
    in_function = {id(node) for fn in ast.walk(tree)
                   if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for node in ast.walk(fn)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module}.py:{node.lineno}: a relative import"
            names = ([f"{node.module}.{a.name}" for a in node.names] if node.module == NAME
                     else [node.module or ""])
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        shim = id(node) in in_function and SHIM in lines[node.lineno - 1]
        for name in names:
            if name.startswith(NAME + "."):
                found.append((name[len(NAME) + 1:].split(".")[0], node.lineno, shim))
    return found


def test_the_docstring_lists_every_module_once() -> None:
    assert len(ORDER) == len(set(ORDER)), ORDER
    assert set(MODULES) <= set(ORDER), f"not in the map: {sorted(set(MODULES) - set(ORDER))}"
    assert set(ORDER) <= set(MODULES), f"no such module: {set(ORDER) - set(MODULES)}"


@pytest.mark.parametrize("module", MODULES)
def test_a_module_imports_only_earlier_stages(module: str) -> None:
    later = [(name, line) for name, line, _ in _imports(module)
             if name in ORDER and ORDER.index(name) >= ORDER.index(module)]
    assert not later, f"{module} imports later stages (or itself): {later}; order: {ORDER}"


def test_the_check_sees_every_kind_of_import() -> None:
    grade = {name for name, _, _ in _imports("grade")}
    assert {"assemble", "verdict", "intake", "kernel", "gradebook"} <= grade
    assert "cli" not in grade  # the command line sits on top: nothing reaches back to it
    assert "kernel" in {name for name, _, _ in _imports("verdict")}  # under TYPE_CHECKING


def test_the_renderer_needs_only_the_records() -> None:
    assert {name for name, _, _ in _imports("feedback")} == {"records"}
