"""Smoke test of `make hub`: a real JupyterHub on 127.0.0.1 with two learners.

Both log in with the workshop password (the hub creates their Unix users), start servers,
run lesson 01 cell by cell over the kernel websocket and `check` an exercise. Then:
learner A cannot read learner B's home; homes are private; the instructor is an admin; a
wrong password and an existing system account are refused; a restart keeps the learner's
edits. The hub, its proxy, the servers, the users and their homes are removed afterwards.

Needs root (it creates Unix users) and `make hub-deps` (the hub's environment and the
proxy); `make test` provides both when run as root.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pwd
import stat
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
HUB_VENV = ROOT / ".venv-hub"
PROXY = ROOT / "deploy" / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]


def _load_test_module():  # deploy/ is not a package; load it by path
    sys.path.insert(0, str(ROOT / "deploy"))
    spec = importlib.util.spec_from_file_location("load_test", ROOT / "deploy" / "load_test.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["load_test"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _skip_reason() -> str:
    if os.geteuid() != 0:
        return "the hub creates Unix users: run as root (make test does, in CI)"
    if not (HUB_VENV / ".installed").exists() or not PROXY.exists():
        return "the hub's environment or proxy is missing: run `make hub-deps` (make test does)"
    sys.path.insert(0, str(ROOT / "deploy"))
    from workshop_hub import access_problems, course_paths

    closed = access_problems(course_paths(ROOT, HUB_VENV / "bin" / "python"))
    if closed:  # a checkout inside a private folder (say /root) cannot serve other users
        return "learner accounts cannot reach this checkout: " + "; ".join(closed)
    return ""


@pytest.fixture(scope="module")
def hub_run():
    if _skip_reason():
        pytest.skip(_skip_reason())
    lt = _load_test_module()
    tag = f"smk{os.getpid() % 100000}"
    with lt.Hub(tag) as hub:
        phase = asyncio.run(_two_learners(lt, hub, tag))
        yield lt, hub, phase
        names = [learner.name for learner in phase.learners] + ["instructor"]
        homes = [Path(pwd.getpwnam(name).pw_dir) for name in names]
    # after the with block the hub, its proxy and every learner process are gone, and so are
    # the accounts, their homes and the state folder
    assert hub.process.poll() is not None
    assert not (hub.state / "state" / "proxy.pid").exists() or not _alive(hub.state / "state" / "proxy.pid")
    assert lt.group_members(tag) == []
    assert subprocess.run(["getent", "passwd", *names], capture_output=True, text=True).stdout == ""
    assert not [home for home in homes if home.exists()] and not hub.state.exists()
    assert not [p for p in psutil.process_iter(["username"]) if p.info["username"] in names]


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
        return True
    except (OSError, ValueError):
        return False


async def _two_learners(lt, hub, tag):
    phase = await lt.run_phase(hub, 2, think_s=0.0, lessons=("01_layers_of_a_model",), run_check=True,
                               prefix=tag, stop_servers=False)
    a, b = phase.learners
    home_b = pwd.getpwnam(b.name).pw_dir
    probe = (f"import os\n"
             f"for p in [{home_b!r}, {home_b + '/notebooks/01_layers_of_a_model.ipynb'!r}]:\n"
             f"    try:\n"
             f"        (os.listdir if p == {home_b!r} else lambda q: open(q).read())(p); print('READ', p)\n"
             f"    except PermissionError:\n"
             f"        print('DENIED', p)\n")
    limits = ("import resource\n"
              "print(resource.getrlimit(resource.RLIMIT_AS)[1] // 2**20, "
              "resource.getrlimit(resource.RLIMIT_NPROC)[1])\n"
              "try:\n    _big = bytearray(5 * 2**30)\nexcept MemoryError:\n    print('MemoryError')")
    phase.isolation, phase.limits = await a.run_snippets([probe, limits])
    # a learner's edit survives a restart of their server; a lesson missing from the home comes back
    edit = ("import os; "
            "open(os.path.expanduser('~/exercises/01_layers_of_a_model.ipynb'), 'w').write('mine'); "
            "os.remove(os.path.expanduser('~/notebooks/02_hidden_layers_and_sequential.ipynb'))")
    await a.run_snippets([edit])
    await lt.stop_servers_of(hub, [a.name])
    await a.start_server()
    phase.after_restart = await a.run_snippets([
        "import os; print(open(os.path.expanduser('~/exercises/01_layers_of_a_model.ipynb')).read(), "
        "os.path.exists(os.path.expanduser('~/notebooks/02_hidden_layers_and_sequential.ipynb')))"])
    # who may log in
    phase.wrong_password = await _login_code(lt, hub, f"{tag}c", "not-the-password")
    phase.system_account = await _login_code(lt, hub, "nobody", hub.password)
    phase.instructor = await _login_code(lt, hub, "instructor", hub.admin_password)
    phase.users = await a.api("GET", "/hub/api/users", token=hub.token)
    await lt.stop_servers_of(hub, [learner.name for learner in phase.learners])
    return phase


async def _login_code(lt, hub, name: str, password: str) -> str:
    learner = lt.Learner(hub, name, think_s=0, lessons=(), run_check=False, rng=None)
    try:
        await learner.login(password)
        return "ok"
    except RuntimeError as error:
        return str(error)


def test_both_learners_finish_the_notebook_and_check(hub_run) -> None:
    lt, _, phase = hub_run
    expected = len(lt.code_cells("01_layers_of_a_model"))
    for result in phase.results:
        assert result.finished, f"{result.name}: {result.error} {result.failed}"
        assert result.failed == [], result.failed
        assert len(result.cells) == expected, f"lesson 01 has {expected} code cells to run"
        assert result.check_ok, "check did not print its per-question table"


def test_learner_a_cannot_read_learner_b(hub_run) -> None:
    _, _, phase = hub_run
    status, output = phase.isolation
    assert status == "ok", output
    assert output.count("DENIED") == 2 and "READ" not in output, output


def test_per_process_limits_are_enforced(hub_run) -> None:
    _, _, phase = hub_run
    status, output = phase.limits
    assert status == "ok", output
    assert output.split() == ["4096", "512", "MemoryError"], output


def test_homes_are_private_and_owned_by_the_learner(hub_run) -> None:
    _, hub, phase = hub_run
    for learner in phase.learners:
        entry = pwd.getpwnam(learner.name)
        mode = os.stat(entry.pw_dir)
        assert stat.S_IMODE(mode.st_mode) == 0o700 and mode.st_uid == entry.pw_uid
        assert Path(entry.pw_dir).parent == hub.home_base
        assert (Path(entry.pw_dir) / "exercises" / "01_layers_of_a_model.ipynb").exists()


def test_restart_keeps_edits_and_restores_missing_lessons(hub_run) -> None:
    _, _, phase = hub_run
    [(status, output)] = phase.after_restart
    assert status == "ok", output
    assert output.split() == ["mine", "True"], output


def test_who_may_log_in(hub_run) -> None:
    _, _, phase = hub_run
    assert "HTTP 403" in phase.wrong_password
    assert "HTTP 403" in phase.system_account, "an existing system account must be refused"
    assert phase.instructor == "ok"
    users = {u["name"]: u for u in phase.users}
    assert users["instructor"]["admin"] is True
    assert not any(users[learner.name]["admin"] for learner in phase.learners)
    # the admin (here the load test's service) sees who is running
    assert all(users[learner.name]["servers"] for learner in phase.learners)
