"""The sandbox: each kernel's own capped disk, and uids no two graders on a machine share.

Issue 25 (red team, round 3): a learner who filled the scratch filesystem under ``--jobs 2``
turned two other learners into ``grader_error``; a fork bomb in one grader cost a learner in
another grader, since the two shards' kernels had the same uids (and so ``RLIMIT_NPROC``).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from course_utils.grading import sandbox
from course_utils.grading.kernel import GradingKernel

needs_sandbox = pytest.mark.skipif(not sandbox.available(), reason="no bubblewrap sandbox here")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="sandbox uids are allocated as root")

FILL = """
import errno, os
def fill(folder):
    written = 0
    try:
        for i in range(10):  # 320 MiB: 10 files of 32 MiB, under RLIMIT_FSIZE each
            with open(os.path.join(folder, f"fill{i}"), "wb") as handle:
                for _ in range(32):
                    handle.write(b"x" * 2**20)
                    written += 1
    except OSError as error:
        return written, errno.errorcode[error.errno]
    return written, "no error"
filled = [fill(folder) for folder in ("/home/learner", "/tmp", "/dev/shm")]
"""

WRITE = """
import os
for folder in ("/home/learner", "/tmp", "/dev/shm"):
    with open(os.path.join(folder, "mine"), "wb") as handle:
        handle.write(b"y" * 16 * 2**20)
wrote = sorted(os.path.getsize(os.path.join(f, "mine")) for f in ("/home/learner", "/tmp"))
"""


@pytest.mark.slow
@needs_sandbox
def test_a_full_disk_is_one_learners_own(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    with GradingKernel(first, sandboxed=True, files={"nb.ipynb": b"{}"}) as full, \
            GradingKernel(second, sandboxed=True) as other:
        run = full.run(FILL, 60, user_expressions={"filled": "filled"})
        assert run.ok, run.evalue
        filled = ast.literal_eval(run.expressions["filled"])
        assert [error for _, error in filled] == ["ENOSPC"] * 3, filled
        assert all(250 <= written <= 256 for written, _ in filled), filled  # MiB, then ENOSPC
        run = other.run(WRITE, 60, user_expressions={"wrote": "wrote"})
        assert run.ok, run.evalue
        assert ast.literal_eval(run.expressions["wrote"]) == [16 * 2**20] * 2
        failed = full.run("open('more', 'wb').write(b'z' * 2**20)", 10)
        assert failed.ename == "OSError" and "No space left on device" in failed.evalue
        note = sandbox.disk_full_note(failed.evalue, full.scratch_mb)
        assert "256 MiB" in note and "/tmp" in note
        # the host's scratch folder got nothing; the notebook is there, read-only, unchanged
        assert sorted(p.name for p in first.iterdir()) == ["nb.ipynb"]
        run = full.run("open('nb.ipynb', 'a').write('x')", 10)
        assert run.ename in ("PermissionError", "OSError") and (first / "nb.ipynb").read_bytes() == b"{}"
    assert sandbox.disk_full_note("[Errno 28] No space left on device", 0) == ""


@pytest.mark.slow
@needs_sandbox
def test_the_socket_folder_takes_no_files_once_the_kernel_runs(tmp_path: Path) -> None:
    with GradingKernel(tmp_path / "scratch", sandboxed=True) as kernel:
        run = kernel.run(f"open('{sandbox.SANDBOX_SOCKETS}/filler', 'wb').write(b'x')", 10)
        assert run.ename == "PermissionError", (run.status, run.ename, run.evalue)


ALLOCATE = """
import sys
import time
from course_utils.grading import sandbox
print(" ".join(str(sandbox.next_uid()) for _ in range(20)), flush=True)
sys.stdin.read()  # hold them until told
"""


def _allocator() -> tuple[subprocess.Popen, set[int]]:
    proc = subprocess.Popen([sys.executable, "-c", ALLOCATE], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    return proc, {int(uid) for uid in proc.stdout.readline().split()}


@needs_root
def test_two_graders_never_hold_the_same_uid_and_a_dead_ones_come_back() -> None:
    first, held_first = _allocator()
    second, held_second = _allocator()
    try:
        assert len(held_first) == len(held_second) == 20
        assert not held_first & held_second, "two graders' kernels would share RLIMIT_NPROC"
        first.kill()  # a crash: its locks go with it
        first.wait()
        third, held_third = _allocator()
        try:
            assert not held_third & held_second and held_third & held_first
        finally:
            third.communicate("")
    finally:
        second.communicate("")


@needs_root
def test_uids_are_released_and_the_lock_folder_must_be_private(tmp_path: Path) -> None:
    uid = sandbox.next_uid(tmp_path / "locks")
    other = sandbox.next_uid(tmp_path / "locks")
    assert other != uid and (tmp_path / "locks" / str(uid)).read_text() == f"{os.getpid()}\n"
    sandbox.release_uid(uid)
    sandbox.release_uid(other)
    again = sandbox.next_uid(tmp_path / "locks")
    sandbox.release_uid(again)  # held uids are process-wide: leave none behind for other tests
    assert again in (uid, other, other + 1)
    open_to_all = tmp_path / "open"
    open_to_all.mkdir(mode=0o777)
    os.chmod(open_to_all, 0o777)
    with pytest.raises(RuntimeError, match="writable by no one else"):
        sandbox.next_uid(open_to_all)


@needs_root
def test_a_uid_some_process_still_runs_as_is_skipped(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    straggler = subprocess.Popen(["setpriv", "--reuid=970999", "--regid=970999", "--clear-groups",
                                  "sleep", "60"])
    try:
        for _ in range(100):  # until setpriv has switched
            if 970999 in sandbox._running_uids():
                break
            time.sleep(0.05)
        monkeypatch.setattr(sandbox, "_uid_next", [999])  # 970999 would be next
        uid = sandbox.next_uid(tmp_path / "locks")
        sandbox.release_uid(uid)
        assert uid != 970_999, "a straggler's uid (or one of a grader without locks) was reused"
    finally:
        straggler.kill()
        straggler.wait()
