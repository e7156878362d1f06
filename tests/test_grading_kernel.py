"""The grading kernel: replies, timeouts, crashes, exit(), the memory limit, the launcher."""

from __future__ import annotations

from pathlib import Path

import pytest

from course_utils.grading import launcher
from course_utils.grading.kernel import GradingKernel, kernel_env

pytestmark = pytest.mark.slow


def test_a_kernel_survives_what_a_submission_can_do(tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("here")
    with GradingKernel(tmp_path, memory_mb=2048) as kernel:
        assert kernel.run("x = open('data.txt').read()", 10).ok  # cwd is the given folder
        failed = kernel.run("assert x == 'there', 'x is ' + x", 10)
        assert (failed.status, failed.ename, failed.evalue) == ("error", "AssertionError",
                                                                "x is here")
        hidden = kernel.run("get_ipython().showtraceback = lambda *a, **k: None\n1 / 0", 10)
        assert (hidden.status, hidden.ename) == ("error", "ZeroDivisionError")
        assert kernel.run("import warnings; warnings.warn('loud')", 10).ok
        assert kernel.run("exit()", 10).ok and kernel.run("x", 10).ok  # exit() is a no-op
        assert kernel.run("import sys; sys.exit(3)", 10).ename == "SystemExit"
        assert kernel.run("big = bytearray(64 * 2**30)", 10).ename == "MemoryError"
        looped = kernel.run("while True:\n    pass", 2)
        assert looped.status == "timeout" and kernel.generation == 1
        assert kernel.run("x", 10).ok, "an interrupted kernel keeps its state"
        died = kernel.run("import os; os._exit(1)", 10)
        assert died.status == "kernel_died" and kernel.generation == 2
        assert kernel.run("x", 10).ename == "NameError", "a restarted kernel starts empty"
        assert kernel.run("import os; os.environ['OMP_NUM_THREADS']", 10).ok


def test_kernel_environment_is_single_threaded() -> None:
    env = kernel_env()
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    assert env["MPLBACKEND"] == "Agg"


def test_launcher_usage_error() -> None:
    assert launcher.main(["100"]) == 2
