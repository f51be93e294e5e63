"""The queue lease (issue 12, one serving loop): one process at a time serves a queue, and
another one sees which, in the one "served by pid N" wording; the kernel lets the lease go
when its holder dies, even by SIGKILL. Real processes; every wait bounded, every process
stopped by its pid."""
from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lpfilter.spool.lease import (LEASE_FILE, QueueLease, holder_of, holder_words, lease_path,
                                  served, served_by)
from lpfilter.spool.store import SpoolStore

#: A process that takes the lease, says so, and keeps it until its standard input ends.
HOLDER = ("import sys\nfrom lpfilter.spool.lease import QueueLease\n"
          "lease = QueueLease(sys.argv[1], sys.argv[2])\nassert lease.take()\n"
          "print('taken', flush=True)\nsys.stdin.read()\nlease.release()\n")


class Holder:
    """A child process holding the lease of the queue whose state folder is ``state``."""

    def __init__(self, state: Path, purpose: str) -> None:
        self.popen = subprocess.Popen([sys.executable, "-c", HOLDER, str(state), purpose],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True)
        self.pid = self.popen.pid
        assert self.popen.stdout is not None
        ready, _, _ = select.select([self.popen.stdout], [], [], 30)
        assert ready and self.popen.stdout.readline() == "taken\n", "the holder never took it"

    def let_go(self) -> int:
        """Close its standard input: it releases the lease and exits."""
        assert self.popen.stdin is not None
        self.popen.stdin.close()
        return self.popen.wait(30)

    def kill(self) -> None:
        if self.popen.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(30)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    folder = tmp_path / ".lpfilter"
    folder.mkdir()
    return folder


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        holder.kill()
        for stream in (holder.popen.stdin, holder.popen.stdout):
            if stream is not None and not stream.closed:
                stream.close()


def test_a_second_process_sees_who_holds_the_lease(state: Path,
                                                   holders: list[Holder]) -> None:
    """While one process holds the lease, another cannot take it and is told its pid and
    purpose, in the words status, watch and print use; once it lets go, the lease is free."""
    holders.append(child := Holder(state, "watch"))
    mine = QueueLease(str(state), "print")
    assert mine.path == str(state / LEASE_FILE) == lease_path(str(state))
    assert mine.take() is False
    holder = mine.holder()
    assert holder is not None and (holder.pid, holder.purpose) == (child.pid, "watch")
    assert holder_of(str(state)) == holder and served(str(state))
    assert holder_words(holder) == f"served by pid {child.pid} (watch)"
    assert re.fullmatch(rf"served by pid {child.pid} \(watch, since \d\d:\d\d:\d\d\)",
                        holder_words(holder, since=True))
    assert child.let_go() == 0
    assert holder_of(str(state)) is None and not served(str(state))
    assert mine.take() is True
    me = mine.holder()
    assert me is not None and (me.pid, me.purpose) == (os.getpid(), "print")
    mine.release()
    assert holder_of(str(state)) is None


def test_the_lease_is_free_when_its_holder_dies(state: Path, holders: list[Holder]) -> None:
    """SIGKILL leaves no lease behind: a waiting taker gets it as soon as the holder dies
    (here killed by the taker's first look at ``stop``), and nobody is named any more."""
    holders.append(child := Holder(state, "watch --once"))
    mine = QueueLease(str(state), "print")
    looks: list[int] = []

    def stop() -> bool:
        if not looks:
            os.kill(child.pid, signal.SIGKILL)
        looks.append(1)
        return False

    assert mine.take(timeout=30, stop=stop) is True
    assert looks, "the lease was free before its holder died"
    me = holder_of(str(state))
    assert me is not None and me.pid == os.getpid()
    mine.release()
    child.kill()  # reaped
    assert holder_of(str(state)) is None


def test_a_taker_that_must_stop_does_not_wait(state: Path, holders: list[Holder]) -> None:
    """``take`` with a timeout still ends at once when ``stop`` says so (Ctrl-C)."""
    holders.append(child := Holder(state, "watch"))
    mine = QueueLease(str(state), "print")
    assert mine.take(timeout=30, stop=lambda: True) is False
    holder = mine.holder()
    assert holder is not None and holder.pid == child.pid


def test_the_lease_of_a_store_is_in_its_state_folder(tmp_path: Path) -> None:
    """``QueueLease.of``: sd/.lpfilter/queue.lock, given to the queue's owner."""
    store = SpoolStore(str(tmp_path), "q")
    store.ensure()
    lease = QueueLease.of(store, "print")
    assert lease.path == str(tmp_path / ".lpfilter" / "queue.lock")
    assert lease.purpose == "print" and lease.take()
    assert os.stat(lease.path).st_uid == store.owner
    lease.release()


def test_the_one_wording_of_who_serves() -> None:
    """A lease that names nobody (its holder could not write on a full disk) is "another
    process"; status's data gives pid and purpose alone."""
    assert holder_words(None) == "served by another process"
    assert holder_words(None, since=True) == "served by another process"
    assert served_by(41, "watch") == "served by pid 41 (watch)"
    assert re.fullmatch(r"served by pid 41 \(print, since \d\d:\d\d:\d\d\)",
                        served_by(41, "print", since=0.0))


def test_a_clock_step_does_not_kill_a_live_holder() -> None:
    """psutil's start times move when the wall clock is stepped (they come from the boot
    time, which the kernel derives from it): a second's difference is the same process,
    a minute's is another one that took the pid."""
    from lpfilter.locks import process_alive, process_start

    me, start = os.getpid(), process_start(os.getpid())
    assert process_alive(me, start) and process_alive(me, start + 1.0)
    assert not process_alive(me, start - 60.0)


def test_a_lock_kept_open_between_holds_writes_its_record_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker takes its printer's lock for each job and keeps the file open between
    (``release(keep_open=True)``). Its record (who holds it) was written and cut at each
    job: now it stays while the file is kept, and is written again only when another
    holder wrote its own meanwhile. While nobody holds the lock nobody is shown; once let
    go for good, the file is empty again."""
    from lpfilter.locks import ProcessLock, current_holder

    path = str(tmp_path / "device-printer.lock")
    worker = ProcessLock(path, "queue q")
    writes: list[int] = []
    real = os.pwrite

    def counted(fd: int, data: bytes, offset: int) -> int:
        writes.append(fd)
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", counted)
    for _ in range(5):
        assert worker.acquire()
        holder = current_holder(path)
        assert holder is not None and holder.pid == os.getpid() and holder.purpose == "queue q"
        worker.release(keep_open=True)
        assert current_holder(path) is None
    assert len(writes) == 1
    other = ProcessLock(path, "queue r")  # another queue on the same printer, in between
    assert other.acquire()
    holder = current_holder(path)
    assert holder is not None and holder.purpose == "queue r"
    other.release(keep_open=True)
    assert worker.acquire()  # the file holds the other's record: ours is written again
    holder = current_holder(path)
    assert holder is not None and holder.purpose == "queue q"
    assert len(writes) == 3
    worker.release(keep_open=True)
    other.release()  # its kept file: the record there is not its own, so it stays
    assert os.path.getsize(path) > 0
    worker.release()  # let go for good: its record is cut
    assert os.path.getsize(path) == 0
    assert current_holder(path) is None
