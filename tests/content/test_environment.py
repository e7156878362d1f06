"""requirements.txt and environment.yml pin the same versions; the package imports lazily."""

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
