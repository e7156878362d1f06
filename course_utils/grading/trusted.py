"""The trusted verdict: the grader compares, itself, what the learner's answer computes with
what the solution computes, for sizes and seeds it draws at random.

Every graded question has probes in ``solutions/probes/NN_topic.py`` (``load_probes`` reads
them as text). A probe is a function marked ``@probe("qN_test", n=(1, 64), ...)``: the grader
draws its variables (and ``seed``), runs its body with them in the learner's kernel and in a
*reference* kernel that holds only the solution's cells (``References``), receives two JSON
texts (``observe.run_probe``), and compares them here with its own code (``compare``).
Learner code never runs in this process or in the reference kernel, and whatever it does in
its own kernel it can only change the text it sends back: it passes only by sending the
solution's values for inputs it did not know in advance.

A probe may give the reference its own body (``@name.reference``, which also gets the
learner's result as the JSON text ``learner``: a model to rebuild; such a question gets a
reference kernel of its own, ``References.fresh``), and may be a *judge* (``judge=True``):
then the reference's result must be ``true``, and a string is the reason it is not. The
committed test cells still run in the learner's kernel, for their precise messages and for
nbgrader; a question scores only when both verdicts pass.

>>> compare(12, 12), compare(12, 13), compare(1.0, 1.0 + 1e-9), compare([1, 2], [1, 2, 3])
(None, 'a different value', None, 'a list of another length')
"""

from __future__ import annotations

import builtins
import json
import math
import random
import shutil
import string
import tempfile
import textwrap
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from course_utils.grading import notebook_format as fmt
from course_utils.grading import verdict
from course_utils.grading.checks import PROBES_DIR, Probe, draw_values, load_probes, probe
from course_utils.grading.records import TestResult

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from course_utils.grading.assignment import Assignment
    from course_utils.grading.kernel import CellRun, GradingKernel

__all__ = ["PROBES_DIR", "Probe", "probe", "load_probes", "draw_values", "compare", "References",
           "TrustedCheck", "judge_question", "MAX_RESULT_CHARS"]
MAX_RESULT_CHARS = 16_000_000  # JSON text longer than this is a failure, not parsed
_SYSTEM = random.SystemRandom()
_MODULE = "course_utils.grading.observe"


def _call(name: str, probe: Probe, body: str, values: dict[str, Any],
          learner: str | None) -> tuple[str, str]:
    """(code defining the probe function, expression that runs and encodes it)."""
    params = [*probe.params, *(["learner"] if learner is not None else [])]
    code = f"def {name}({', '.join(params)}):\n" + textwrap.indent(body, "    ") + "\n"
    arguments = {**values, **({"learner": learner} if learner is not None else {})}
    call = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
    return code, (f"__import__({_MODULE!r}, fromlist=['run_probe']).run_probe("
                  f"lambda observe: globals().pop({name!r})(observe, {call}))")


def _decode(text: str | None) -> tuple[Any, str]:
    """(value, '') from the kernel's reply, or (None, why it is unusable)."""
    raw = verdict.literal(text) if text and len(text) <= MAX_RESULT_CHARS else None
    if not isinstance(raw, str):
        return None, "no result came back"
    try:
        return json.loads(raw), ""
    except (ValueError, RecursionError):
        return None, "the result is not plain data"


def compare(want: Any, got: Any, rtol: float = 1e-5, atol: float = 1e-6) -> str | None:
    """None when ``got`` is ``want`` (floats within tolerance), else what kind of difference
    it is, in fixed words: neither value is shown (``got`` is the learner's to choose)."""
    try:
        return _compare(want, got, rtol, atol)
    except (OverflowError, ValueError, TypeError, RecursionError):
        return "a value the grader cannot compare"


def _compare(want: Any, got: Any, rtol: float, atol: float) -> str | None:
    if isinstance(want, bool) or want is None or isinstance(want, str):
        return None if type(got) is type(want) and got == want else _DIFFERENT
    if isinstance(want, (int, float)):
        if isinstance(got, bool) or not isinstance(got, (int, float)) or (
                isinstance(want, int) and not isinstance(got, int)):
            return "a different type of value"
        if isinstance(want, int):
            return None if got == want else _DIFFERENT
        return None if _close(float(got), want, rtol, atol) else _DIFFERENT
    if isinstance(want, list):
        if not isinstance(got, list):
            return "a different type of value"
        if len(got) != len(want):
            return "a list of another length"
        found = (_compare(w, g, rtol, atol) for w, g in zip(want, got))
        return next((why for why in found if why), None)
    if isinstance(want, dict) and "$tensor" in want:
        return _compare_tensor(want["$tensor"], got, rtol, atol)
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return "a different type of value"
        if "$error" in got:
            return "an error"
        keys = sorted(k for k in want if not k.startswith("_"))
        if sorted(k for k in got if not k.startswith("_")) != keys:
            return "other keys"
        found = (_compare(want[k], got[k], rtol, atol) for k in keys)
        return next((why for why in found if why), None)
    return "a value the grader cannot compare"


_DIFFERENT = "a different value"


def _close(a: float, b: float, rtol: float, atol: float) -> bool:
    if math.isnan(b) or math.isinf(b):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b or abs(a - b) <= atol + rtol * abs(b)


def _compare_tensor(want: dict, got: Any, rtol: float, atol: float) -> str | None:
    inner = got.get("$tensor") if isinstance(got, dict) else None
    if not isinstance(inner, dict):
        return "a different type of value"
    if inner.get("shape") != want["shape"]:
        return "a tensor of another shape"
    values = inner.get("values")
    if not isinstance(values, list) or len(values) != len(want["values"]):
        return "a tensor whose values do not match its shape"
    for a, b in zip(values, want["values"]):
        if isinstance(a, bool) or not isinstance(a, (int, float)):
            return "a tensor holding something other than numbers"
        if not _close(float(a), float(b), rtol, atol):
            return "a tensor with other values"
    return None


class References:
    """Reference kernels, one per assignment and thread, each holding only the solution's
    setup and answer cells; reused across learners (probes build fresh objects) and closed
    by ``close`` (use as a context manager)."""

    def __init__(self, sandboxed: bool, memory_mb: int, timeout: float) -> None:
        from course_utils.grading.kernel import grading_limits

        self.sandboxed, self.timeout = sandboxed, timeout
        self.limits = grading_limits(memory_mb, timeout)
        self._kernels: dict[tuple, tuple[Any, GradingKernel]] = {}
        self._folders: dict[int, Path] = {}  # kernel id -> its scratch folder
        self._lock = threading.Lock()

    def __enter__(self) -> References:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def kernel(self, assignment: Assignment) -> GradingKernel:
        """This thread's reference kernel for ``assignment`` (started when missing or lost)."""
        key = (threading.get_ident(), assignment.name, len(assignment.solution.cells))
        with self._lock:
            found = self._kernels.get(key)
        if found is not None and found[1].generation == found[0]:
            return found[1]
        if found is not None:
            self.release(found[1])
        kernel = self.fresh(assignment)
        with self._lock:
            self._kernels[key] = (kernel.generation, kernel)
        return kernel

    def fresh(self, assignment: Assignment) -> GradingKernel:
        """A new reference kernel, for the caller to ``release``: for probes that hand it the
        learner's data (a model to rebuild), so nothing of one learner reaches another's."""
        from course_utils.grading.kernel import GradingKernel

        folder = Path(tempfile.mkdtemp(prefix="course-reference-"))
        kernel = GradingKernel(folder / "home", sandboxed=self.sandboxed, limits=self.limits)
        with self._lock:
            self._folders[id(kernel)] = folder
        try:
            kernel.start()
            for cell in assignment.solution.cells:
                if cell.cell_type == "code" and not fmt.is_grade(cell) and cell.source.strip():
                    run = kernel.run(cell.source, self.timeout, store_history=False)
                    if not run.ok:
                        raise RuntimeError(f"the solution's cell {fmt.grade_id(cell) or '?'!r} "
                                           f"failed in the reference kernel: {run.ename}: "
                                           f"{run.evalue[:200]}")
        except BaseException:
            self.release(kernel)
            raise
        return kernel

    def release(self, kernel: GradingKernel) -> None:
        """Shut ``kernel`` down and delete its scratch folder."""
        kernel.shutdown()
        with self._lock:
            folder = self._folders.pop(id(kernel), None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        with self._lock:
            kernels, self._kernels = list(self._kernels.values()), {}
        for _, kernel in kernels:
            self.release(kernel)


@dataclass
class Outcome:
    """The trusted verdict of one question: ``status`` pass, fail or error, and why."""

    status: str
    message: str = ""


class TrustedCheck:
    """Runs one question's probes: ``run(learner_run, reference_kernel, probes, timeout)``,
    where ``learner_run(code, timeout, expressions)`` runs code in the learner's kernel."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or _SYSTEM

    def run(self, learner_run: Any, reference: GradingKernel, probes: list[Probe],
            timeout: float, hidden_lines: list[str]) -> Outcome:
        if not probes:
            return Outcome("error", f"this question has no probe in {PROBES_DIR}/ beside the "
                                    "solutions, so it cannot be checked outside the kernel "
                                    "(a course bug: see the instructors' grading page)")
        for one in probes:
            for _ in range(max(1, one.repeat)):
                values = draw_values(one.vars, self.rng)
                outcome = self._one(learner_run, reference, one, values, timeout,
                                    hidden_lines)
                if outcome.status != "pass":
                    return outcome
        return Outcome("pass")

    def _one(self, learner_run: Any, reference: GradingKernel, probe: Probe,
             values: dict[str, Any], timeout: float, hidden_lines: list[str]) -> Outcome:
        """One draw. Messages are fixed grader text plus the grader's own drawn values: never
        text or numbers the learner's kernel chose (they could carry a hidden test)."""
        name = "_grader_probe_" + "".join(self.rng.choice(string.ascii_lowercase)
                                          for _ in range(12))
        shown = f"checked outside your kernel: {_what(probe, values)}"
        code, expression = _call(name, probe, probe.code, values, None)
        run = learner_run(code, timeout, user_expressions={"r": expression})
        if run.status in ("timeout", "kernel_died"):
            return Outcome("fail", f"{shown}: {run.evalue}")  # the kernel module's fixed text
        got, why = _decode(run.expressions.get("r"))
        if why:
            return Outcome("fail", f"{shown}: {why}")
        if isinstance(got, dict) and "$error" in got and not probe.judge:
            return Outcome("fail", f"{shown} raised {_error_kind(got['$error'])}")
        learner = json.dumps(got) if (probe.reference or probe.judge) else None
        ref_code, ref_expression = _call(name, probe, probe.reference or probe.code, values,
                                         learner)
        ref = reference.run(ref_code, timeout, store_history=False,
                            user_expressions={"r": ref_expression})
        if ref.status in ("timeout", "kernel_died") and learner is not None:
            return Outcome("fail", f"{shown}: the reference kernel, working on your result: "
                                   f"{ref.evalue}")
        want, why = _decode(ref.expressions.get("r"))
        failed = isinstance(want, dict) and isinstance(want.get("$error"), str)
        if failed and learner is not None:  # it failed on the learner's data
            return Outcome("fail", f"{shown}: {_REBUILD_FAILED}")
        if why or failed:
            return Outcome("error", f"the reference kernel failed on {_what(probe, values)}: "
                                    f"{why or want['$error']} (a course bug)")
        if probe.judge:
            if want is True:
                return Outcome("pass")
            reason = probe.reasons.get(want, _NOT_MET) if isinstance(want, str) else _NOT_MET
            return Outcome("fail", f"{shown}: {reason}")
        why = compare(want, got, probe.rtol, probe.atol)
        return Outcome("fail", f"{shown} gives {why}") if why else Outcome("pass")


_NOT_MET = "the model does not do what the question asks"
_REBUILD_FAILED = ("your model could not be rebuilt and judged outside your kernel (the grader "
                   "rebuilds torch.nn layers and a forward that torch.fx can trace, with common "
                   "tensor functions and methods; numbers belong in parameters or buffers)")
_ERRORS = frozenset(name for name, value in vars(builtins).items()
                    if isinstance(value, type) and issubclass(value, BaseException))


def _error_kind(text: Any) -> str:
    """``a ValueError`` for a built-in exception's name, else ``an error``: the learner's
    message itself is never shown (the in-kernel test's message, when it failed, is)."""
    kind = str(text).split(":", 1)[0].strip()
    return f"a {kind}" if kind in _ERRORS else "an error"


def _what(probe: Probe, values: dict[str, Any]) -> str:
    if probe.what:
        return probe.what.format(**values)
    shown = ", ".join(f"{k}={v!r}" for k, v in values.items() if k != "seed")
    return f"{probe.name}({shown})"


def judge_question(cell: Mapping, result: TestResult, learner_run: Callable[..., CellRun],
                   references: References, assignment: Assignment, timeout: float) -> TestResult:
    """``result`` (the in-kernel verdict) with the trusted verdict's: ``trusted`` is set, and
    a pass becomes a fail when the probes disagree. ``learner_run(code, timeout,
    user_expressions=...)`` runs code in the learner's kernel."""
    probes = assignment.probes.get(fmt.grade_id(cell), [])
    isolated = any(p.judge or p.reference for p in probes)  # they read the learner's data
    kernel = references.fresh(assignment) if isolated else references.kernel(assignment)
    try:
        outcome = TrustedCheck().run(learner_run, kernel, probes, timeout, assignment.hidden_lines)
    finally:
        if isolated:
            references.release(kernel)
    result.trusted = outcome.status
    if result.status != "pass" or outcome.status == "pass":
        return result
    shown = verdict.hint(cell)
    text = f"{outcome.message}\nHint: {shown}" if shown else outcome.message
    failed = verdict.record(cell, "fail" if outcome.status == "fail" else "error", text,
                            result.seconds)
    failed.trusted = outcome.status
    return failed
