"""The grader as a security boundary: one crafted submission per attack class of issue 10.

All attacks are graded in ONE sandboxed batch (``--jobs 2``) against a copy of
``solutions/``. Every case asserts its notebook status and score (and question statuses
where they matter). Around the batch we hash the solutions (the copy and the repository's),
every submission and, a few seconds after the grader returned, the output folder, so a
detached process that rewrites ``grades.csv`` later is caught; and we check that no process
started by a kernel survives.

Needs Linux with bubblewrap (``make test`` installs it); skipped, with the reason, elsewhere.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import html
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from course_utils.grading import grade, sandbox
from course_utils.grading import notebook_format as fmt
from course_utils.grading.cli import grade_main
from course_utils.grading.records import NotebookResult
from course_utils.grading.report import write_reports

ROOT = Path(__file__).resolve().parents[2]
NB01 = "01_layers_of_a_model.ipynb"
MARKER = "600.4242"  # the argument of every process an attack tries to leave behind

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sandbox.available(),
                       reason=f"no sandbox here: {sandbox.why_unavailable()}"),
]


def _read(folder: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / folder / NB01, as_version=4)


def _cell(nb: nbformat.NotebookNode, gid: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if fmt.grade_id(c) == gid)


def _digests(*roots: Path) -> dict[str, str]:
    found = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            if p.is_symlink() or not p.is_file():
                found[str(p)] = "link" if p.is_symlink() else "other"
            else:
                found[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return found


def _survivors(scratch_root: Path) -> list[str]:
    """Processes left behind by this batch's kernels: our marker on the command line, or a
    sandbox uid whose mounts come from this batch's scratch folders (``scratch_root``), so
    that kernels of graders running at the same time (other test workers) do not count."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            uid = int((entry / "status").read_text().split("Uid:")[1].split()[0])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            ours = 970_000 <= uid < 971_000 and scratch_root.name in (
                entry / "mountinfo").read_text()
        except (OSError, IndexError, ValueError):
            continue
        if MARKER in cmdline or ours:
            found.append(f"{entry.name} uid={uid} {cmdline[:80]}")
    return found


POINTS = {"q1_test": 2, "q2_test": 3, "q3_test": 2, "q4_test": 2, "q5_test": 2}
FULL = 11.0


# second red-team round: a garbage-collector callback that clears a failing test's error
# and writes the proof it reads from the request (11/11 before gc was fingerprinted)
_GC_FORGE = 'import gc as _gc, sys as _sys, re as _re\ndef _rt_is_test(cell):\n    if "__grader_proof__" not in cell or "__grader_canary__" in cell: return False\n    body = [l for l in cell.split("\\n") if l.strip() and not l.startswith(("__grader_steps__", "__grader_proof__"))]\n    return not (len(body) == 1 and _re.fullmatch(r"assert False, \'[0-9a-f]{16}\'", body[0]))\ndef _rt_cb(phase, info):\n    if phase != "start": return\n    f = _sys._getframe(1)\n    while f is not None:\n        if f.f_code.co_name == "run_cell_async":\n            loc = f.f_locals; cell, result, shell = loc.get("raw_cell"), loc.get("result"), loc.get("self")\n            if isinstance(cell, str) and result is not None and result.error_in_exec is not None and _rt_is_test(cell):\n                nonce = _re.search(r"^__grader_proof__ = \\(\'([0-9a-f]+)\', __grader_steps__\\)$", cell, _re.M).group(1)\n                n = cell.split("\\n").count("__grader_steps__ += 1")\n                result.error_in_exec = None\n                shell.user_ns["__grader_steps__"] = n; shell.user_ns["__grader_proof__"] = (nonce, n)\n            return\n        f = f.f_back\n_gc.callbacks.append(_rt_cb); _gc.set_threshold(1, 10, 10)\n'  # noqa: E501


def _cases(submissions: Path, out: Path, solutions: Path) -> dict[str, tuple]:
    """student -> (notebook or writer, status, score, {grade_id: status})."""
    sol, ex = _read("solutions"), _read("exercises")

    def blank(q1_extra: str) -> nbformat.NotebookNode:
        nb = copy.deepcopy(ex)
        _cell(nb, "q1_answer").source += "\n" + q1_extra
        return nb

    def solved(**answers: str) -> nbformat.NotebookNode:
        nb = copy.deepcopy(sol)
        for gid, source in answers.items():
            _cell(nb, gid).source = source
        return nb

    def prefixed(gid: str, code: str) -> nbformat.NotebookNode:
        return solved(**{gid: code + "\n" + _cell(sol, gid).source})

    ast_wrapper = (
        "import ast\n"
        "class Swallow(ast.NodeTransformer):\n"
        "    def visit_Module(self, node):\n"
        "        handler = ast.ExceptHandler(type=ast.Name('BaseException', ast.Load()),\n"
        "                                    name=None, body=[ast.Pass()])\n"
        "        node.body = [ast.Try(body=node.body or [ast.Pass()], handlers=[handler],\n"
        "                             orelse=[], finalbody=[])]\n"
        "        return ast.fix_missing_locations(node)\n"
        "get_ipython().ast_transformers.append(Swallow())")
    forge_channel = (
        "import json, threading, time\n"
        "import course_utils.grading.observe as _observe\n\n"
        "def _forged(function):\n    return json.dumps(1507)\n\n"
        "def _keep():\n    while True:\n        _observe.run_probe = _forged\n"
        "        time.sleep(0.001)\n\n"
        "threading.Thread(target=_keep, daemon=True).start()")
    always_equal = ("class Anything(int):\n    def __eq__(self, other):\n        return True\n"
                    "    __hash__ = int.__hash__\n\n"
                    "def mlp_param_count(*sizes) -> int:\n    return Anything(0)")
    trace_jump = (
        "import sys\n\n"
        "def mlp_param_count(*sizes) -> int:\n"
        "    caller = sys._getframe(1)\n"
        "    while caller.f_code.co_name != '<module>':  # the test cell itself\n"
        "        caller = caller.f_back\n"
        "    last = max(line for _, _, line in caller.f_code.co_lines() if line)\n"
        "    def tracer(frame, event, arg):\n"
        "        if frame is caller and event == 'line':\n"
        "            if frame.f_lineno < last:\n"
        "                frame.f_lineno = last  # skip the rest of the test\n"
        "            else:\n"
        "                frame.f_trace = None\n"
        "                sys.settrace(None)  # and leave no trace behind\n"
        "        return tracer\n"
        "    caller.f_trace = tracer\n"
        "    sys.settrace(tracer)\n"
        "    return 0")
    victim = submissions / "victim" / NB01
    attacks_dir = str(submissions)
    record_hidden = (
        "import inspect, linecache\n_seen = []\n\n"
        "def leaf_modules_with_params(model):\n"
        "    for frame in inspect.stack():\n"
        "        _seen.append(''.join(linecache.getlines(frame.filename)))\n"
        "    return [name for name, m in model.named_modules()\n"
        "            if not list(m.children()) and list(m.parameters(recurse=False))]")
    leak_later = ("def output_shapes(model, x):\n"
                  "    raise AssertionError('LEAK ' + ' '.join(_seen) + ' ' + repr(In))")
    proc_spy = ("import os\n_spy = []\n"
                "for pid in os.listdir('/proc'):\n"
                "    if pid.isdigit():\n"
                "        try:\n"
                "            _spy.append(open(f'/proc/{pid}/cmdline').read())\n"
                "        except OSError:\n"
                "            pass\n"
                "for path in ('..', '/work', '/tmp', " + repr(attacks_dir) + "):\n"
                "    try:\n"
                "        _spy += os.listdir(path)\n"
                "    except OSError:\n"
                "        pass\n\n"
                "def mlp_param_count(*sizes):\n    return ' '.join(_spy)")
    writes = "\n".join(f"try:\n    open({str(p)!r}, 'w').write('owned')\nexcept OSError:\n    pass"
                       for p in (solutions / NB01, ROOT / "solutions" / NB01, victim,
                                 out / "grades.csv", Path("/tmp/course-attack-marker"),
                                 Path.home() / "course-attack-marker"))
    rewrite = (f"import time; time.sleep(3); "
               f"open({str(out / 'grades.csv')!r}, 'w').write('forged')")
    later = (f"import subprocess, sys\n"
             f"subprocess.Popen([sys.executable, '-c', {rewrite!r}, '{MARKER}'], "
             f"start_new_session=True)\n"
             f"subprocess.Popen(['sleep', '{MARKER}'], start_new_session=True)")
    shadow = ("import os\nos.makedirs('course_utils/grading', exist_ok=True)\n"
              "for path in ('course_utils/__init__.py', 'course_utils/grading/__init__.py'):\n"
              "    open(path, 'w').close()\n"
              "open('course_utils/grading/launcher.py', 'w').write('import os; os._exit(1)')\n"
              "open('ipykernel_launcher.py', 'w').write('import os; os._exit(1)')\n"
              "os._exit(1)")
    fork_bomb = (f"import os, time\n_children = 0\n"
                 f"while True:\n    try:\n        pid = os.fork()\n    except OSError:\n"
                 f"        break\n    if pid == 0:\n        time.sleep({MARKER})\n"
                 f"        os._exit(0)\n    _children += 1\n"
                 f"assert _children < 1000, _children")
    fill_disk = ("for _i in range(10):\n    with open(f'fill{_i}', 'wb') as _f:\n"
                 "        for _ in range(32):\n            _f.write(b'x' * 2**20)")
    # red team, round 2
    compilerop = (  # a module global over the built-in `compile` that IPython looks up
        "import ast as _a, builtins as _b\nimport IPython.core.compilerop as _c\n\n"
        "def _compile(src, fn, mode, flags=0, dont_inherit=False, *rest):\n"
        "    tree = _b.compile(src, fn, mode, flags, dont_inherit, *rest)\n"
        "    if not (flags & _a.PyCF_ONLY_AST) or not isinstance(tree, _a.Module):\n"
        "        return tree\n"
        "    if any(isinstance(n, _a.Assert) and isinstance(n.test, _a.Constant)\n"
        "           and n.test.value is False for n in tree.body):\n"
        "        return tree  # leave the failing canary alone\n"
        "    handler = _a.ExceptHandler(type=_a.Name('BaseException', _a.Load()), name=None,\n"
        "                               body=[_a.Pass()])\n"
        "    tree.body = [_a.Try(body=[n], handlers=[handler], orelse=[], finalbody=[])\n"
        "                 for n in tree.body]\n"
        "    return _a.fix_missing_locations(tree)\n\n"
        "_c.compile = _compile")
    fake_probe = (  # the audit itself replaced, to hide an AST transformer from it
        "import ast, sys\n_probe = sys.modules['course_utils.grading.probe']\n"
        "_real, _saved = _probe.fingerprint, {}\n\n"
        "def _fake(full=False):\n"
        "    if full not in _saved:\n"
        "        ip = get_ipython(); mine = list(ip.ast_transformers)\n"
        "        ip.ast_transformers.clear(); _saved[full] = _real(full)\n"
        "        ip.ast_transformers.extend(mine)\n"
        "    return _saved[full]\n\n"
        "_probe.fingerprint = _fake\n\n"
        "class Swallow(ast.NodeTransformer):\n"
        "    def visit_Module(self, tree):\n"
        "        if any(isinstance(n, ast.Assert) and isinstance(n.test, ast.Constant)\n"
        "               and n.test.value is False for n in tree.body):\n"
        "            return tree\n"
        "        tree.body = [ast.Try(body=[n], handlers=[ast.ExceptHandler(\n"
        "            type=None, name=None, body=[ast.Pass()])], orelse=[], finalbody=[])\n"
        "            for n in tree.body]\n"
        "        return ast.fix_missing_locations(tree)\n\n"
        "get_ipython().ast_transformers.append(Swallow())")
    audit_hook = (  # records hidden tests as they compile, replays them in a canary's error
        "import sys\n_heard = []\n\n"
        "def _hook(event, args):\n"
        "    if event != 'compile' or not args or not isinstance(args[0], (str, bytes)):\n"
        "        return\n"
        "    src = args[0].decode('utf-8', 'replace') if isinstance(args[0], bytes) else args[0]\n"
        "    if 'BEGIN HIDDEN' in src and not _heard:\n"
        "        _heard.append(src[src.index('BEGIN HIDDEN'):])\n"
        "    elif _heard and \"assert False, '\" in src and '__grader_proof__' in src:\n"
        "        raise type(_heard[0][19:219][::-1], (ValueError,), {})('x')\n\n"
        "sys.addaudithook(_hook)")
    canary_leak = (  # hidden source recorded by q3's answer, sent out as a canary's ename
        "def _leak(lines):\n"
        "    text = ''.join(lines)\n"
        "    if \"assert False, '\" in text and '__grader_proof__' in text and _seen:\n"
        "        found = next((t for t in _seen if 'BEGIN HIDDEN' in t), '')\n"
        "        found = found[found.find('BEGIN HIDDEN') + 19:][:190][::-1]\n"
        "        return [f'raise type({found!r}, (Exception,), {{}})()\\n']\n"
        "    return lines\n\n"
        "get_ipython().input_transformers_cleanup.append(_leak)")
    foreign_equal = ("class SneakyLeakName(int):\n    __module__ = 'numbers'\n"
                     "    def __eq__(self, other):\n        return True\n"
                     "    __hash__ = int.__hash__\n\n"
                     "def mlp_param_count(*args, **kwargs) -> int:\n    return SneakyLeakName(0)")
    operator_index = ("import operator, sys\noperator.index = lambda value: value\n\n"
                      "def mlp_param_count(*args, **kwargs) -> int:\n    return 0")
    bad_kernelspec = copy.deepcopy(sol)
    bad_kernelspec.metadata["kernelspec"] = "python3"
    int_source = json.loads(nbformat.writes(sol))
    int_source["cells"][1]["source"] = 12345
    helper_cell = solved(q1_answer="def mlp_param_count(n_in=10, hidden=32, n_out=3) -> int:\n"
                                   "    return _helper([n_in, hidden, hidden, n_out])")
    helper_cell.cells.insert(3, nbformat.v4.new_code_cell(
        "def _helper(widths):\n"
        "    return sum((a + 1) * b for a, b in zip(widths, widths[1:]))"))
    return {
        # forged verdicts: a blank exercise plus one line
        "forge_gc_callback": (blank(_GC_FORGE), "tampered", 0.0, {"q1_test": "tampered"}),
        "forge_input_transformer": (blank(
            "get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])"),
            "tampered", 0.0, {"q1_test": "tampered", "q5_test": "tampered"}),
        "forge_post_run_cell": (blank(
            "def _ok(result):\n    result.error_in_exec = None\n"
            "get_ipython().events.register('post_run_cell', _ok)"),
            "tampered", 0.0, {"q1_test": "tampered", "q5_test": "tampered"}),
        "forge_execution_result": (blank(
            "from IPython.core.interactiveshell import ExecutionResult\n"
            "ExecutionResult.success = property(lambda self: True)"),
            "tampered", 0.0, {"q1_test": "tampered"}),
        "forge_ast_transformer": (blank(ast_wrapper), "tampered", 0.0, {"q1_test": "tampered"}),
        "forge_always_equal_int": (solved(q1_answer=always_equal), "tampered", 0.0,
                                   {"q1_test": "tampered"}),
        # q1 is 0 whether the jump works (short proof) or not (the assert fails); the
        # tracer left behind is found before q2
        "forge_trace_jump": (solved(q1_answer=trace_jump), "tampered", 0.0,
                             {"q2_test": "tampered"}),
        "forge_patched_torch": (solved(q1_answer="import torch\n"
                                       "torch.Tensor.numel = lambda self: 1\n\n"
                                       "def mlp_param_count(*sizes) -> int:\n    return 6"),
                                "tampered", 0.0, {"q1_test": "tampered"}),
        # a startup file for the next kernel, then a crash: every start gets a fresh scratch
        "startup_file_then_crash": (prefixed("q1_answer", (
            "import os\nfolder = os.path.expanduser('~/.tmp/ipython/profile_default/startup')\n"
            "os.makedirs(folder, exist_ok=True)\n"
            "open(folder + '/00.py', 'w').write(\"get_ipython().input_transformers_cleanup"
            ".append(lambda lines: ['pass\\\\n'])\")\n"
            "os._exit(1)")), "graded", FULL - 2, {"q1_test": "kernel_died", "q2_test": "pass"}),
        "forge_shadowed_builtin": (blank("isinstance = lambda *args: True"), "tampered", 0.0,
                                   {"q1_test": "tampered"}),
        # other people's data: every write fails, nothing outside the scratch folder changes
        "victim": (copy.deepcopy(sol), "graded", FULL, {}),
        "writes_everywhere": (prefixed("q1_answer", writes), "graded", FULL, {}),
        "proc_spy": (solved(q1_answer=proc_spy), "graded", FULL - 2, {"q1_test": "fail"}),
        "detached_rewrites_gradebook": (prefixed("q2_answer", later), "graded", FULL, {}),
        # limits that hold
        "raise_rlimit": (solved(q5_answer="import resource\n"
                                "resource.setrlimit(resource.RLIMIT_AS, "
                                "(resource.RLIM_INFINITY, resource.RLIM_INFINITY))"),
                         "graded", FULL - 2, {"q5_test": "error"}),
        "shadow_launcher": (prefixed("q1_answer", shadow), "graded", FULL - 2,
                            {"q1_test": "kernel_died", "q2_test": "pass"}),
        "fork_bomb": (prefixed("q3_answer", fork_bomb), "graded", FULL, {"q3_test": "pass"}),
        # red team, round 3: 320 MiB into a 256 MiB tmpfs, under --jobs 2; only q5 is lost
        "fills_disk": (prefixed("q5_answer", fill_disk), "graded", FULL - 2, {"q5_test": "error"}),
        "kill_parent": (prefixed("q1_answer", "import os\ntry:\n    os.kill(os.getppid(), 9)\n"
                                 "    os.kill(1, 9)\nexcept OSError:\n    pass"),
                        "graded", FULL, {}),
        "kill_everything": (prefixed("q2_answer", "import os\ntry:\n    os.kill(-1, 9)\n"
                                     "except OSError:\n    pass\nos.kill(os.getpid(), 9)"), "graded",
                            FULL - 3, {"q2_test": "kernel_died", "q3_test": "pass"}),
        # leaks: hidden tests recorded during q3's hidden part, replayed in q4's message
        "leak_hidden": (solved(q3_answer=record_hidden, q4_answer=leak_later), "graded",
                        FULL - 2, {"q3_test": "pass", "q4_test": "fail"}),
        # files that are not notebooks, or not files
        "bad_kernelspec": (bad_kernelspec, "unreadable", 0.0, {}),
        "int_source": (json.dumps(int_source).encode(), "unreadable", 0.0, {}),
        "helper_cell": (helper_cell, "graded", FULL, {"q1_test": "pass"}),
        # red team, round 2
        "forge_compilerop_global": (blank(compilerop), "tampered", 0.0,
                                    {"q1_test": "tampered", "q5_test": "tampered"}),
        "forge_fake_probe": (blank(fake_probe), "tampered", 0.0,
                             {"q1_test": "tampered", "q5_test": "tampered"}),
        # the hook is refused (the attempt is reported), so nothing can leak through it
        "leak_audit_hook": (prefixed("q1_answer", audit_hook), "tampered", 0.0,
                            {"q1_test": "tampered"}),
        "forge_tensor_eq": (prefixed("q1_answer", (
            "import torch\n_real_eq = torch.Tensor.__eq__\n\n"
            "def _eq(self, other):\n    return _real_eq(self, self)\n\n"
            "_eq.__module__ = 'torch._tensor'\ntorch.Tensor.__eq__ = _eq")),
            "tampered", 0.0, {"q1_test": "tampered"}),
        "leak_canary_ename": (solved(q3_answer=record_hidden,
                                     q4_answer=canary_leak + "\n" + _cell(sol, "q4_answer").source),
                              "tampered", FULL - 4, {"q3_test": "pass", "q4_test": "tampered"}),
        "forge_always_equal_foreign": (solved(q1_answer=foreign_equal), "tampered", 0.0,
                                       {"q1_test": "tampered"}),
        "forge_operator_index": (solved(q1_answer=operator_index), "tampered", 0.0,
                                 {"q1_test": "tampered"}),
        # round 3: a thread that keeps rewriting what the kernel reports to the trusted
        # verdict; the guarantee that no forged reply scores is tests/grading/test_trusted.py's
        "forge_trusted_channel": (blank(forge_channel), "tampered", 0.0,
                                  {"q1_test": "tampered", "q5_test": "tampered"}),
    }


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("adversarial")
    submissions, out, solutions = base / "submissions", base / "out", base / "solutions"
    submissions.mkdir()
    out.mkdir()
    solutions.mkdir()
    for path in (ROOT / "solutions").glob("*.ipynb"):
        (solutions / path.name).write_bytes(path.read_bytes())
    shutil.copytree(ROOT / "solutions" / "probes", solutions / "probes")
    cases = _cases(submissions, out, solutions)
    for student, (nb, *_rest) in cases.items():
        folder = submissions / student
        folder.mkdir()
        target = folder / NB01
        target.write_bytes(nb if isinstance(nb, bytes) else nbformat.writes(nb).encode())
    # what the folder itself holds
    secret = base / "secret.txt"
    secret.write_text("TOP-SECRET-LINE\n")
    (submissions / "symlink_to_secret").mkdir()
    (submissions / "symlink_to_secret" / NB01).symlink_to(secret)
    (submissions / "symlink_to_dev_zero").mkdir()
    (submissions / "symlink_to_dev_zero" / NB01).symlink_to("/dev/zero")
    (submissions / "fifo_notebook").mkdir()
    os.mkfifo(submissions / "fifo_notebook" / NB01)
    (submissions / "fifo_in_folder").mkdir()
    (submissions / "fifo_in_folder" / NB01).write_bytes(nbformat.writes(_read("solutions"))
                                                        .encode())
    os.mkfifo(submissions / "fifo_in_folder" / "data.csv")
    shadow = submissions / "launcher_in_folder"
    (shadow / "course_utils" / "grading").mkdir(parents=True)
    (shadow / NB01).write_bytes((ROOT / "solutions" / NB01).read_bytes())
    (shadow / "ipykernel_launcher.py").write_text("import os; os._exit(1)\n")
    (shadow / "course_utils" / "__init__.py").write_text("import os; os._exit(1)\n")
    (submissions / "no_notebook").mkdir()
    (submissions / "pdf_only").mkdir()
    (submissions / "pdf_only" / "answers.pdf").write_bytes(b"%PDF-1.4\n")
    formula = '=HYPERLINK("evil.example","x")'
    # names that are not UTF-8: a notebook's, and a learner folder's
    (submissions / "mallory").mkdir()
    (submissions / "mallory" / os.fsdecode(b"x\xff.ipynb")).write_bytes(
        (ROOT / "exercises" / NB01).read_bytes())
    (submissions / os.fsdecode(b"bad\xfename")).mkdir()
    (submissions / os.fsdecode(b"bad\xfename") / NB01).write_bytes(
        (ROOT / "solutions" / NB01).read_bytes())
    (submissions / formula).mkdir()
    (submissions / formula / NB01).write_bytes((ROOT / "solutions" / NB01).read_bytes())
    roster = ["victim", "absent_learner"]
    protected = [solutions, ROOT / "solutions", submissions]
    before = _digests(*protected)
    started = time.perf_counter()
    # this batch's scratch folders live under a folder of their own (see _survivors)
    scratch_root = Path(tempfile.mkdtemp(prefix="attack-"))  # short: kernel sockets live below
    tempfile.tempdir = str(scratch_root)
    try:
        results = grade.grade_submissions(submissions, out, solutions=solutions, jobs=2,
                                          timeout=10, notebook_timeout=120, roster=roster,
                                          sandboxed=True)
    finally:
        tempfile.tempdir = None
        scratch_root.rmdir()  # every scratch folder inside it is gone: it must be empty
    seconds = time.perf_counter() - started
    survivors_now = _survivors(scratch_root)
    out_now = _digests(out)
    time.sleep(4)  # the detached writer would strike 3 s after its kernel started
    return {"results": {r.student_id: r for r in results}, "cases": cases, "before": before,
            "after": _digests(*protected), "out_now": out_now, "out_later": _digests(out),
            "survivors": survivors_now, "survivors_later": _survivors(scratch_root), "out": out,
            "formula": formula, "seconds": seconds,
            "leftovers": [p for p in (Path("/tmp/course-attack-marker"),
                                      Path.home() / "course-attack-marker") if p.exists()]}


def test_each_attack_gets_its_status_and_score(batch: dict) -> None:
    found = batch["results"]
    for student, (_, status, score, statuses) in batch["cases"].items():
        r = found[student]
        assert r.status == status, f"{student}: {r.status} {r.notes} {r.tests}"
        assert r.score == score, f"{student}: score {r.score}, expected {score}: {r.tests}"
        got = {t.grade_id: t.status for t in r.tests}
        for gid, expected in statuses.items():
            assert got[gid] == expected, f"{student} {gid}: {got[gid]} ({r.tests})"


def test_tampering_is_named_in_the_notes(batch: dict) -> None:
    found = batch["results"]
    expected = {"forge_compilerop_global": "module globals",
                "leak_audit_hook": "sys hooks", "forge_tensor_eq": "libraries changed",
                "forge_fake_probe": "ast transformers",
                "forge_always_equal_foreign": "always equal",
                "forge_operator_index": "libraries changed",
                "forge_input_transformer": "input transformers",
                "forge_patched_torch": "libraries changed",
                "forge_post_run_cell": "events", "forge_execution_result": "execution result",
                "forge_ast_transformer": "ast transformers",
                "forge_always_equal_int": "always equal", "forge_shadowed_builtin": "shadowed"}
    for student, word in expected.items():
        notes = " ".join(found[student].notes)
        assert "tampering detected" in notes and word in notes, f"{student}: {notes}"


def test_a_full_disk_is_named_in_that_learners_notes_only(batch: dict) -> None:
    found = batch["results"]
    for student, r in found.items():
        full = [note for note in r.notes if "ran out of disk space" in note]
        assert len(full) == (student == "fills_disk"), f"{student}: {r.notes}"
    assert "256 MiB in each of /home/learner, /tmp and /dev/shm" in found["fills_disk"].notes[0]


def test_files_that_are_not_notebooks_are_unreadable_with_a_reason(batch: dict) -> None:
    found = batch["results"]
    reasons = {"symlink_to_secret": "symbolic link", "symlink_to_dev_zero": "symbolic link",
               "fifo_notebook": "not a regular file", "bad_kernelspec": "kernelspec",
               "int_source": "source must be a string"}
    for student, reason in reasons.items():
        r = found[student]
        assert r.status == "unreadable" and r.score == 0, f"{student}: {r.status}"
        assert reason in " ".join(r.notes), f"{student}: {r.notes}"
    for student in ("fifo_in_folder", "launcher_in_folder", batch["formula"], "bad\\xfename"):
        assert (found[student].status, found[student].score) == ("graded", FULL), student
    odd = found["mallory"]
    assert (odd.status, odd.notebook) == ("unknown_notebook", "x\\xff.ipynb"), odd


def test_every_folder_and_roster_entry_gets_a_row(batch: dict) -> None:
    found = batch["results"]
    for student in ("no_notebook", "pdf_only", "absent_learner"):
        assert found[student].status == "missing" and found[student].score == 0, student
    assert "answers.pdf" in found["pdf_only"].notes[0]
    with open(batch["out"] / "grades.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["student_id"] for r in rows} == {
        ("'" + s if s.startswith("=") else s) for s in found}
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values())


def test_nothing_outside_the_scratch_folder_changed(batch: dict) -> None:
    assert batch["before"] == batch["after"], "solutions or submissions changed"
    assert batch["out_now"] == batch["out_later"], "the output folder changed after grading"
    assert not batch["leftovers"], f"files written outside the sandbox: {batch['leftovers']}"


def test_no_process_survives(batch: dict) -> None:
    assert not batch["survivors"], batch["survivors"]
    assert not batch["survivors_later"], batch["survivors_later"]


def test_feedback_leaks_nothing(batch: dict) -> None:
    feedback = batch["out"] / "feedback"
    pages = {p.parent.name: p.read_text() for p in feedback.rglob("*.html")}
    results = {p.parent.name: p.read_text() for p in (batch["out"] / "results").rglob("*.json")}
    hidden = [line.strip() for c in _read("solutions").cells if fmt.is_grade(c)
              for line in _hidden(c.source) if len(line.strip()) > 15]
    assert hidden
    for student, r in batch["results"].items():  # what the grader says, not what was handed in
        said = " ".join([*r.notes, *(t.message for t in r.tests)])
        assert "pytest" not in said and "victim" not in said and "secret" not in said, student
    for student, text in [*pages.items(), *results.items()]:
        assert "TOP-SECRET" not in text, student
        leaked = [line for line in hidden if line in text or line.replace('"', "&quot;") in text]
        assert not leaked, f"{student}: hidden test lines in its feedback: {leaked}"
    leak = next(t for t in batch["results"]["leak_hidden"].tests if t.grade_id == "q4_test")
    assert "LEAK" in leak.message  # the message came from a kernel that never ran hidden tests
    # reversed, a hidden line slips past any filter: tampering notes are fixed grader text
    backwards = [line[::-1] for line in hidden]
    for student, text in pages.items():
        assert not [b for b in backwards if b in text or html.escape(b) in text], student
    for student, r in batch["results"].items():
        said = " ".join([*r.notes, *(t.message for t in r.tests)])
        assert not [b for b in backwards if b in said], student
        assert "SneakyLeakName" not in said, student
    # ... while the instructor still learns what the kernel said
    details = " ".join(batch["results"]["leak_canary_ename"].tamper_details)
    assert "canary" in details and any(b[:40] in details for b in backwards), details
    assert "SneakyLeakName" in " ".join(
        batch["results"]["forge_always_equal_foreign"].tamper_details)


def test_one_unwritable_row_does_not_cost_the_gradebook(tmp_path: Path) -> None:
    assignments = grade.load_assignments(ROOT / "solutions")
    rows = [NotebookResult("ada", NB01, 11.0, 11.0, "graded"),
            NotebookResult("bob", NB01, 11.0, 11.0, "graded"),
            NotebookResult("cy", os.fsdecode(b"x\xff.ipynb"), 0.0, 0.0, "unknown_notebook")]
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "bob").write_text("a file where bob's folder should go")
    write_reports(rows, assignments, tmp_path)
    with open(tmp_path / "grades.csv", newline="") as handle:
        got = {r["student_id"]: r["status"] for r in csv.DictReader(handle)}
    assert got == {"ada": "graded", "bob": "grader_error", "cy": "unknown_notebook"}
    assert "could not be written" in rows[1].notes[-1]


def _hidden(source: str) -> list[str]:
    lines = source.split("\n")
    return [line for start, end in fmt.marker_regions(source, fmt.BEGIN_HIDDEN, fmt.END_HIDDEN)
            for line in lines[start + 1:end]]


def test_grade_refuses_to_run_unsandboxed_without_the_flag(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(sandbox, "why_unavailable", lambda: "bwrap is not installed")
    (tmp_path / "subs").mkdir()
    assert grade_main([str(tmp_path / "subs"), "--out", str(tmp_path / "out")]) == 2
    assert "--no-sandbox" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_grader_failure_is_a_row_not_a_crash(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(grade, "GradingKernel", broken)
    assignments = grade.load_assignments(ROOT / "solutions")
    r = grade.grade_notebook(ROOT / "solutions" / NB01, assignments[NB01], "ada")
    assert (r.status, r.score) == ("grader_error", 0.0) and "the disk is full" in r.notes[0]


def test_check_works_without_a_registered_kernelspec(tmp_path: Path) -> None:
    code = ("import sys\nfrom jupyter_client import kernelspec\n"
            "def refuse(self, name):\n    raise kernelspec.NoSuchKernel(name)\n"
            "kernelspec.KernelSpecManager.get_kernel_spec = refuse\n"
            "from course_utils.grading.check import main\n"
            f"sys.exit(main([{str(ROOT / 'solutions' / NB01)!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "All questions pass" in done.stdout
