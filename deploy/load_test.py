"""Load test of the workshop hub: ``make workshop-load`` (run as root; loopback only).

Starts the hub of ``deploy/jupyterhub_config.py`` on 127.0.0.1 with a throwaway state
folder, Unix group and passwords, then, for each class size N, drives N simulated learners
at once through the hub's REST API and the kernels' websockets. Each learner logs in with
the workshop password (the hub creates the Unix account), starts a server, opens lessons
01-03 one after the other and runs them cell by cell with a think time between cells, then
runs ``python -m course_utils check`` on an exercise from a cell. Measured: server start-up
time, per-cell latency (request sent to ``execute_reply``), failed cells, and the memory of
each learner's processes (server, kernels, check), sampled every few seconds. At the end it
prints a capacity table and a sizing rule; ``--json`` saves the raw numbers.

Every request goes to 127.0.0.1; every loop is bounded by a count and a deadline. On exit
(also on Ctrl-C) the hub, its proxy and all servers are stopped and the created users and
their homes deleted. ``tests/integration/test_hub.py`` runs the small version (2 learners, 1 notebook).

    python deploy/load_test.py --learners 5,10,20 --think 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psutil
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workshop_hub import group_members, remove_users

from course_utils._paths import KERNEL_NAME

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ("01_layers_of_a_model", "02_hidden_layers_and_sequential", "03_counting_parameters")
CHECK_EXERCISE = "01_layers_of_a_model"
CELL_TIMEOUT_S = 180.0
HUB_VENV = Path(os.environ.get("COURSE_VENV", ROOT / ".venv-hub"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``; NaN when empty.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50), percentile([1.0, 2.0, 3.0, 4.0], 95)
    (2.0, 4.0)
    """
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil
    return ordered[int(rank) - 1]


def code_cells(lesson: str) -> list[tuple[str, bool]]:
    """``(source, expected_to_raise)`` for each code cell of ``notebooks/<lesson>.ipynb``."""
    notebook = json.loads((ROOT / "notebooks" / f"{lesson}.ipynb").read_text())
    return [("".join(cell["source"]), "raises-exception" in cell.get("metadata", {}).get("tags", []))
            for cell in notebook["cells"] if cell["cell_type"] == "code"]


# --- the hub ---------------------------------------------------------------------------

class Hub:
    """``make hub``'s JupyterHub in a temporary state folder, on free loopback ports."""

    def __init__(self, group: str, *, memory_mb: int = 4096) -> None:
        self.group = group
        self.state = Path(tempfile.mkdtemp(prefix="sizing-nn-hub-"))
        self.home_base = self.state / "home"
        self.home_base.mkdir()
        os.chmod(self.state, 0o755)  # learners need to reach their homes below it
        self.password = secrets.token_urlsafe(12)
        self.admin_password = secrets.token_urlsafe(12)
        self.token = secrets.token_hex(24)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "HUB_IP": "127.0.0.1", "HUB_PORT": str(self.port),
                    "HUB_API_PORT": str(free_port()), "HUB_PROXY_API_PORT": str(free_port()),
                    "HUB_STATE_DIR": str(self.state / "state"), "WORKSHOP_GROUP": group,
                    "WORKSHOP_HOME_BASE": str(self.home_base), "WORKSHOP_PASSWORD": self.password,
                    "INSTRUCTOR_PASSWORD": self.admin_password, "WORKSHOP_ADMIN": "instructor",
                    "WORKSHOP_SERVICE_TOKEN": self.token, "WORKSHOP_MEMORY_MB": str(memory_mb),
                    "COURSE_VENV": str(HUB_VENV)}
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.state / "jupyterhub.log"

    def start(self, timeout: float = 90.0) -> None:
        if os.geteuid() != 0:
            raise PermissionError("the hub creates Unix users: run as root")
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [str(HUB_VENV / "bin" / "jupyterhub"), "-f", str(ROOT / "deploy" / "jupyterhub_config.py")],
            cwd=self.state, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the hub exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                import urllib.request
                with urllib.request.urlopen(f"{self.url}/hub/api/", timeout=5) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"the hub did not answer on {self.url} within {timeout} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        """Stop the hub (it stops the proxy and the servers), then delete users and state."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        pid_file = self.state / "state" / "proxy.pid"
        if pid_file.exists():  # the hub normally stops its proxy; make sure
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass
        remove_users(self.group)
        subprocess.run(["rm", "-rf", "--one-file-system", str(self.state)], check=False)

    def __enter__(self) -> Hub:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- one simulated learner --------------------------------------------------------------

@dataclass
class LearnerResult:
    name: str
    start_s: float = float("nan")
    cells: list[float] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    check_s: float = float("nan")
    check_ok: bool = False
    finished: bool = False
    wall_s: float = float("nan")
    error: str = ""


class Learner:
    """Logs in through the login form, starts a server, runs notebooks over websockets."""

    def __init__(self, hub: Hub, name: str, *, think_s: float, lessons: tuple[str, ...],
                 run_check: bool, rng: random.Random) -> None:
        self.hub, self.name, self.think_s, self.lessons = hub, name, think_s, lessons
        self.run_check, self.rng = run_check, rng
        self.http = AsyncHTTPClient()
        self.token = ""
        self.result = LearnerResult(name)

    async def api(self, method: str, path: str, body: Any = None, token: str = "") -> Any:
        request = HTTPRequest(f"{self.hub.url}{path}", method=method,
                              headers={"Authorization": f"token {token or self.token}"},
                              body=None if body is None else json.dumps(body),
                              request_timeout=CELL_TIMEOUT_S)
        reply = await self.http.fetch(request)
        return json.loads(reply.body) if reply.body else None

    async def login(self, password: str) -> None:
        """POST the login form, as a browser does (the hub creates the Unix user)."""
        page = await self.http.fetch(f"{self.hub.url}/hub/login", request_timeout=60)
        cookies = "; ".join(c.split(";")[0] for c in page.headers.get_list("Set-Cookie"))
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.body.decode())
        form = {"username": self.name, "password": password, "_xsrf": xsrf.group(1) if xsrf else ""}
        reply = await self.http.fetch(f"{self.hub.url}/hub/login?next=", method="POST",
                                      body=urlencode(form), headers={"Cookie": cookies},
                                      follow_redirects=False, raise_error=False, request_timeout=120)
        if reply.code != 302:
            raise RuntimeError(f"login of {self.name} failed: HTTP {reply.code}")

    async def start_server(self) -> None:
        admin = self.hub.token
        started = time.monotonic()
        for _ in range(60):  # a server still stopping answers 400 "... is pending stop": wait (bounded)
            reply = await self.http.fetch(HTTPRequest(
                f"{self.hub.url}/hub/api/users/{self.name}/server", method="POST", body="{}",
                headers={"Authorization": f"token {admin}"}, request_timeout=60), raise_error=False)
            if not (reply.code == 400 and b"pending stop" in reply.body):
                break
            await asyncio.sleep(1)
        if reply.code not in (201, 202, 400):  # 400: already running
            raise RuntimeError(f"starting {self.name}'s server: HTTP {reply.code} {reply.body[:300]!r}")
        for _ in range(600):
            model = await self.api("GET", f"/hub/api/users/{self.name}", token=admin)
            server = (model.get("servers") or {}).get("")
            if server and server.get("ready"):
                break
            if not server and time.monotonic() - started > 5:
                raise RuntimeError(f"{self.name}'s server stopped while starting")
            await asyncio.sleep(0.5)
        else:
            raise TimeoutError(f"{self.name}'s server was not ready after 300 s")
        self.result.start_s = time.monotonic() - started
        created = await self.api("POST", f"/hub/api/users/{self.name}/tokens",
                                 {"note": "load test", "expires_in": 7200,
                                  "scopes": [f"access:servers!user={self.name}"]}, token=admin)
        self.token = created["token"]

    async def open_kernel(self, path: str) -> tuple[str, Any]:
        """Open ``path`` as JupyterLab does (a session with a sizing-nn kernel); connect its websocket."""
        base = f"/user/{self.name}/api"
        session = await self.api("POST", f"{base}/sessions", {
            "path": path, "type": "notebook", "name": Path(path).name, "kernel": {"name": KERNEL_NAME}})
        ws_url = f"ws://127.0.0.1:{self.hub.port}{base}/kernels/{session['kernel']['id']}/channels"
        ws = await websocket_connect(HTTPRequest(ws_url, headers={"Authorization": f"token {self.token}"},
                                                 request_timeout=60), max_message_size=64 * 2**20)
        return session["id"], ws

    async def close_kernel(self, session_id: str, ws: Any) -> None:
        ws.close()
        await self.api("DELETE", f"/user/{self.name}/api/sessions/{session_id}")

    async def run_snippets(self, codes: list[str], path: str = "scratch.ipynb") -> list[tuple[str, str]]:
        """Run each code in one fresh kernel: ``[(status, output), ...]``."""
        session_id, ws = await self.open_kernel(path)
        try:
            return [(await self.execute(ws, code))[:2] for code in codes]
        finally:
            await self.close_kernel(session_id, ws)

    async def run_notebook(self, lesson: str, extra: list[str]) -> None:
        session_id, ws = await self.open_kernel(f"notebooks/{lesson}.ipynb")
        try:
            cells = code_cells(lesson) + [(code, False) for code in extra]
            for index, (code, may_raise) in enumerate(cells):
                if index:
                    await asyncio.sleep(self.think_s * self.rng.uniform(0.5, 1.5))
                status, output, took = await self.execute(ws, code)
                if code in extra:
                    self.check_output(output, took)
                    continue
                self.result.cells.append(took)
                if status != "ok" and not may_raise:
                    self.result.failed.append(f"{lesson} cell {index + 1}: {status} {output[-300:]}")
        finally:
            await self.close_kernel(session_id, ws)

    async def execute(self, ws: Any, code: str) -> tuple[str, str, float]:
        """Send one execute_request; wait (bounded) for its reply and for the kernel to go idle.

        Returns (status, stdout + error text, seconds from the request to ``execute_reply``).
        The reply (shell channel) can overtake the cell's output (iopub channel); the
        ``idle`` status on iopub comes after all of the cell's output.
        """
        msg_id = uuid.uuid4().hex
        began = time.monotonic()
        status, took, idle = "", float("nan"), False
        await ws.write_message(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": self.name,
                       "session": uuid.uuid4().hex, "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": False}}))
        text: list[str] = []
        deadline = time.monotonic() + CELL_TIMEOUT_S
        while (left := deadline - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(ws.read_message(), timeout=left)
            except asyncio.TimeoutError:
                break
            if raw is None:
                return "websocket closed", "".join(text), time.monotonic() - began
            if isinstance(raw, bytes):
                continue  # binary frames carry widget buffers; not ours to read
            message = json.loads(raw)
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream" and content.get("name") == "stdout":  # stderr: warnings, not results
                text.append(content.get("text", ""))
            elif kind == "error":
                text.append(f"{content.get('ename')}: {content.get('evalue')}")
            elif kind == "execute_reply":
                status, took = content.get("status", "?"), time.monotonic() - began
            elif kind == "status" and content.get("execution_state") == "idle":
                idle = True
            if status and idle:
                return status, "".join(text), took
        return "timeout", "".join(text), time.monotonic() - began

    def check_output(self, output: str, took: float) -> None:
        self.result.check_s = took
        # a blank exercise fails its questions (exit 1); a check that ran prints one line per test
        self.result.check_ok = "exit 0" in output or ("exit 1" in output and "_test" in output)
        if not self.result.check_ok:
            self.result.failed.append(f"check: {output[-500:]}")

    async def run(self, password: str) -> LearnerResult:
        began = time.monotonic()
        try:
            await self.login(password)
            await self.start_server()
            for number, lesson in enumerate(self.lessons):
                last = number == len(self.lessons) - 1
                extra = [check_cell(CHECK_EXERCISE)] if last and self.run_check else []
                await self.run_notebook(lesson, extra)
            self.result.finished = True
            self.result.wall_s = time.monotonic() - began
        except (OSError, RuntimeError, HTTPClientError, asyncio.TimeoutError, KeyError) as error:
            self.result.error = f"{type(error).__name__}: {error}"
        return self.result


def check_cell(exercise: str) -> str:
    """The code a learner's cell runs to check an exercise (as in a terminal)."""
    return ("import os, subprocess, sys\n"
            f"_r = subprocess.run([sys.executable, '-m', 'course_utils', 'check', "
            f"os.path.expanduser('~/exercises/{exercise}.ipynb')], capture_output=True, text=True)\n"
            "print(_r.stdout[-4000:], _r.stderr[-1000:], f'exit {_r.returncode}')")


# --- memory -------------------------------------------------------------------------------

class MemorySampler:
    """Peak RSS and USS (MB) per learner: the sum over all their processes, sampled."""

    def __init__(self, names: list[str], every_s: float = 3.0) -> None:
        self.names, self.every_s = set(names), every_s
        self.peak_rss: dict[str, float] = dict.fromkeys(names, 0.0)
        self.peak_uss: dict[str, float] = dict.fromkeys(names, 0.0)
        self.peak_cpu: dict[str, float] = dict.fromkeys(names, 0.0)
        self.peak_total_rss = self.peak_total_uss = 0.0
        self.load: list[float] = []

    def sample(self) -> None:
        rss = dict.fromkeys(self.names, 0.0)
        uss = dict.fromkeys(self.names, 0.0)
        cpu = dict.fromkeys(self.names, 0.0)
        for process in psutil.process_iter(["username"]):
            name = process.info["username"]
            if name in self.names:
                try:
                    full = process.memory_full_info()
                    # a finished kernel's CPU time moves to its parent's children_* once reaped
                    times = process.cpu_times()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                cpu[name] += times.user + times.system + times.children_user + times.children_system
                rss[name] += full.rss / 2**20
                uss[name] += full.uss / 2**20
        for name in self.names:
            self.peak_rss[name] = max(self.peak_rss[name], rss[name])
            self.peak_uss[name] = max(self.peak_uss[name], uss[name])
            self.peak_cpu[name] = max(self.peak_cpu[name], cpu[name])
        self.peak_total_rss = max(self.peak_total_rss, sum(rss.values()))
        self.peak_total_uss = max(self.peak_total_uss, sum(uss.values()))
        self.load.append(os.getloadavg()[0])

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.get_running_loop().run_in_executor(None, self.sample)
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.every_s)
            except asyncio.TimeoutError:
                pass


# --- one class size --------------------------------------------------------------------------

@dataclass
class Phase:
    size: int
    results: list[LearnerResult]
    memory: MemorySampler
    wall_s: float
    learners: list[Learner]

    def row(self) -> dict[str, Any]:
        cells = [t for r in self.results for t in r.cells]
        starts = [r.start_s for r in self.results if r.start_s == r.start_s]
        checks = [r.check_s for r in self.results if r.check_s == r.check_s]
        rss = list(self.memory.peak_rss.values())
        uss = list(self.memory.peak_uss.values())
        return {
            "learners": self.size, "finished": sum(r.finished for r in self.results),
            "cells": len(cells), "failed_cells": sum(len(r.failed) for r in self.results),
            "cell_p50_s": percentile(cells, 50), "cell_p95_s": percentile(cells, 95),
            "start_p50_s": percentile(starts, 50), "start_max_s": max(starts, default=float("nan")),
            "check_p50_s": percentile(checks, 50),
            "cpu_s_per_learner": statistics.fmean(self.memory.peak_cpu.values()),
            "learner_wall_s": statistics.fmean(
                [r.wall_s for r in self.results if r.finished] or [float("nan")]),
            "rss_per_learner_mb": statistics.fmean(rss) if rss else float("nan"),
            "uss_per_learner_mb": statistics.fmean(uss) if uss else float("nan"),
            "total_rss_gb": self.memory.peak_total_rss / 1024,
            "total_uss_gb": self.memory.peak_total_uss / 1024,
            "load_avg_max": max(self.memory.load, default=float("nan")), "wall_s": self.wall_s,
            "errors": ([r.error for r in self.results if r.error]
                       + [f for r in self.results for f in r.failed]),
        }


async def run_phase(hub: Hub, count: int, *, think_s: float, lessons: tuple[str, ...], run_check: bool,
                    prefix: str, seed: int = 0, stop_servers: bool = True) -> Phase:
    names = [f"{prefix}{i:02d}" for i in range(count)]
    sampler = MemorySampler(names)
    stop = asyncio.Event()
    sampling = asyncio.create_task(sampler.run(stop))
    began = time.monotonic()

    learners = [Learner(hub, name, think_s=think_s, lessons=lessons, run_check=run_check,
                        rng=random.Random(seed * 1000 + index)) for index, name in enumerate(names)]

    async def one(index: int, learner: Learner) -> LearnerResult:
        await asyncio.sleep(index * 0.5)  # a room logs in over a few seconds, not in one instant
        return await learner.run(hub.password)

    results = await asyncio.gather(*(one(i, learner) for i, learner in enumerate(learners)))
    wall = time.monotonic() - began
    stop.set()
    await sampling
    if stop_servers:  # before the next class size starts
        await stop_servers_of(hub, names)
    return Phase(count, list(results), sampler, wall, learners)


async def stop_servers_of(hub: Hub, names: list[str]) -> None:
    """Stop these learners' servers and wait (bounded) until their processes are gone."""
    http = AsyncHTTPClient()
    for name in names:
        await http.fetch(HTTPRequest(f"{hub.url}/hub/api/users/{name}/server", method="DELETE",
                                     headers={"Authorization": f"token {hub.token}"}, request_timeout=60),
                         raise_error=False)
    for _ in range(120):  # until the hub lists no server for them and their processes are gone
        running = False
        for name in names:
            reply = await http.fetch(HTTPRequest(f"{hub.url}/hub/api/users/{name}",
                                                 headers={"Authorization": f"token {hub.token}"},
                                                 request_timeout=60), raise_error=False)
            running |= reply.code == 200 and bool(json.loads(reply.body).get("servers"))
        if not running and not any(p.info["username"] in names for p in psutil.process_iter(["username"])):
            break
        await asyncio.sleep(0.5)


def _machine(cores: int, memory_gb: float) -> dict[str, Any]:
    """What the report records of the machine it was measured on."""
    from importlib.metadata import version

    return {"cpus": cores, "memory_gb": round(memory_gb), "python": ".".join(map(str, sys.version_info[:2])),
            "jupyterhub": version("jupyterhub")}


def capacity_table(rows: list[dict[str, Any]]) -> str:
    """The Markdown table of book/workshop.md (rendered there from book/measured/workshop-load.json)."""
    head = ("| learners | finished | cells run | failed cells | cell p50 s | cell p95 s "
            "| start-up p50 / max s | check s | RSS per learner MB | USS per learner MB "
            "| total RSS GB | total USS GB | CPU s per learner | load avg (max) |")
    lines = [head, "|" + "---:|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r['learners']} | {r['finished']} | {r['cells']} | {r['failed_cells']} "
            f"| {r['cell_p50_s']:.2f} | {r['cell_p95_s']:.2f} "
            f"| {r['start_p50_s']:.1f} / {r['start_max_s']:.1f} "
            f"| {r['check_p50_s']:.1f} "
            f"| {r['rss_per_learner_mb']:.0f} | {r['uss_per_learner_mb']:.0f} | {r['total_rss_gb']:.2f} "
            f"| {r['total_uss_gb']:.2f} | {r['cpu_s_per_learner']:.0f} / {r['learner_wall_s']:.0f} s "
            f"| {r['load_avg_max']:.1f} |")
    return "\n".join(lines)


def sizing_rule(rows: list[dict[str, Any]], cores: int, p95_limit_s: float, think_s: float,
                target_utilisation: float = 0.7) -> str:
    """Learners per core and GB per learner, read from the measured rows.

    CPU: each learner's processes used ``cpu_s_per_learner`` seconds of CPU over
    ``learner_wall_s`` seconds of session; the rule fills ``target_utilisation`` of a core
    with such learners (the worst row counts). Memory: the largest mean peak RSS per learner,
    rounded up. Latency: the largest class size whose p95 cell latency stayed under the limit.

    >>> rows = [{"learners": 5, "finished": 5, "failed_cells": 0, "cell_p95_s": 0.5,
    ...          "rss_per_learner_mb": 500.0, "cpu_s_per_learner": 20.0, "learner_wall_s": 200.0},
    ...         {"learners": 10, "finished": 10, "failed_cells": 0, "cell_p95_s": 3.5,
    ...          "rss_per_learner_mb": 510.0, "cpu_s_per_learner": 21.0, "learner_wall_s": 240.0}]
    >>> print(sizing_rule(rows, cores=2, p95_limit_s=2.0, think_s=2.0))  # doctest: +NORMALIZE_WHITESPACE
    Sizing rule: 7 learners per core and 0.5 GB of memory per learner (plus 1 GB for the system and the hub).
      CPU: a learner's server, kernels and check used 10% of a core on average (CPU time over the session's
      wall time, 2 s think time); 70% of a core holds 7 such learners.
      Memory: peak RSS per learner (server + kernel + check) up to 510 MB.
      Latency: 5 learners on 2 cores kept every cell's p95 latency <= 2 s with no failed cell.
    """
    share = max(r["cpu_s_per_learner"] / r["learner_wall_s"] for r in rows)
    per_core = max(1, int(target_utilisation / share + 1e-9))
    per_learner_mb = max(r["rss_per_learner_mb"] for r in rows)
    gb = -(-per_learner_mb * 10 // 1024) / 10  # round up to 0.1 GB
    good = [r for r in rows if r["finished"] == r["learners"] and r["failed_cells"] == 0
            and r["cell_p95_s"] <= p95_limit_s]
    if not good:
        latency = f"no measured class size kept every cell's p95 latency <= {p95_limit_s:g} s"
    else:
        best = max(good, key=lambda r: r["learners"])
        latency = (f"{best['learners']} learners on {cores} cores kept every cell's p95 latency "
                   f"<= {p95_limit_s:g} s with no failed cell")
    return (f"Sizing rule: {per_core} learners per core and {gb:g} GB of memory per learner "
            f"(plus 1 GB for the system and the hub).\n"
            f"  CPU: a learner's server, kernels and check used {share:.0%} of a core on average (CPU time "
            f"over the session's wall time, {think_s:g} s think time); {target_utilisation:.0%} of a core "
            f"holds {per_core} such learners.\n"
            f"  Memory: peak RSS per learner (server + kernel + check) up to {per_learner_mb:.0f} MB.\n"
            f"  Latency: {latency}.")


async def main_async(args: argparse.Namespace) -> int:
    sizes = [int(n) for n in args.learners.split(",")]
    group = f"wsload{os.getpid() % 100000}"
    rows = []
    with Hub(group) as hub:
        for number, count in enumerate(sizes):
            print(f"--- {count} learners (think time {args.think:g} s) ...", flush=True)
            phase = await run_phase(hub, count, think_s=args.think, lessons=LESSONS, run_check=True,
                                    prefix=f"load{chr(ord('a') + number)}", seed=number)
            row = phase.row()
            rows.append(row)
            print(capacity_table([row]).splitlines()[-1], flush=True)
            for error in row["errors"][:10]:
                print("   ", error[:300], flush=True)
    cores = psutil.cpu_count() or 1
    table, rule = capacity_table(rows), sizing_rule(rows, cores, args.p95_limit, args.think)
    memory_gb = psutil.virtual_memory().total / 2**30
    print(f"\nCapacity on this machine ({cores} cores, {memory_gb:.0f} GB; think time {args.think:g} s; "
          f" lessons {', '.join(LESSONS)} + check):\n\n{table}\n\n{rule}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": _machine(cores, memory_gb),
            "rows": rows, "rule": rule, "think_s": args.think}, indent=1))
    return 0 if all(r["finished"] == r["learners"] for r in rows) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", default="5,10,20", help="class sizes to run, one after the other")
    parser.add_argument("--think", type=float, default=2.0, help="mean seconds between two cells")
    parser.add_argument("--p95-limit", type=float, default=2.0,
                        help="p95 cell latency (s) a class size must stay under to count for the rule")
    parser.add_argument("--json", default="results/workshop-load.json")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("the load test creates Unix users: run it as root (sudo make workshop-load)", file=sys.stderr)
        return 2
    leftovers = [g for g in (f"wsload{os.getpid() % 100000}",) if group_members(g)]
    if leftovers:
        print(f"group {leftovers[0]} already has members; remove them first", file=sys.stderr)
        return 2
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
