from __future__ import annotations

import subprocess
import sys

from course_utils.doctor import Check, _package, doctor


def test_doctor_reports_every_check(capsys) -> None:
    checks = doctor()
    out = capsys.readouterr().out
    names = [c.name for c in checks]
    for name in ("Python", "PyTorch", "JupyterLab", "ipywidgets", "widget extension",
                 "course kernel", "device", "threads"):
        assert name in names
        assert f"] {name}: " in out
    assert all(c.status in {"PASS", "WARN", "FAIL"} for c in checks)


def test_missing_or_wrong_package_gives_a_fix() -> None:
    missing = _package("Thing", "no-such-package-xyz", "1.0", "because")
    assert missing.status == "FAIL" and "pip install no-such-package-xyz==1.0" in missing.fix
    wrong = _package("pytest", "pytest", "0.0.1", "tests")
    assert wrong.status == "WARN" and "tested with 0.0.1" in wrong.detail
    assert "fix: pip install" in str(wrong)


def test_command_line_exit_code() -> None:
    result = subprocess.run([sys.executable, "-m", "course_utils", "doctor"], capture_output=True,
                            text=True, timeout=120)
    assert "[PASS] Python" in result.stdout
    failed = "FAIL" in result.stdout
    assert result.returncode == (1 if failed else 0)


def test_check_str_without_fix() -> None:
    assert str(Check("x", "PASS", "fine")) == "[PASS] x: fine"


def test_cli_usage_and_unknown_command() -> None:
    from course_utils.__main__ import main

    assert main([]) == 0
    assert main(["no-such-command"]) == 2


def test_the_top_level_doctor_stays_the_function_after_its_module_is_imported() -> None:
    script = ("import importlib, course_utils; importlib.import_module('course_utils.doctor');"
              "from course_utils import doctor; print(callable(doctor), doctor.__module__)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.split() == ["True", "course_utils.doctor"], result.stderr
