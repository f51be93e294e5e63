"""A daemon whose queue's spool is removed between two of its looks: it never stops.

The watcher's loop takes a queue's lease again after its worker ended (a rescan), and
when the process that held it let go (a busy queue). A spool removed just before (an
``rm -rf`` whose events are not read yet) left nowhere to open the lease: the error went
up through the loop, and the daemon stopped serving every queue. Here the moment is made
by hand: the worker stopped, the spool removed, then the loop's look. And a real daemon
whose spool goes while a job is being sent.
"""
from __future__ import annotations

import logging
import shutil
import signal
import sys
from pathlib import Path

import pytest
from spoolkit import Kit, kit, wait_served, wait_until  # noqa: F401 - the fixture
from test_spool_full import GATED, remove_busy_tree

from lpfilter import printcap
from lpfilter.spool.lease import QueueLease
from lpfilter.spool.store import SpoolStore
from lpfilter.spool.watcher import Watcher


def _watcher(tmp_path: Path) -> tuple[Watcher, Path]:
    sd = tmp_path / "sd"
    sd.mkdir(mode=0o700)
    (tmp_path / "printcap").write_text(f"q:sd={sd}:lp=/dev/null\n")
    entry = printcap.load([str(tmp_path / "printcap")]).lookup("q")
    return Watcher(lambda: [entry], lock_dir=str(tmp_path / "locks"), once=False), sd


def test_a_worker_ended_and_its_spool_removed_retires_the_queue_at_the_rescan(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    watcher, sd = _watcher(tmp_path)
    watcher._start_safely(watcher.load()[0])
    served = watcher.served["q"]
    assert served.thread is not None
    served.worker.stop.set()  # the worker ends (as on an internal error): its lease goes
    served.worker.wake()
    served.thread.join(20)
    assert not served.thread.is_alive()
    shutil.rmtree(sd)
    with caplog.at_level(logging.INFO):
        watcher._rescan()  # before the fix: FileNotFoundError out of the loop
    assert "q" not in watcher.served and "q" in watcher.broken
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(said) == 1 and f"the spool directory {sd}" in said[0], said
    assert "was removed while the queue was served" in said[0], said
    sd.mkdir(mode=0o700)  # made again: served at the next look, as after any removal
    watcher._rescan()
    try:
        assert "q" in watcher.served and "q" not in watcher.broken
        assert wait_until(lambda: watcher.served["q"].thread is not None, what="its worker")
    finally:
        watcher.stop.set()
        watcher._shutdown()


def test_a_busy_queue_whose_spool_is_removed_is_retired_not_the_daemon(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    watcher, sd = _watcher(tmp_path)
    store = SpoolStore(str(sd), "q")
    store.ensure("watch")
    other = QueueLease.of(store, "watch")  # another process serves the queue
    assert other.take()
    try:
        watcher._start_safely(watcher.load()[0])
        assert watcher.busy == ["q"]
    finally:
        other.release()
    served = watcher.served["q"]
    served.server.lease.release()  # (the failed take kept the lock file open: not now)
    shutil.rmtree(sd)
    with caplog.at_level(logging.INFO):
        watcher._run_or_retire(served)  # its lease's event, or the busy queue's poll
    assert "q" not in watcher.served and "q" in watcher.broken
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        str(watcher.broken_why["q"])]
    watcher._run_or_retire(served)  # a later event of the same read: nothing more
    assert "q" not in watcher.served


def test_a_spool_removed_while_a_job_is_sent_is_one_line(kit: Kit) -> None:
    """``rm -rf`` of the spool while its worker sends a job: the outcome has nowhere to
    go. The daemon says the one line about the removed spool (no traceback, no internal
    error), goes on running, and serves the directory made again."""
    program = kit.program("gated.py", GATED.format(python=sys.executable, out=str(kit.out),
                                                  pids=str(kit.pids)))
    sd = kit.queue("lp", f"|{program}")
    watcher = kit.start("watch", "-P", "lp")
    wait_served(kit, "lp", watcher)
    (sd / "doc.txt").write_text("once\n")
    wait_until(lambda: (kit.out / "started").exists(), what="the send to start")
    remove_busy_tree(sd)
    (kit.out / "go").touch()
    wait_until(lambda: "was removed" in watcher.stderr(), what="the daemon to say")
    sd.mkdir(mode=0o700)
    watcher.signal(signal.SIGHUP)
    wait_until(lambda: f"spool directory {sd} can be used again" in watcher.stderr(),
               what="the queue back")
    assert watcher.popen.poll() is None
    assert watcher.stop() == 0
    err = watcher.stderr()
    assert "Traceback" not in err and "internal error" not in err, err
