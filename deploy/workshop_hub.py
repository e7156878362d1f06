"""The course's JupyterHub machinery: a shared-password authenticator, a spawner with
per-learner limits, the hook that gives each learner a copy of the course, and checks.

Used by ``deploy/jupyterhub_config.py`` (``make hub``). Learners are Unix users created on
first login and kept in one group (``WORKSHOP_GROUP``, default ``workshop``), so the hub
never logs anyone in as a pre-existing system account, and ``remove-users`` can delete
exactly the accounts a workshop created. The command line (run as root)::

    python deploy/workshop_hub.py seed REPO_ROOT HOME     # copy lessons into HOME (as the learner)
    python deploy/workshop_hub.py check-access REPO_ROOT VENV  # can other users use the course?
    python deploy/workshop_hub.py remove-users GROUP      # delete the group's users and homes

Only the standard library is imported at module level; the JupyterHub classes are built
by :func:`hub_classes`, so ``seed`` runs without JupyterHub.
"""

from __future__ import annotations

import grp
import hmac
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

COURSE_DIRS = ("notebooks", "exercises")
USERNAME_PATTERN = r"^[a-z][a-z0-9]{1,30}$"


# --- the learner's copy of the course -------------------------------------------------

def seed_home(repo_root: Path, home: Path, dirs: tuple[str, ...] = COURSE_DIRS) -> list[str]:
    """Copy every course file that ``home`` does not have yet; never overwrite one.

    A learner's edited notebook stays as it is; a lesson added to the course later
    appears at the next start. Returns the copied paths, relative to ``home``.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as repo, tempfile.TemporaryDirectory() as home:
    ...     _ = Path(repo, "notebooks").mkdir(), Path(repo, "notebooks", "01.ipynb").write_text("v1")
    ...     first = seed_home(Path(repo), Path(home), ("notebooks",))
    ...     _ = Path(home, "notebooks", "01.ipynb").write_text("my edits")
    ...     _ = Path(repo, "notebooks", "02.ipynb").write_text("new lesson")
    ...     second = seed_home(Path(repo), Path(home), ("notebooks",))
    ...     (first, second, Path(home, "notebooks", "01.ipynb").read_text())
    (['notebooks/01.ipynb'], ['notebooks/02.ipynb'], 'my edits')
    """
    copied = []
    for name in dirs:
        source = Path(repo_root) / name
        for path in sorted(source.rglob("*")):
            if not path.is_file() or any(part.startswith(".") for part in path.relative_to(source).parts):
                continue  # skip checkpoints and hidden files
            target = Path(home) / name / path.relative_to(source)
            if target.exists() or target.is_symlink():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            copied.append(str(target.relative_to(home)))
    return copied


# --- can learner accounts reach the course? ---------------------------------------------

def access_problems(paths: list[Path]) -> list[str]:
    """Name every directory or file on ``paths`` that other users cannot reach.

    Learners run the course's Python, kernel and ``check`` as their own Unix users, so
    every directory from ``/`` down must be searchable by others (``o+x``) and every file
    readable (``o+r``; programs also ``o+x``).

    >>> access_problems([Path("/usr/bin/env")])
    []
    """
    problems: list[str] = []
    for path in paths:
        path = Path(path).absolute()
        for parent in reversed(path.parents):
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                problems.append(f"{parent} is {stat.filemode(mode)}: other users cannot enter it "
                                f"(fix: chmod o+x {parent})")
        mode = path.stat().st_mode
        need = stat.S_IROTH | (stat.S_IXOTH if path.is_dir() or mode & stat.S_IXUSR else 0)
        if mode & need != need:
            fix = "o+rX -R" if path.is_dir() else "o+r"
            problems.append(f"{path} is {stat.filemode(mode)}: other users cannot read it "
                            f"(fix: chmod {fix} {path})")
    return list(dict.fromkeys(problems))


def course_paths(repo_root: Path, python: Path) -> list[Path]:
    """The files and folders a learner's processes must be able to read."""
    root = Path(repo_root)
    return [python, Path(python).resolve(), root / "course_utils" / "__init__.py",
            root / "solutions", root / "notebooks", root / "exercises", root / "deploy" / "workshop_hub.py"]


# --- learner accounts -------------------------------------------------------------------

def group_members(group: str) -> list[str]:
    """Users whose supplementary group list includes ``group`` (empty if it does not exist)."""
    try:
        return sorted(grp.getgrnam(group).gr_mem)
    except KeyError:
        return []


def ensure_group(group: str) -> None:
    """Create the workshop's Unix group when it is missing (root only)."""
    try:
        grp.getgrnam(group)
    except KeyError:
        subprocess.run(["groupadd", group], check=True, capture_output=True)


def remove_users(group: str) -> list[str]:
    """Delete every member of ``group`` with its home directory, then the group itself."""
    removed = []
    for name in group_members(group):
        if pwd.getpwnam(name).pw_uid < 1000:
            raise RuntimeError(f"{name} is a system account (uid < 1000) in group {group}; not removing it")
        subprocess.run(["pkill", "-KILL", "-u", name], check=False, capture_output=True)
        done = subprocess.run(["userdel", "--remove", name], capture_output=True, text=True)
        if done.returncode not in (0, 12):  # 12: home could not be removed (already gone)
            raise RuntimeError(f"userdel {name} failed: {done.stderr.strip()}")
        removed.append(name)
    subprocess.run(["groupdel", group], check=False, capture_output=True)
    return removed


def add_user_command(group: str, home_base: str) -> list[str]:
    """``useradd`` arguments (the hub appends the name): own group, private home, bash.

    >>> add_user_command("workshop", "/home")[:4]
    ['useradd', '--create-home', '--base-dir', '/home']
    """
    return ["useradd", "--create-home", "--base-dir", home_base, "--key", "HOME_MODE=0700",
            "--user-group", "--groups", group, "--shell", "/bin/bash"]


def password_from(env: dict[str, str], name: str, default_file: Path) -> str:
    """The password in ``$NAME``, else in the file ``$NAME_FILE`` (default ``default_file``)."""
    if env.get(name):
        return env[name]
    path = Path(env.get(f"{name}_FILE", default_file))
    if not path.is_file():
        raise SystemExit(f"no {name}: set the environment variable {name} or write it to {path} "
                         "(make hub creates that file with a random password)")
    password = path.read_text().strip()
    if len(password) < 8:
        raise SystemExit(f"{path}: the password must have at least 8 characters")
    return password


# --- the JupyterHub classes -----------------------------------------------------------

def hub_classes() -> tuple[type, type]:
    """Build ``(WorkshopAuthenticator, WorkshopSpawner)``; imports JupyterHub."""
    import resource

    from jupyterhub.auth import LocalAuthenticator
    from jupyterhub.spawner import LocalProcessSpawner
    from traitlets import Dict, Int, Unicode

    class WorkshopAuthenticator(LocalAuthenticator):
        """Everyone logs in with the workshop's shared password; the instructor with their own.

        A name that already belongs to a system account outside the workshop group is
        refused, so nobody can log in as ``root`` or as an existing user.
        """

        workshop_password = Unicode(config=True, help="the password learners share")
        admin_passwords = Dict(config=True, help="{admin name: password} for instructors")
        workshop_group = Unicode("workshop", config=True, help="Unix group of workshop accounts")

        def _is_foreign_account(self, name: str) -> bool:
            try:
                pwd.getpwnam(name)
            except KeyError:
                return False
            return name not in group_members(self.workshop_group)

        async def authenticate(self, handler: Any, data: dict[str, str]) -> str | None:
            name = self.normalize_username(data.get("username", ""))
            given = data.get("password", "").encode()
            expected = self.admin_passwords.get(name, self.workshop_password).encode()
            if not (self.validate_username(name) and re.match(USERNAME_PATTERN, name)):
                self.log.warning("refused login: %r is not a valid workshop name", name)
                return None
            if not hmac.compare_digest(given, expected) or not expected:
                self.log.warning("refused login for %s: wrong password", name)
                return None
            if self._is_foreign_account(name):
                self.log.warning("refused login: %s is an existing account outside group %s",
                                 name, self.workshop_group)
                return None
            return name

    class WorkshopSpawner(LocalProcessSpawner):
        """LocalProcessSpawner plus hard per-process limits (no cgroups: see book/workshop.md).

        ``memory_limit_mb`` caps each process's address space (the server, each kernel,
        each ``check``): an allocation beyond it fails with ``MemoryError`` in that process
        only. ``max_processes`` caps the processes and threads of the learner's Unix user.
        """

        memory_limit_mb = Int(4096, config=True, help="RLIMIT_AS per process, MB (0: none)")
        max_processes = Int(512, config=True, help="RLIMIT_NPROC for the learner's uid (0: none)")

        def make_preexec_fn(self, name: str):  # type: ignore[no-untyped-def]
            become_user = super().make_preexec_fn(name)
            memory, nproc = self.memory_limit_mb, self.max_processes

            def preexec() -> None:
                if memory > 0:
                    limit = memory * 1024 * 1024
                    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
                if nproc > 0:
                    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
                become_user()

            return preexec

    return WorkshopAuthenticator, WorkshopSpawner


def make_pre_spawn_hook(repo_root: Path, python: Path):  # type: ignore[no-untyped-def]
    """A hook that makes the learner's home private and copies in the course as the learner."""
    import asyncio

    async def pre_spawn_hook(spawner: Any) -> None:
        user = pwd.getpwnam(spawner.user.name)
        os.chmod(user.pw_dir, 0o700)  # the home itself; useradd's HOME_MODE does it as well
        # run the copy with the learner's own rights: a symlink in their home cannot
        # make the hub write anywhere the learner could not write already
        process = await asyncio.create_subprocess_exec(
            str(python), str(Path(__file__).resolve()), "seed", str(repo_root), user.pw_dir,
            user=user.pw_uid, group=user.pw_gid, extra_groups=[], cwd=user.pw_dir,
            env={"HOME": user.pw_dir, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(process.communicate(), timeout=120)
        if process.returncode:
            raise RuntimeError(f"copying the course into {user.pw_dir} failed: {out.decode()[-2000:]}")
        spawner.log.info("course copy for %s: %s", user.pw_name, out.decode().strip() or "up to date")

    return pre_spawn_hook


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "seed":
        copied = seed_home(Path(argv[1]), Path(argv[2]))
        print(f"copied {len(copied)} new file(s)" if copied else "")
        return 0
    if len(argv) == 3 and argv[0] == "check-access":
        root = Path(argv[1]).absolute()
        problems = access_problems(course_paths(root, root / argv[2] / "bin" / "python"))
        for line in problems:
            print(line, file=sys.stderr)
        return 1 if problems else 0
    if len(argv) == 2 and argv[0] == "remove-users":
        removed = remove_users(argv[1])
        print(f"removed {len(removed)} user(s): {' '.join(removed)}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
