"""A queue's journal lock is waited for a bounded time (journalfile.LOCK_WAIT): its holders
keep it for milliseconds, and a holder that keeps it for ever (a ``print`` stopped with
Ctrl-Z in the middle, a hung process) would have stopped the daemon's worker without a
word, every wait being a blocking flock. Now the command stops with one line naming the
lock and its holder (pid and name), exit 9 (the queue is busy), and nothing changed.
Real processes hold real locks."""
from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from spoolkit import in_process_queue, retire_stopped_worker, wait_until  # noqa: F401

from lpfilter import printcap
from lpfilter.cli import main
from lpfilter.errors import LockHeld
from lpfilter.spool import journalfile
from lpfilter.spool.journalfile import take_lock
from lpfilter.spool.store import SpoolStore
from lpfilter.spool.watcher import Watcher
from lpfilter.status import ExitStatus

#: Holds the flock on argv[1] until a line comes on stdin (or stdin closes).
HOLDER = ("import fcntl, os, sys\nfd = os.open(sys.argv[1], os.O_RDWR)\n"
          "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\nsys.stdin.readline()\n")


class Holder:
    """Another process holding a lock file's flock, until ``let_go``."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline() == "held\n"

    def let_go(self) -> None:
        """Let go of the lock: the holder ends (by its pid, at the latest when killed)."""
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()
        try:
            self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(20)


@pytest.fixture
def lock_file(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A lock file and a descriptor of ours on it (closed afterwards)."""
    path = tmp_path / "lock"
    path.touch()
    fd = os.open(path, os.O_RDWR)
    try:
        yield path, fd
    finally:
        os.close(fd)


@pytest.fixture
def holder_of() -> Iterator[list[Holder]]:
    holders: list[Holder] = []
    yield holders
    for holder in holders:
        holder.let_go()


def test_a_free_lock_is_taken_at_once(lock_file: tuple[Path, int]) -> None:
    path, fd = lock_file
    take_lock(fd, str(path), wait=0.0)
    other = os.open(path, os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(other)


def test_a_lock_let_go_while_waited_for_is_taken(lock_file: tuple[Path, int],
                                                 holder_of: list[Holder]) -> None:
    path, fd = lock_file
    holder_of.append(Holder(path))
    errors: list[BaseException] = []

    def take() -> None:
        try:
            take_lock(fd, str(path), wait=60.0)
        except BaseException as exc:  # noqa: BLE001 - said by the test
            errors.append(exc)

    taker = threading.Thread(target=take)
    taker.start()
    try:
        holder_of[0].let_go()
        taker.join(30)
        assert not taker.is_alive() and not errors, errors
    finally:
        taker.join(30)


def test_a_lock_held_too_long_is_said_naming_its_holder(lock_file: tuple[Path, int],
                                                        holder_of: list[Holder]) -> None:
    path, fd = lock_file
    holder_of.append(Holder(path))
    with pytest.raises(LockHeld) as caught:
        take_lock(fd, str(path), queue="q", wait=0.2)
    message = str(caught.value)
    assert message.startswith(f"queue q: the lock {path} has been held for 0.2 s by another"
                              f" process (pid {holder_of[0].proc.pid}, python"), message
    assert "end it and try again" in message
    assert caught.value.queue == "q"


def test_print_stops_in_one_line_with_exit_9_while_a_stuck_process_holds_the_journal(
        tmp_path: Path, in_process_queue: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], holder_of: list[Holder]) -> None:
    sd = in_process_queue
    (tmp_path / "f").write_text("one\n")
    assert main(["print", "--no-wait", "-P", "q", str(tmp_path / "f")]) == 0  # the journal
    store = SpoolStore(str(sd), "q")
    before = {job.id for job in store.jobs()}
    store.close()
    capsys.readouterr()

    holder_of.append(Holder(Path(store.journal_path + ".lock")))
    monkeypatch.setattr(journalfile, "LOCK_WAIT", 0.3)
    status = main(["print", "--no-wait", "-P", "q", str(tmp_path / "f")])
    err = capsys.readouterr().err
    assert status == ExitStatus.QUEUE_BUSY, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "queue q: the lock" in err and f"(pid {holder_of[0].proc.pid}, python" in err, err

    holder_of[0].let_go()
    store = SpoolStore(str(sd), "q")
    assert {job.id for job in store.jobs()} == before  # nothing was spooled
    store.close()
    assert main(["print", "--no-wait", "-P", "q", str(tmp_path / "f")]) == 0  # and now it is


def test_the_daemon_says_a_stuck_lock_once_and_serves_the_queue_again_after_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        holder_of: list[Holder]) -> None:
    """The daemon's worker meets the journal's lock held by a stuck process: the queue is
    given up with one line naming the holder, its rescans (called here as the loop does)
    say nothing more while the lock stays held, and once the holder is gone the next
    rescan serves the queue again and prints what waited."""
    sd = tmp_path / "sd"
    sd.mkdir(mode=0o700)
    (tmp_path / "printcap").write_text(f"lp:sd={sd}:lp=/dev/null\n")
    entry = printcap.load([str(tmp_path / "printcap")]).lookup("lp")
    (sd / "first.txt").write_text("x\n")
    monkeypatch.setattr(journalfile, "LOCK_WAIT", 0.3)
    watcher = Watcher(lambda: [entry], lock_dir=str(tmp_path / "locks"), once=False)
    try:
        watcher._start_safely(entry)
        store = watcher.served["lp"].worker.store
        wait_until(lambda: [j.state for j in store.jobs()] == ["done"], what="the job printed")
        holder_of.append(Holder(Path(store.journal_path + ".lock")))
        (sd / "second.txt").write_text("y\n")
        caplog.set_level(logging.INFO, logger="lpfilter")
        retire_stopped_worker(watcher, "lp", "the lock")
        for _ in range(2):
            watcher._rescan()
        lines = [r.getMessage() for r in caplog.records if r.name == "lpfilter.spool.watcher"]
        assert len(lines) == 1, lines
        assert (f"queue lp: the lock {store.journal_path}.lock has been held for 0.3 s"
                f" by another process (pid {holder_of[0].proc.pid}, python") in lines[0]
        holder_of[0].let_go()
        watcher._rescan()
        assert "lp" in watcher.served and "lp" not in watcher.broken
        store = watcher.served["lp"].worker.store
        wait_until(lambda: sorted(j.state for j in store.jobs()) == ["done", "done"],
                   what="the waiting job printed")
    finally:
        watcher._shutdown()
