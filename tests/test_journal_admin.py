"""A running daemon and a damaged journal (issue 16, item 1): it stops serving the queue
with one line, and serves it again, without a restart, once an administrator moves the
journal aside (an inotify event on the state folder; the rescan too), with one line.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from serverkit import ask, printed, send_job, start_server
from spoolkit import Kit, journal_path, kit, wait_until  # noqa: F401 - the fixture
from test_journal_refusals import damage

from lpfilter import printcap
from lpfilter.protocols import lpd
from lpfilter.spool.watcher import Watcher

WAITS = "the queue is not served until then"
BACK = "can be used again; serving the queue"


def test_daemon_serves_a_queue_again_once_its_damaged_journal_is_moved_aside(
        kit: Kit) -> None:
    """watch with its LPD listener: the damage is seen (one line), LPD and print are refused
    while it lasts; ``mv journal journal.bad``, and a job sent by LPD and one by ``print``
    are printed by the same daemon."""
    sd = kit.queue("q", kit.recorder())
    server = kit_server = start_server(kit)
    send_job(kit_server.port, b"before\n")
    assert printed(kit) == [b"before\n"]
    wait_until(lambda: list(kit.states("q").values()) == ["done"], what="the job recorded")
    damage(sd)  # after the daemon's last append (else a torn tail: it cuts that off)
    wait_until(lambda: WAITS in server.proc.stderr(), what="the daemon to give the queue up")
    assert ask(server.port, lpd.receive_job("q"))[:1] != b"\0"  # not taken
    assert kit.run("print", "--no-wait", "-P", "q", str(kit.printcap)).returncode == 5
    journal_path(sd).rename(sd / ".lpfilter" / "journal.bad")
    wait_until(lambda: BACK in server.proc.stderr(), timeout=15,
               what="the daemon to serve the queue again (before its 30 s rescan)")
    send_job(server.port, b"after\n", number=2)
    assert kit.run("print", "--no-wait", "-P", "q", str(kit.printcap)).returncode == 0
    assert sorted(printed(kit, count=3)) == sorted([b"before\n", b"after\n",
                                                    kit.printcap.read_bytes()])
    assert server.proc.popen.poll() is None
    assert server.proc.stop() == 0
    err = server.proc.stderr()
    assert err.count("damaged at offset") == 1 and err.count(WAITS) == 1, err
    assert err.count(BACK) == 1 and "Traceback" not in err, err


def test_a_damaged_queue_is_said_once_not_at_each_rescan(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The daemon's rescans (here called as its loop does) try the queue again and say
    nothing while the journal is still damaged (it said the damage, and "can be used
    again", at every rescan); the try that serves it says so once."""
    sd = tmp_path / "sd"
    sd.mkdir(mode=0o700)
    (tmp_path / "printcap").write_text(f"lp:sd={sd}:lp=/dev/null\n")
    entry = printcap.load([str(tmp_path / "printcap")]).lookup("lp")
    (sd / "doc.txt").write_text("x\n")
    watcher = Watcher(lambda: [entry], lock_dir=str(tmp_path / "locks"), once=False)
    watcher._start_safely(entry)
    store = watcher.served["lp"].worker.store
    wait_until(lambda: [j.state for j in store.jobs()] == ["done"], what="the job printed")
    damage(sd)
    watcher.served["lp"].worker.wake()
    served = watcher.served["lp"]
    wait_until(lambda: served.error is not None, what="the worker to stop on the damage")
    assert served.thread is not None
    served.thread.join(20)
    caplog.set_level(logging.INFO, logger="lpfilter")
    watcher._retire_stopped()  # what the loop does with a stopped worker
    for _ in range(3):
        watcher._rescan()
    assert "lp" in watcher.broken and "lp" not in watcher.served
    lines = [r.getMessage() for r in caplog.records if r.name == "lpfilter.spool.watcher"]
    assert len(lines) == 1 and "damaged at offset" in lines[0] and WAITS in lines[0], lines
    os.rename(journal_path(sd), sd / ".lpfilter" / "journal.bad")
    watcher._rescan()
    lines = [r.getMessage() for r in caplog.records if r.name == "lpfilter.spool.watcher"]
    assert len(lines) == 2 and BACK in lines[1], lines
    assert "lp" in watcher.served and "lp" not in watcher.broken
    watcher._shutdown()
