"""Offline checks of the deployment files: Zero to JupyterHub values, postBuild, Binder, make hub.

What these tests cannot check here (no Kubernetes, no Docker, no internet) is listed in the
book/workshop.md, "Beyond one server".
"""

from __future__ import annotations

import importlib.util
import json
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, DEPLOY / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(DEPLOY))  # load_test imports workshop_hub
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def values() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "values.yaml").read_text())


def documented_keys() -> tuple[set[str], list[str]]:
    """Exact keys and free-form prefixes (``x.*``) from deploy/z2jh-keys.txt."""
    exact, free = set(), []
    for line in (DEPLOY / "z2jh-keys.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            (free.append(line[:-2]) if line.endswith(".*") else exact.add(line))
    return exact, free


def key_paths(tree: dict[str, Any], prefix: str = "") -> list[str]:
    paths = []
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        paths.append(path)
        if isinstance(value, dict):
            paths.extend(key_paths(value, path))
    return paths


def undocumented(paths: list[str]) -> list[str]:
    exact, free = documented_keys()
    return [p for p in paths if p not in exact and not any(p.startswith(f + ".") for f in free)]


def test_values_yaml_parses_and_sets_the_course_image() -> None:
    v = values()
    assert v["singleuser"]["image"]["name"].endswith("sizing-nn")
    assert v["singleuser"]["defaultUrl"].endswith("notebooks/00_start_here.ipynb")
    assert v["hub"]["config"]["JupyterHub"]["authenticator_class"] == "shared-password"


def test_hub_config_works_with_jupyterhubs_shared_password_login() -> None:
    """Load values.yaml's hub.config into JupyterHub's own authenticator and log in."""
    import asyncio

    from jupyterhub.authenticators.shared import SharedPasswordAuthenticator
    from traitlets.config import Config

    config = values()["hub"]["config"]
    config["SharedPasswordAuthenticator"] = {"user_password": "w" * 8, "admin_password": "i" * 32}
    auth = SharedPasswordAuthenticator(config=Config(config))
    auth.check_allow_config()

    def login(name: str, password: str) -> object:
        return asyncio.run(auth.get_authenticated_user(None, {"username": name, "password": password}))

    assert login("ada", "w" * 8)["name"] == "ada"
    assert login("ada", "wrong-password") is None
    assert login("instructor", "w" * 8) is None, "the admin must use the admin password"
    assert login("instructor", "i" * 32)["admin"] is True


def test_every_values_key_is_documented_by_the_chart() -> None:
    paths = key_paths(values())
    assert len(paths) > 20
    assert undocumented(paths) == [], "deploy/values.yaml sets keys the chart does not document"


def test_the_key_check_catches_a_misspelt_key() -> None:
    # the same check must fail on typos, or the test above proves nothing
    assert undocumented(["singleuser.image.nmae", "singleuser.memory.limit", "hub.extraConfig.x"]) == [
        "singleuser.image.nmae"]
    assert undocumented(["singleuser.storage.homeMountPath", "cull.timeoutt"]) == ["cull.timeoutt"]


def test_key_list_is_derived_from_a_schema() -> None:
    z2jh_keys = _load("z2jh_keys")
    schema = {"properties": {"cull": {"type": "object", "additionalProperties": False,
                                      "properties": {"timeout": {"type": "integer"}}},
                             "hub": {"type": "object", "properties": {"extraEnv": {"type": "object"}}}}}
    assert z2jh_keys.keys(schema) == ["cull", "cull.timeout", "hub", "hub.extraEnv", "hub.extraEnv.*"]
    header = (DEPLOY / "z2jh-keys.txt").read_text().splitlines()[0]
    assert "values.schema.yaml" in header and "appVersion 5.5" in header


def test_nbgitpuller_pull_and_link_agree() -> None:
    single = values()["singleuser"]
    command = single["lifecycleHooks"]["postStart"]["exec"]["command"]
    assert command[0] == "gitpuller" and len(command) == 4
    _, repo, branch, target = command
    notebook_dir = values()["hub"]["config"]["Spawner"]["notebook_dir"]
    assert single["storage"]["homeMountPath"] == notebook_dir
    assert target == f"{notebook_dir}/sizing-nn"
    link = re.search(r"nbgitpuller link: (\S+)", (DEPLOY / "values.yaml").read_text()).group(1)
    url = urlparse(link)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.path == "/hub/user-redirect/git-pull"
    assert query == {"repo": repo, "branch": branch, "targetpath": "sizing-nn",
                     "urlpath": single["defaultUrl"].lstrip("/")}


def test_image_environment_is_ours() -> None:
    # repo2docker builds the image from environment.yml (pins checked against requirements.txt
    # in test_environment.py); postBuild adds only course_utils, the kernel and a pinned nbgitpuller
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "jupyterhub==5.5.4" in pip, "the image needs jupyterhub-singleuser matching the hub"
    assert not (ROOT / "binder").exists() and not (ROOT / ".binder").exists(), \
        "a binder/ folder would make repo2docker ignore environment.yml and postBuild at the root"
    assert not (ROOT / "requirements.txt").read_text().count("-e"), "requirements.txt must stay pins only"


def test_postbuild_installs_the_package_and_the_kernel() -> None:
    post = ROOT / "postBuild"
    assert post.stat().st_mode & stat.S_IXUSR, "postBuild must be executable"
    text = post.read_text()
    assert text.startswith("#!/bin/bash\n") and "set -euo pipefail" in text
    commands = [line for line in text.splitlines() if line and not line.startswith("#")][1:]
    assert commands == [
        "python -m pip install --no-deps -e .",
        "python -m pip install --no-deps nbgitpuller==1.3.0",
        "python -m ipykernel install --sys-prefix --name sizing-nn "
        '--display-name "Python 3 (sizing-nn course)"',
    ]
    assert subprocess.run(["bash", "-n", str(post)]).returncode == 0


def test_proxy_is_pinned_in_the_project() -> None:
    package = json.loads((DEPLOY / "proxy" / "package.json").read_text())
    lock = json.loads((DEPLOY / "proxy" / "package-lock.json").read_text())
    version = package["dependencies"]["configurable-http-proxy"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), "pin configurable-http-proxy exactly"
    assert lock["packages"]["node_modules/configurable-http-proxy"]["version"] == version


def test_hub_config_binds_loopback_by_default() -> None:
    text = (DEPLOY / "jupyterhub_config.py").read_text()
    assert 'c.JupyterHub.ip = env.get("HUB_IP", "127.0.0.1")' in text
    assert 'c.JupyterHub.hub_ip = "127.0.0.1"' in text and 'c.Spawner.ip = "127.0.0.1"' in text


def test_seed_home_never_overwrites_and_adds_new_lessons(tmp_path: Path) -> None:
    hub = _load("workshop_hub")
    repo, home = tmp_path / "repo", tmp_path / "home"
    (repo / "notebooks").mkdir(parents=True)
    (repo / "exercises" / ".ipynb_checkpoints").mkdir(parents=True)
    (repo / "notebooks" / "01.ipynb").write_text("lesson 1")
    (repo / "exercises" / "01.ipynb").write_text("exercise 1")
    (repo / "exercises" / ".ipynb_checkpoints" / "01-checkpoint.ipynb").write_text("junk")
    assert hub.seed_home(repo, home) == ["notebooks/01.ipynb", "exercises/01.ipynb"]
    (home / "exercises" / "01.ipynb").write_text("my answers")
    (home / "notebooks" / "01.ipynb").unlink()  # a learner who deleted a lesson gets it back
    (repo / "notebooks" / "02.ipynb").write_text("lesson 2")
    assert hub.seed_home(repo, home) == ["notebooks/01.ipynb", "notebooks/02.ipynb"]
    assert (home / "exercises" / "01.ipynb").read_text() == "my answers"
    assert not (home / "exercises" / ".ipynb_checkpoints").exists()


def test_seed_home_does_not_follow_a_planted_symlink(tmp_path: Path) -> None:
    hub = _load("workshop_hub")
    repo, home, elsewhere = tmp_path / "repo", tmp_path / "home", tmp_path / "elsewhere"
    (repo / "notebooks").mkdir(parents=True)
    (repo / "notebooks" / "01.ipynb").write_text("lesson 1")
    (home / "notebooks").mkdir(parents=True)
    elsewhere.write_text("precious")
    (home / "notebooks" / "01.ipynb").symlink_to(elsewhere)
    assert hub.seed_home(repo, home) == []
    assert elsewhere.read_text() == "precious"


def test_access_problems_names_the_directory_and_the_fix(tmp_path: Path) -> None:
    hub = _load("workshop_hub")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    target = private / "python"
    target.write_text("")
    target.chmod(0o755)
    problems = hub.access_problems([target])
    assert any(f"{private} is drwx------" in p and f"chmod o+x {private}" in p for p in problems), problems
    private.chmod(0o755)
    assert not [p for p in hub.access_problems([target]) if str(private) in p]


@pytest.mark.parametrize("name, ok", [("ada", True), ("a1", True), ("Ada", False), ("root-x", False),
                                      ("a", False), ("../etc", False), ("x" * 32, False)])
def test_username_pattern(name: str, ok: bool) -> None:
    hub = _load("workshop_hub")
    assert bool(re.match(hub.USERNAME_PATTERN, name)) is ok


@pytest.mark.parametrize("name", ["workshop_hub", "z2jh_keys", "load_test"])
def test_deploy_doctests(name: str) -> None:
    import doctest

    module = _load(name)
    failures, tried = doctest.testmod(module)
    assert tried > 0 and failures == 0
