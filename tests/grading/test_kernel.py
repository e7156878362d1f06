"""The grading kernel: replies, timeouts, crashes, exit(), limits, the launcher, the sandbox."""

from __future__ import annotations

import ast
import resource
from pathlib import Path

import pytest

from course_utils.grading import launcher, sandbox
from course_utils.grading.kernel import GradingKernel, kernel_env, live_kernels

pytestmark = pytest.mark.slow
needs_sandbox = pytest.mark.skipif(not sandbox.available(), reason="no bubblewrap sandbox here")


@pytest.mark.parametrize("sandboxed", [pytest.param(True, marks=needs_sandbox), False])
def test_a_kernel_survives_what_a_submission_can_do(tmp_path: Path, sandboxed: bool) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "data.txt").write_text("here")
    with GradingKernel(scratch, sandboxed=sandboxed) as kernel:
        assert kernel.run("x = open('data.txt').read()", 10).ok  # cwd is the scratch folder
        failed = kernel.run("assert x == 'there', 'x is ' + x", 10)
        assert (failed.status, failed.ename, failed.evalue) == ("error", "AssertionError",
                                                                "x is here")
        hidden = kernel.run("get_ipython().showtraceback = lambda *a, **k: None\n1 / 0", 10)
        assert (hidden.status, hidden.ename) == ("error", "ZeroDivisionError")
        assert kernel.run("import warnings; warnings.warn('loud')", 10).ok
        assert kernel.run("exit()", 10).ok and kernel.run("x", 10).ok  # exit() is a no-op
        assert kernel.run("import sys; sys.exit(3)", 10).ename == "SystemExit"
        assert kernel.run("big = bytearray(64 * 2**30)", 10).ename == "MemoryError"
        raised = kernel.run("import resource\nresource.setrlimit(resource.RLIMIT_AS, "
                            "(resource.RLIM_INFINITY, resource.RLIM_INFINITY))", 10)
        assert raised.ename == "ValueError", "the hard limit must hold"
        seen = kernel.run("y = 1", 10, user_expressions={"y": "y + 1"})
        assert seen.expressions == {"y": "2"}
        looped = kernel.run("while True:\n    pass", 2)
        assert looped.status == "timeout" and kernel.generation == 2, "a timeout restarts"
        assert kernel.run("x", 10).ename == "NameError", "a restarted kernel starts empty"
        died = kernel.run("import os; os._exit(1)", 10)
        assert died.status == "kernel_died" and kernel.generation == 3
        assert kernel.run("import os; os.environ['OMP_NUM_THREADS']", 10).ok
    assert live_kernels() == 0


@needs_sandbox
def test_the_sandbox_shows_only_what_the_kernel_needs(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    here = str(Path(__file__).resolve().parents[2])
    with GradingKernel(scratch, sandboxed=True) as kernel:
        probe = kernel.run(f"import os\nfound = (os.getuid(), sorted(os.listdir({here!r})), "
                           "len([p for p in os.listdir('/proc') if p.isdigit()]))", 10,
                           user_expressions={"found": "found"})
        uid, listing, processes = ast.literal_eval(probe.expressions["found"])
        assert uid != 0 and processes <= 3
        assert listing == ["course_utils"] or ".venv" in listing and "solutions" not in listing
        net = kernel.run("import socket\nsocket.create_connection(('10.0.0.1', 80), timeout=1)",
                         10)
        assert net.ename == "OSError" and "unreachable" in net.evalue.lower()


def test_kernel_environment_is_single_threaded_and_clean() -> None:
    env = kernel_env("/home/learner", sandboxed=True)
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    assert env["MPLBACKEND"] == "Agg" and env["HOME"] == "/home/learner"
    assert "PYTHONPATH" not in env and "VIRTUAL_ENV" not in env


def test_launcher_usage_error_and_limits() -> None:
    assert launcher.main(["--memory-mb", "100"]) == 2
    assert launcher.limits_argv({"cpu_s": 5}) == ["--cpu-s", "5"]
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    assert soft <= hard or hard == resource.RLIM_INFINITY
