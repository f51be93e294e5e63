"""A started program's pid is never signalled as a process group once it is reaped (a
reused pid's group could be hit); a program's wait never fails on a descriptor past 1023;
a failed read or write while collecting an accounting program's output leaves nothing
behind (no descriptor, thread or process)."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lpfilter.children import output, run
from lpfilter.children.exitwait import ExitWait
from lpfilter.spool import accounting


def _start(tmp_path: Path, argv: list[str], **kwargs: object) -> run.Running:
    (tmp_path / ".lpfilter").mkdir(exist_ok=True)
    options: dict = {"stdin": None, "stdout": None, **kwargs}
    return run.start(run.FilterCommand("lp", argv, False, False), env={"PATH": "/bin"},
                     cwd=str(tmp_path), owner=(os.geteuid(), os.getegid()),
                     messages=run.Messages(), **options)


def _end(running: run.Running) -> None:
    pid = running.pid
    if running.process.stdin is not None:
        running.process.stdin.close()
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _zombie(pid: int) -> bool:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return data[data.rindex(b")") + 2:].split()[0] == b"Z"


def test_a_program_group_is_signalled_only_before_its_pid_is_reaped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, bool]] = []
    real = os.killpg

    def spy(pgid: int, signum: int) -> None:
        calls.append((signum, _zombie(pgid)))  # ours and unreaped: still a zombie
        real(pgid, signum)
    monkeypatch.setattr(os, "killpg", spy)
    running = _start(tmp_path, ["/bin/true"])
    try:
        assert running.wait() == 0
        running.kill()  # as an lp=| send's cleanup does after the wait
        running.kill_group()
    finally:
        _end(running)
    assert calls and all(unreaped for _, unreaped in calls), calls


def test_a_timed_wait_never_reaps_so_the_group_is_ended_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    running = _start(tmp_path, ["/bin/true"])
    try:
        assert running.wait_for(30)
        assert _zombie(running.pid)  # exited, not reaped: its group id still its own
        calls: list[bool] = []
        real = os.killpg
        monkeypatch.setattr(os, "killpg",
                            lambda pgid, signum: (calls.append(_zombie(pgid)),
                                                  real(pgid, signum))[1])
        assert running.wait() == 0
        assert calls == [True]
    finally:
        _end(running)


def test_an_lp_pipe_wait_works_with_a_descriptor_past_1023(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(2048, hard), hard))
    held: list[int] = []
    running = _start(tmp_path, ["/bin/sleep", "600"])
    try:
        while (fd := os.open("/dev/null", os.O_RDONLY)) < 1100:
            held.append(fd)
        held.append(fd)
        with ExitWait(running.pid, running.exited) as waiting:  # pipe._wait's
            assert waiting._pidfd is not None and waiting._pidfd >= 1024
            assert not waiting.within(0.05)  # without the fix: ValueError from select
            os.kill(running.pid, signal.SIGKILL)
            assert waiting.within(60)
        assert running.wait() == -signal.SIGKILL
    finally:
        for fd in held:
            os.close(fd)
        _end(running)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _fds() -> set[int]:
    return {int(x) for x in os.listdir("/proc/self/fd")}


def test_an_accounting_read_that_fails_leaves_nothing_behind(tmp_path: Path) -> None:
    fds, threads = _fds(), threading.active_count()
    read_end, write_end = os.pipe()
    running = _start(tmp_path, ["/bin/sleep", "600"], stdout=write_end)
    os.close(write_end)
    os.close(read_end)
    broken = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)  # readable, read: EISDIR
    try:
        with pytest.raises(OSError) as caught:
            accounting._collect(running, b"line\n", broken, time.monotonic() + 60)
        assert caught.value.errno == errno.EISDIR
        assert running.process.returncode is not None  # killed and reaped
        assert _fds() == fds
        assert threading.active_count() == threads
    finally:
        _end(running)


def test_a_reader_that_cannot_start_closes_its_descriptor() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    fillers: list[int] = []
    fd = -1
    try:
        used = _fds()
        fillers = [os.open("/dev/null", os.O_RDONLY)
                   for _ in range(max(used) + 1 - len(used) + 1)]
        fd = os.open("/dev/null", os.O_RDONLY)
        resource.setrlimit(resource.RLIMIT_NOFILE, (fd + 1, hard))  # no number left
        with pytest.raises(OSError):
            output.Reader(fd, lambda line: None, name="test")
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        with pytest.raises(OSError) as caught:
            os.fstat(fd)
        assert caught.value.errno == errno.EBADF
        fd = -1
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        for each in [*fillers, *([fd] if fd >= 0 else [])]:
            with contextlib.suppress(OSError):
                os.close(each)


def test_a_kill_in_another_thread_cannot_reap_between_check_and_signal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Feed.close`` kills (and reaps) in another thread while the sending thread ends the
    group: the group is never signalled after its pid was reaped."""
    running = _start(tmp_path, ["/bin/true"])
    calls: list[bool] = []
    real_killpg, real_waitid = os.killpg, os.waitid
    other = threading.Thread(target=running.kill, name="feed close")
    fired = threading.Event()

    def waitid(*args: object) -> object:
        result = real_waitid(*args)  # type: ignore[arg-type]
        if threading.current_thread() is threading.main_thread() and not fired.is_set():
            fired.set()  # the check said "unreaped": now the other thread's kill runs
            other.start()
            other.join(2)  # without the fix it reaps here; with it, it waits for us
        return result
    try:
        assert running.wait_for(30)
        monkeypatch.setattr(os, "killpg",
                            lambda pgid, signum: (calls.append(_zombie(pgid)),
                                                  real_killpg(pgid, signum))[1])
        monkeypatch.setattr(os, "waitid", waitid)
        running.kill_group()
        other.join(30)
        assert fired.is_set() and not other.is_alive()
    finally:
        monkeypatch.undo()
        _end(running)
    assert calls and all(calls), calls


@contextlib.contextmanager
def _high_limit() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(2048, hard)), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _high(fd: int) -> int:
    """``fd`` moved past 1023 (the original closed)."""
    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 1100)
    finally:
        os.close(fd)


def test_a_lent_send_wait_works_with_a_pidfd_past_1023(tmp_path: Path) -> None:
    with _high_limit():
        running = _start(tmp_path, ["/bin/sleep", "600"])
        try:
            with ExitWait(running.pid) as waiting:  # lend.Outlet.wait's: the pid alone
                assert waiting._pidfd is not None
                waiting._pidfd = _high(waiting._pidfd)
                assert waiting._pidfd >= 1024
                assert not waiting.within(0.05)  # without the fix: ValueError
                os.kill(running.pid, signal.SIGKILL)
                assert waiting.within(60)
            assert running.wait() == -signal.SIGKILL
        finally:
            _end(running)


def test_an_accounting_read_works_with_a_descriptor_past_1023(tmp_path: Path) -> None:
    with _high_limit():
        read_end, write_end = os.pipe()
        running = _start(tmp_path, ["/bin/echo", "pages 3"], stdout=write_end)
        os.close(write_end)
        try:
            high = _high(read_end)
            assert high >= 1024
            kept = accounting._collect(running, None, high, time.monotonic() + 60)
            assert kept == b"pages 3\n"  # without the fix: ValueError from select
            assert running.wait() == 0
        finally:
            _end(running)


#: Run in a process of its own: ``run.start`` whose program is started (the fork and exec
#: succeed) but whose output reader cannot be (a thread's stack larger than the address
#: space RLIMIT_AS leaves). Says what was raised, which children are left and whether a
#: descriptor was.
_FAILED_START = r"""
import json, os, resource, sys, threading
import psutil
from lpfilter.children import run
spool = sys.argv[1]
os.makedirs(os.path.join(spool, ".lpfilter"), exist_ok=True)
me = psutil.Process()
threading.stack_size(1 << 30)
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, (me.memory_info().vms + (256 << 20), hard))
before = sorted(os.listdir("/proc/self/fd"))
try:
    run.start(run.FilterCommand("lp", ["/bin/sleep", "600"], False, False), stdin=None,
              stdout=None, env={"PATH": "/bin"}, cwd=spool,
              owner=(os.geteuid(), os.getegid()), messages=run.Messages())
    error = ""
except RuntimeError as exc:
    error = str(exc)
left = [child.pid for child in me.children(recursive=True)]
after = sorted(os.listdir("/proc/self/fd"))
print(json.dumps({"error": error, "left": left, "fds": [before, after]}))
"""


def test_a_start_that_fails_after_the_fork_leaves_no_program(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _FAILED_START, str(tmp_path)],
                          capture_output=True, text=True, timeout=120, check=False)
    said = json.loads(done.stdout.splitlines()[-1]) if done.stdout else {}
    left = said.get("left", [])
    for pid in left:  # without the fix: the started sleep, still running unreaped
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert done.returncode == 0, done.stderr
    assert "thread" in said["error"]  # it did fail, after the fork
    assert left == []
    assert said["fds"][0] == said["fds"][1]
    assert [p for p in (tmp_path / ".lpfilter").rglob("*") if not p.is_dir()] == []  # record
