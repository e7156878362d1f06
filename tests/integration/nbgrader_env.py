"""The real nbgrader, in a virtual environment of its own: ``.venv-nbgrader``.

Only ``tests/integration/test_nbgrader_compat.py`` uses it; learners never need it. It is
built once (``pip install nbgrader==0.9.6``, about a minute; it needs the package registry)
and reused while its stamp file is there. ``make test`` builds it before pytest starts, side
by side with the other environments; the test's fixture builds it when pytest runs alone.

This file uses the standard library only, so that ``make`` can run it with any Python::

    python3 tests/integration/nbgrader_env.py      # prints the venv's python
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

NBGRADER_VERSION = "0.9.6"
ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-nbgrader"
STAMP = VENV / f".installed-nbgrader-{NBGRADER_VERSION}"


def python() -> Path:
    """The nbgrader venv's interpreter (it may not exist yet)."""
    return VENV / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def ensure() -> Path:
    """Build the venv unless its stamp says it is complete; return its python.

    Not safe to call from two processes at once: callers that may race hold a lock.
    Raises ``RuntimeError`` with pip's own message when the install fails.
    """
    if STAMP.exists():
        return python()
    if VENV.exists():
        shutil.rmtree(VENV)  # a half-built venv from an interrupted run
    venv.EnvBuilder(with_pip=True).create(VENV)
    done = subprocess.run(
        [str(python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         f"nbgrader=={NBGRADER_VERSION}"], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(
            f"could not install nbgrader {NBGRADER_VERSION} into {VENV} (it needs the package "
            f"registry; set COURSE_SKIP_NBGRADER=1 to skip its tests):\n{done.stderr[-3000:]}")
    STAMP.touch()
    return python()


if __name__ == "__main__":
    try:
        print(ensure())
    except RuntimeError as error:
        sys.exit(str(error))
