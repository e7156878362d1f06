"""Run the course the way a learner meets it: JupyterLab from ``.venv`` in headless Chromium.

Used by ``tests/integration/test_browser.py``. Three pieces, each cleaned up by its caller:

- :func:`start_lab` starts JupyterLab on a free loopback port with a random token and
  throwaway config/data/settings/workspace/runtime folders, so no user state leaks in;
  :func:`stop_lab` shuts it down (kernels included) and kills whatever is left.
- :func:`launch_chromium` starts Debian's ``/usr/bin/chromium`` through Playwright
  (nothing is downloaded; ``playwright install`` is never needed).
- the ``*_JS`` snippets read JupyterLab's own notebook model (``window.jupyterapp``, exposed
  with ``--LabApp.expose_app_in_browser``), which is more precise than scraping the page:
  an error output is ``output_type == "error"``, not any red stderr text.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
INSTALL_HINT = (
    "Chromium is needed at /usr/bin/chromium for the JupyterLab browser test. "
    "Install it with `sudo apt-get install chromium` (`make test` does it when run as root)."
)
SCREENSHOTS = ROOT / "test-output" / "browser"


def chromium_missing_reason(path: Path = CHROMIUM) -> str | None:
    """Why the browser test cannot run here, or None when it can.

    >>> print(chromium_missing_reason(Path("/nonexistent/chromium")))  # doctest: +ELLIPSIS
    /nonexistent/chromium not found. ... Install it with `sudo apt-get install chromium` ...
    """
    if not (path.is_file() and os.access(path, os.X_OK)):
        return f"{path} not found. {INSTALL_HINT}"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LabServer:
    """A running JupyterLab; ``process`` leads its own process group."""

    process: subprocess.Popen
    port: int
    token: str
    log: Path
    seen: list[psutil.Process] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def api(self, path: str, method: str = "GET", body: Any = None, timeout: float = 30) -> Any:
        """Call the server's REST API (``/api/...``) with the token; JSON in, JSON out."""
        request = urllib.request.Request(
            self.url(path), method=method, headers={"Authorization": f"token {self.token}"},
            data=None if body is None else json.dumps(body).encode(),
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def end_sessions(self) -> None:
        """Shut down every notebook session and its kernel (between two notebooks)."""
        for session in self.api("api/sessions"):
            self.api(f"api/sessions/{session['id']}", method="DELETE")

    def remember_processes(self) -> None:
        """Note the server's descendants (kernels live in their own session, so a
        process-group kill would miss them)."""
        self.seen += _descendants(self.process.pid, known=self.seen)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def _descendants(pid: int, known: Sequence[psutil.Process] = ()) -> list[psutil.Process]:
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in children if p not in known]


def lab_environment(workdir: Path) -> dict[str, str]:
    """The server's environment: the course's ``.venv`` first on PATH, every Jupyter and
    IPython folder inside ``workdir``, and the inline plot backend a learner gets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JPY_"))}
    env.pop("MPLBACKEND", None)  # make test sets Agg; in the browser plots are inline
    folders = {
        "JUPYTER_CONFIG_DIR": "config", "JUPYTER_DATA_DIR": "data",
        "JUPYTER_RUNTIME_DIR": "runtime", "IPYTHONDIR": "ipython", "MPLCONFIGDIR": "mpl",
    }
    for name, sub in folders.items():
        (workdir / sub).mkdir(parents=True, exist_ok=True)
        env[name] = str(workdir / sub)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    return env


#: User settings the test starts from: JupyterLab's defaults except that it never saves
#: on its own (the notebooks stay as committed) and never asks to fetch news.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                    "checkForUpdates": False},
}


def start_lab(workdir: Path, root: Path = ROOT, timeout: float = 60,
              extra_env: dict[str, str] | None = None) -> LabServer:
    """Start ``jupyter lab`` serving ``root`` and wait until its API answers."""
    jupyter = Path(sys.executable).parent / "jupyter"
    for plugin, values in LAB_SETTINGS.items():
        path = workdir / "settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    token = secrets.token_hex(16)
    port = free_port()
    log = workdir / "jupyterlab.log"
    command = [
        str(jupyter), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--ServerApp.terminals_enabled=False", "--LabApp.expose_app_in_browser=True",
        f"--LabApp.user_settings_dir={workdir / 'settings'}",
        f"--LabApp.workspaces_dir={workdir / 'workspaces'}",
        "--LabApp.news_url=", "--LabApp.extension_manager=readonly",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if getattr(os, "geteuid", lambda: -1)() == 0:  # CI and containers run as root
        command.append("--allow-root")
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=root, env={**lab_environment(workdir), **(extra_env or {})}, stdout=out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    server = LabServer(process=process, port=port, token=token, log=log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {process.returncode}:\n"
                               f"{server.log_tail()}")
        try:
            server.api("api/status", timeout=2)
            return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    stop_lab(server)
    raise TimeoutError(f"JupyterLab did not answer within {timeout:.0f} s:\n{server.log_tail()}")


def stop_lab(server: LabServer, grace: float = 10) -> None:
    """Shut the server down politely (it stops its kernels), then kill what remains."""
    server.remember_processes()
    if server.process.poll() is None:
        try:
            server.api("api/shutdown", method="POST", timeout=3)
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            pass
        try:
            server.process.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    _kill_group(server.process)
    kill_all(server.seen)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        pass


#: Environment variable that marks every process a :class:`ProcessWatch` is responsible for.
MARKER_VAR = "COURSE_BROWSER_TEST"


class ProcessWatch:
    """Every process this test process starts, however deep: the server, its kernels (which
    run in their own session), Playwright's driver, Chromium and its helpers.

    Two nets: descendants of this process seen by :meth:`snapshot`, and any process whose
    environment carries this watch's marker (``env``; give it to the server and the browser),
    which also catches helpers that detach from their parent (Chromium's crash handler).
    """

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.before = set(self.me.children(recursive=True))
        self.env = {MARKER_VAR: secrets.token_hex(8)}
        self.seen: list[psutil.Process] = []
        self.cmdlines: dict[int, list[str]] = {}

    def _marked(self) -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter():
            try:
                if proc.environ().get(MARKER_VAR) == self.env[MARKER_VAR]:
                    found.append(proc)
            except psutil.Error:  # gone, or not ours to read
                pass
        return found

    def snapshot(self) -> None:
        for proc in [*self.me.children(recursive=True), *self._marked()]:
            if proc not in self.before and proc not in self.seen:
                self.seen.append(proc)
                try:
                    self.cmdlines[proc.pid] = proc.cmdline()
                except psutil.Error:
                    try:
                        self.cmdlines[proc.pid] = [proc.name()]
                    except psutil.Error:  # it exited between the listing and now
                        self.cmdlines[proc.pid] = []

    def survivors(self, grace: float = 5) -> list[psutil.Process]:
        """Processes still alive after ``grace`` seconds for them to finish exiting."""
        self.snapshot()
        psutil.wait_procs(alive_among(self.seen), timeout=grace)
        return alive_among(self.seen)


def kill_all(processes: list[psutil.Process], grace: float = 5) -> None:
    """Terminate, then kill, each process that is still running (by pid, nothing broader)."""
    alive = alive_among(processes)
    for proc in alive:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, still = psutil.wait_procs(alive, timeout=grace)
    for proc in still:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(still, timeout=grace)


def alive_among(processes: list[psutil.Process]) -> list[psutil.Process]:
    """The processes that still run (same pid *and* start time; zombies count as gone)."""
    alive = []
    for proc in processes:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


def describe(processes: list[psutil.Process]) -> str:
    lines = []
    for proc in processes:
        try:
            lines.append(f"  pid {proc.pid}: {' '.join(proc.cmdline())[:160]}")
        except psutil.Error:
            lines.append(f"  pid {proc.pid}")
    return "\n".join(lines)


def launch_chromium(playwright: Any, extra_env: dict[str, str] | None = None) -> Any:
    """Debian's Chromium, headless, through Playwright (no browser download)."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=60_000,
        env={**os.environ, **(extra_env or {})},
    )


@contextmanager
def open_chromium(playwright: Any, watch: ProcessWatch) -> Iterator[Any]:
    """``launch_chromium`` for a ``with`` block: the process list is snapshot before the
    browser closes, so that ``watch.survivors()`` afterwards sees everything it started."""
    chromium = launch_chromium(playwright, extra_env=watch.env)
    try:
        yield chromium
    finally:
        watch.snapshot()
        chromium.close()


# --- reading JupyterLab's state from the page -------------------------------------------

#: True once the current tab is a notebook whose kernel is connected and idle.
KERNEL_IDLE_JS = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = panel && panel.sessionContext && panel.sessionContext.session
    && panel.sessionContext.session.kernel;
  return !!(kernel && kernel.status === 'idle' && kernel.connectionStatus === 'connected'
            && panel.content && panel.content.model);
}"""

#: The kernel's name and display name as JupyterLab shows them.
KERNEL_INFO_JS = """() => {
  const ctx = window.jupyterapp.shell.currentWidget.sessionContext;
  return {name: ctx.session.kernel.name, display: ctx.kernelDisplayName,
          path: ctx.path, status: ctx.session.kernel.status};
}"""

#: One record per code cell: execution count, tags, output types and error details.
CELLS_JS = """() => {
  const model = window.jupyterapp.shell.currentWidget.content.model;
  const cells = [];
  for (let i = 0; i < model.cells.length; i++) {
    const cell = model.cells.get(i);
    if (cell.type !== 'code') continue;
    const outputs = [];
    for (let j = 0; j < cell.outputs.length; j++) {
      const out = cell.outputs.get(j).toJSON();
      outputs.push({type: out.output_type, name: out.name || null,
                    ename: out.ename || null, evalue: out.evalue || null});
    }
    cells.push({index: i, count: cell.executionCount, tags: cell.getMetadata('tags') || [],
                source: cell.sharedModel.getSource().slice(0, 200), outputs});
  }
  return cells;
}"""

#: "done" once the kernel is idle and every code cell has an execution count, "error" as
#: soon as a cell not tagged raises-exception shows an error output (Run All stops there).
RUN_STATUS_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const model = panel.content.model;
  let pending = false;
  for (let i = 0; i < model.cells.length; i++) {
    const cell = model.cells.get(i);
    if (cell.type !== 'code') continue;
    const tags = cell.getMetadata('tags') || [];
    for (let j = 0; j < cell.outputs.length; j++) {
      if (cell.outputs.get(j).type === 'error' && !tags.includes('raises-exception')) {
        return 'error';
      }
    }
    if (cell.executionCount == null) pending = true;
  }
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return (!pending && kernel && kernel.status === 'idle') ? 'done' : false;
}"""

#: How many outputs hold a widget view (ipywidgets, tqdm.auto bars) in the notebook's model.
WIDGET_OUTPUTS_JS = """() => {
  const model = window.jupyterapp.shell.currentWidget.content.model;
  let n = 0;
  for (let i = 0; i < model.cells.length; i++) {
    const cell = model.cells.get(i);
    if (cell.type !== 'code') continue;
    for (let j = 0; j < cell.outputs.length; j++) {
      const data = cell.outputs.get(j).toJSON().data || {};
      if ('application/vnd.jupyter.widget-view+json' in data) n++;
    }
  }
  return n;
}"""

#: What JupyterLab's widget renderer writes into an output instead of the widget (only outputs
#: are searched: a lesson may quote the message in its prose).
BROKEN_WIDGETS_JS = """() => [...document.querySelectorAll('.jp-OutputArea-output')]
  .map(e => e.textContent.trim())
  .filter(t => /^(Error displaying widget|Loading widget)/.test(t))"""


def visible_text(page: Any, chars: int = 4000) -> str:
    """The page's visible text (the end of it), for failure messages."""
    try:
        text = page.inner_text("body", timeout=5000)
    except Exception as error:  # a report must not fail itself
        return f"(could not read the page: {error})"
    return text[-chars:]


@contextmanager
def explain_failure(page: Any, name: str, server: LabServer | None = None) -> Iterator[None]:
    """Turn any failure inside the block into an AssertionError that carries a screenshot
    path, the page's visible text and the end of JupyterLab's log."""
    try:
        yield
    except Exception as error:
        shot = screenshot(page, f"{name}-FAILED")
        log = server.log_tail(2000) if server else ""
        raise AssertionError(
            f"{name}: {type(error).__name__}: {error}\n\nscreenshot: {shot}\n\n"
            f"--- visible text of the page (end) ---\n{visible_text(page)}\n\n"
            f"--- JupyterLab log (end) ---\n{log}"
        ) from error


def screenshot(page: Any, name: str) -> Path | str:
    """Save a full-page PNG under test-output/browser/ and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    try:
        page.screenshot(path=str(path), full_page=True, timeout=15_000)
    except Exception as error:  # a report must not fail itself
        return f"(no screenshot: {error})"
    return path


def error_outputs(cells: list[dict]) -> list[str]:
    """Error outputs (tracebacks) in cells not tagged ``raises-exception``, described.

    >>> cells = [{"index": 3, "tags": [], "source": "1/0", "outputs": [
    ...     {"type": "stream", "name": "stderr", "ename": None, "evalue": None},
    ...     {"type": "error", "name": None, "ename": "ZeroDivisionError",
    ...      "evalue": "division by zero"}]}]
    >>> error_outputs(cells)
    ['cell 3: ZeroDivisionError: division by zero  (source: 1/0)']
    >>> cells[0]["tags"] = ["raises-exception"]
    >>> error_outputs(cells)
    []
    """
    found = []
    for cell in cells:
        if "raises-exception" in cell["tags"]:
            continue
        for out in cell["outputs"]:
            if out["type"] == "error":
                first_line = cell["source"].splitlines()[0] if cell["source"] else ""
                found.append(f"cell {cell['index']}: {out['ename']}: {out['evalue']}  "
                             f"(source: {first_line})")
    return found
