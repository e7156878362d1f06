"""``python -m course_utils doctor``: is this environment ready for the course?

Each check prints one line, ``PASS``/``WARN``/``FAIL``, and a fix when it is not a pass.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

from course_utils._paths import KERNEL_DISPLAY, KERNEL_NAME

__all__ = ["doctor", "Check"]  # and main(argv), the command line

WIDGET_EXTENSION = Path("share/jupyter/labextensions/@jupyter-widgets/jupyterlab-manager")


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "PASS", "WARN" or "FAIL"
    detail: str
    fix: str = ""

    def __str__(self) -> str:
        line = f"[{self.status}] {self.name}: {self.detail}"
        return line + (f"\n       fix: {self.fix}" if self.fix else "")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _package(name: str, package: str, wanted: str, why: str) -> Check:
    found = _version(package)
    if found is None:
        return Check(name, "FAIL", "not installed", f"pip install {package}=={wanted}  ({why})")
    if found.split("+")[0] != wanted:
        return Check(name, "WARN", f"{found} (the course is tested with {wanted})",
                     f"pip install {package}=={wanted}")
    return Check(name, "PASS", found)


def _checks() -> list[Check]:
    checks = []
    py = platform.python_version()
    checks.append(Check("Python", "PASS", py) if sys.version_info >= (3, 10) else
                  Check("Python", "FAIL", py, "install Python 3.10 or newer (3.11 recommended)"))
    checks.append(_package("PyTorch", "torch", "2.13.0", "the course's deep-learning library"))
    checks.append(_package("JupyterLab", "jupyterlab", "4.6.6", "where the lessons open"))
    checks.append(_package("ipywidgets", "ipywidgets", "8.1.9", "sliders and progress bars"))
    checks.append(_widget_extension())
    checks.append(_kernel())
    checks.append(_device())
    checks.append(_threads())
    return checks


def _widget_extension() -> Check:
    places = [Path(sys.prefix) / WIDGET_EXTENSION, Path(sys.base_prefix) / WIDGET_EXTENSION]
    if any(p.is_dir() for p in places):
        return Check("widget extension", "PASS",
                     "jupyterlab_widgets lab extension installed in this kernel's environment")
    return Check("widget extension", "WARN",
                 "not in this kernel's environment: unless JupyterLab runs from another one that "
                 "has it, widgets show as plain text such as 'IntSlider(value=3, ...)'",
                 "pip install jupyterlab_widgets==3.0.17 where JupyterLab runs, then restart it")


def _kernel() -> Check:
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    except ImportError:
        return Check("course kernel", "FAIL", "jupyter_client is missing", "pip install -r requirements.txt")
    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        return Check("course kernel", "WARN", f"kernel '{KERNEL_NAME}' is not registered",
                     f'python -m ipykernel install --sys-prefix --name {KERNEL_NAME} '
                     f'--display-name "{KERNEL_DISPLAY}"  (make lab does this)')
    return Check("course kernel", "PASS", f"'{KERNEL_NAME}' runs {spec.argv[0]}")


def _device() -> Check:
    try:
        from course_utils.repro import get_device
        device = get_device()
    except ImportError as error:
        return Check("device", "FAIL", f"torch does not import: {error}", "pip install torch==2.13.0")
    note = "accelerator found"
    if device.type == "cpu":
        note = "fine: every lesson is sized to run on a laptop CPU"
    return Check("device", "PASS", f"{device.type} ({note})")


def _threads() -> Check:
    import torch

    threads, omp = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    detail = f"torch uses {threads} thread(s); OMP_NUM_THREADS={omp or 'unset'}; {os.cpu_count()} CPU(s)"
    return Check("threads", "PASS", detail)


def doctor(*, print_report: bool = True) -> list[Check]:
    """Check the environment and print one line per check; return the checks.

    >>> checks = doctor(print_report=False)
    >>> [c.name for c in checks][:2]
    ['Python', 'PyTorch']
    """
    checks = _checks()
    if print_report:
        print("\n".join(str(c) for c in checks))
        failed = sum(c.status == "FAIL" for c in checks)
        warned = sum(c.status == "WARN" for c in checks)
        print(f"\n{len(checks) - failed - warned} passed, {warned} warning(s), {failed} failure(s).")
    return checks


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m course_utils doctor", description=__doc__).parse_args(argv)
    return 1 if any(c.status == "FAIL" for c in doctor()) else 0
