"""Pins agree (requirements.txt, environment.yml, the installed versions); the package imports
lazily; _PUBLIC is the one list of the learner API; the kernel has one name everywhere."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_pins(path: Path = ROOT / "requirements.txt") -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not an exact pin (name==version)"
            pins[_norm(name)] = version
    return pins


def environment_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "environment.yml").read_text().splitlines():
        match = re.match(r"^\s*-\s+([A-Za-z0-9_.\-]+)\s*==?\s*([0-9][^\s#]*)", line)
        if match and _norm(match.group(1)) not in {"python"}:
            pins[_norm(match.group(1))] = match.group(2)
    return pins


def test_environment_yml_and_requirements_agree() -> None:
    req, env = requirement_pins(), environment_pins()
    assert req, "no pins read from requirements.txt"
    assert req == env, (
        f"only in requirements.txt: {sorted(set(req) - set(env))}; "
        f"only in environment.yml: {sorted(set(env) - set(req))}; "
        f"different: {sorted(k for k in set(req) & set(env) if req[k] != env[k])}"
    )


def test_torch_is_pinned_to_the_cpu_build_version() -> None:
    assert requirement_pins()["torch"] == "2.13.0"


def test_installed_versions_match_the_pins() -> None:
    from importlib.metadata import version

    wrong = {name: (pin, version(name)) for name, pin in requirement_pins().items()
             if version(name).split("+")[0] != pin}
    assert not wrong, f"installed versions differ from requirements.txt: {wrong}"


def test_import_is_cheap_and_side_effect_free() -> None:
    code = ("import sys, course_utils; "
            "print(sorted(m for m in ('torch', 'matplotlib', 'ipywidgets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_public_name_resolves() -> None:
    import importlib

    import course_utils

    for module, names in course_utils._PUBLIC.items():
        path = ROOT / "course_utils" / f"{module}.py"
        if not path.exists():  # a module not written yet must not be listed
            raise AssertionError(f"_PUBLIC lists course_utils.{module}, which does not exist")
        mod = importlib.import_module(f"course_utils.{module}")
        for name in names:
            assert hasattr(mod, name), f"course_utils.{module} has no {name}"
            assert name in mod.__all__, f"{name} missing from course_utils.{module}.__all__"


# Top-level modules that are not part of the learner's API: the command line, and the shims
# kept for old imports (their contents moved to lessons.py and devtools/).
NOT_LEARNER_API = {"__init__", "__main__", "notebooks", "bench"}


def test_public_is_each_modules_all_minus_its_old_import_names() -> None:
    """The rule: _PUBLIC[m] == m.__all__ - m._KEPT_FOR_OLD_IMPORTS, for every learner module."""
    import importlib

    import course_utils

    learner = {p.stem for p in (ROOT / "course_utils").glob("*.py")
               if not p.stem.startswith("_") and p.stem not in NOT_LEARNER_API}
    assert set(course_utils._PUBLIC) == learner, "every learner module, and only those, is in _PUBLIC"
    owners = [name for names in course_utils._PUBLIC.values() for name in names]
    assert len(owners) == len(set(owners)), "a name is owned by one module only"
    for module, names in course_utils._PUBLIC.items():
        mod = importlib.import_module(f"course_utils.{module}")
        kept = set(getattr(mod, "_KEPT_FOR_OLD_IMPORTS", ()))
        assert kept <= set(mod.__all__), f"course_utils.{module}: {kept - set(mod.__all__)}"
        assert set(names) == set(mod.__all__) - kept, (
            f"course_utils.{module}: only in _PUBLIC {sorted(set(names) - set(mod.__all__))}, "
            f"only in __all__ {sorted(set(mod.__all__) - kept - set(names))}")
        for name in kept:  # an old import gives the very object its owner defines
            owner = importlib.import_module(f"course_utils.{course_utils._OWNER[name]}")
            assert getattr(mod, name) is getattr(owner, name), f"course_utils.{module}.{name}"


def _lesson_imports() -> dict[str, set[str]]:
    """{name: notebooks that import it from a course_utils submodule} over every notebook."""
    import ast
    import json

    found: dict[str, set[str]] = {}
    for path in sorted(ROOT.glob("*/[0-9][0-9]_*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
            for node in ast.walk(ast.parse(code)):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_utils."):
                    for alias in node.names:
                        found.setdefault(alias.name, set()).add(f"{path.parent.name}/{path.name}")
    return found


def test_every_name_a_lesson_imports_is_importable_from_the_top_level() -> None:
    import course_utils

    used = _lesson_imports()
    assert {"Residual", "plot_learning_curves", "lesson_map"} <= set(used), sorted(used)
    missing = {name: sorted(where) for name, where in used.items() if name not in course_utils.__all__}
    assert not missing, f"add these to course_utils._PUBLIC: {missing}"


def _assigned(text: str, variable: str) -> str:
    match = re.search(rf"^{variable}\s*:=\s*(.+?)\s*$", text, re.MULTILINE)
    assert match, f"the Makefile sets no {variable}"
    return match.group(1)


def test_the_kernel_name_is_the_same_everywhere() -> None:
    from course_utils._paths import KERNEL_DISPLAY, KERNEL_NAME, KERNELSPEC

    makefile = (ROOT / "Makefile").read_text()
    assert _assigned(makefile, "KERNEL") == KERNEL_NAME
    assert _assigned(makefile, "KERNEL_DISPLAY") == KERNEL_DISPLAY
    installs = re.findall(r'--name (\S+) --display-name "([^"]+)"', (ROOT / "postBuild").read_text())
    assert installs == [(KERNEL_NAME, KERNEL_DISPLAY)], installs
    assert (KERNELSPEC["name"], KERNELSPEC["display_name"]) == (KERNEL_NAME, KERNEL_DISPLAY)


def test_only_paths_spells_the_kernel_name_in_python() -> None:
    import ast

    from course_utils._paths import KERNEL_DISPLAY, KERNEL_NAME

    spelled = []
    for path in sorted([*(ROOT / "course_utils").rglob("*.py"), *(ROOT / "deploy").glob("*.py")]):
        if path == ROOT / "course_utils" / "_paths.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in (KERNEL_NAME, KERNEL_DISPLAY):
                spelled.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not spelled, f"import KERNEL_NAME / KERNEL_DISPLAY from course_utils._paths instead: {spelled}"
