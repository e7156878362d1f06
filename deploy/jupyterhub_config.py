# JupyterHub configuration for a workshop on one server: `make hub` (see book/workshop.md,
# "Run a workshop on one server"). Everything is set through environment variables:
#
#   HUB_IP, HUB_PORT          where learners connect (default 127.0.0.1:8000; use 0.0.0.0 behind
#                             a firewall or TLS proxy to open it to a room)
#   HUB_STATE_DIR             database, cookie secret, passwords, logs (default .hub/)
#   WORKSHOP_PASSWORD[_FILE]  the learners' shared password (default file .hub/workshop-password)
#   WORKSHOP_ADMIN            the instructor's login name (default instructor), an admin
#   INSTRUCTOR_PASSWORD[_FILE] the instructor's password (default file .hub/instructor-password)
#   WORKSHOP_GROUP            Unix group of the accounts the hub creates (default workshop)
#   WORKSHOP_HOME_BASE        where their homes go (default /home)
#   WORKSHOP_MEMORY_MB        address-space limit per learner process (default 4096; 0: none)
#   WORKSHOP_MAX_PROCESSES    process/thread limit per learner (default 512; 0: none)
#   WORKSHOP_SERVICE_TOKEN    optional: an admin API token for the load test
#   COURSE_VENV               the environment learners use (default .venv-hub, see the Makefile)
#
# The hub runs as root: it creates Unix users and starts each learner's server as that user.
import os
import sys
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
sys.path.insert(0, str(DEPLOY))

from workshop_hub import (  # noqa: E402
    USERNAME_PATTERN,
    access_problems,
    add_user_command,
    course_paths,
    ensure_group,
    hub_classes,
    make_pre_spawn_hook,
    password_from,
)

c = get_config()  # type: ignore[name-defined]  # noqa: F821
env = os.environ
state = Path(env.get("HUB_STATE_DIR", ROOT / ".hub")).resolve()
state.mkdir(mode=0o700, parents=True, exist_ok=True)
venv_bin = Path(env.get("COURSE_VENV", ROOT / ".venv-hub")) / "bin"
python = venv_bin / "python"

problems = access_problems(course_paths(ROOT, python))
if problems:
    sys.exit("Learner accounts could not use the course:\n  " + "\n  ".join(problems))

group = env.get("WORKSHOP_GROUP", "workshop")
ensure_group(group)
admin = env.get("WORKSHOP_ADMIN", "instructor")
Authenticator, Spawner = hub_classes()

# --- network: loopback unless told otherwise ------------------------------------------
c.JupyterHub.ip = env.get("HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(env.get("HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(env.get("HUB_API_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{env.get('HUB_PROXY_API_PORT', '8001')}"
c.ConfigurableHTTPProxy.command = [str(ROOT / "deploy/proxy/node_modules/.bin/configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
c.Spawner.ip = "127.0.0.1"

# --- state ----------------------------------------------------------------------------
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "cookie_secret")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")

# --- who may log in -----------------------------------------------------------------------
c.JupyterHub.authenticator_class = Authenticator
c.WorkshopAuthenticator.workshop_password = password_from(env, "WORKSHOP_PASSWORD",
                                                          state / "workshop-password")
c.WorkshopAuthenticator.admin_passwords = {
    admin: password_from(env, "INSTRUCTOR_PASSWORD", state / "instructor-password")}
c.WorkshopAuthenticator.workshop_group = group
c.WorkshopAuthenticator.create_system_users = True
c.WorkshopAuthenticator.add_user_cmd = add_user_command(group, env.get("WORKSHOP_HOME_BASE", "/home"))
c.Authenticator.username_pattern = USERNAME_PATTERN
c.Authenticator.allow_all = True  # the shared password is the gate
c.Authenticator.admin_users = {admin}

# --- each learner's server --------------------------------------------------------------
c.JupyterHub.spawner_class = Spawner
c.Spawner.cmd = [str(venv_bin / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab/tree/notebooks/00_start_here.ipynb"
c.Spawner.notebook_dir = "~"
c.Spawner.environment = {
    # `python -m course_utils check ...` in a terminal uses the course's Python
    "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",  # one core per kernel: fair sharing
}
c.Spawner.start_timeout = int(env.get("WORKSHOP_START_TIMEOUT", "120"))
c.Spawner.http_timeout = int(env.get("WORKSHOP_START_TIMEOUT", "120"))
c.Spawner.pre_spawn_hook = make_pre_spawn_hook(ROOT, python)
c.WorkshopSpawner.memory_limit_mb = int(env.get("WORKSHOP_MEMORY_MB", "4096"))
c.WorkshopSpawner.max_processes = int(env.get("WORKSHOP_MAX_PROCESSES", "512"))

# --- the load test's service account (only when a token is given) -------------------------
if env.get("WORKSHOP_SERVICE_TOKEN"):
    c.JupyterHub.services = [{"name": "workshop-load", "api_token": env["WORKSHOP_SERVICE_TOKEN"]}]
    c.JupyterHub.load_roles = [{
        "name": "workshop-load", "services": ["workshop-load"],
        "scopes": ["admin:users", "admin:servers", "tokens", "access:servers", "list:users",
                   "read:users"]}]
