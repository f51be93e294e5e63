"""A daemon whose queue's spool is removed between two of its looks: it never stops.

The watcher's loop takes a queue's lease again after its worker ended (a rescan), and
when the process that held it let go (a busy queue). A spool removed just before (an
``rm -rf`` whose events are not read yet) left nowhere to open the lease: the error went
up through the loop, and the daemon stopped serving every queue. Here the moment is made
by hand: the worker stopped, the spool removed, then the loop's look.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from spoolkit import wait_until

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
