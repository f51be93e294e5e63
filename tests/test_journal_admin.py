"""A running daemon and a damaged journal (issue 16, item 1): it stops serving the queue
with one line, and serves it again, without a restart, once an administrator moves the
journal aside (an inotify event on the state folder; the rescan too), with one line.
"""
from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from serverkit import ask, printed, send_job, start_server
from spoolkit import Kit, journal_path, kit, retire_stopped_worker, wait_until  # noqa: F401
from test_journal_refusals import damage

from lpfilter import printcap
from lpfilter.cli import main
from lpfilter.protocols import lpd
from lpfilter.spool.store import SpoolStore
from lpfilter.spool.watcher import Watcher

@contextlib.contextmanager
def read_only_view(path: Path, view: Path) -> Iterator[None]:
    """``path`` seen read-only at ``view`` (a read-only bind mount), ``path`` still
    writable, until the block ends."""
    def mount(*args: str) -> None:
        subprocess.run(["mount", *args], check=True, capture_output=True, timeout=20)
    mount("--bind", str(path), str(view))
    try:
        mount("-o", "remount,bind,ro", str(view))
        yield
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False, capture_output=True,
                       timeout=20)


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
    caplog.set_level(logging.INFO, logger="lpfilter")
    retire_stopped_worker(watcher, "lp", "the damage")
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


# --- the journal removed while a command reads it (item 4) ---------------------------------
def _queue_with_jobs(kit: Kit) -> Path:
    sd = kit.queue("lp", "/dev/null", accounting=False)
    for _ in range(3):
        assert kit.run("print", "--no-wait", "-P", "lp", str(kit.printcap)).returncode == 0
    return sd


def test_status_while_the_journal_is_removed_and_made_again_never_exits_70(kit: Kit) -> None:
    """Real ``status`` processes while a thread removes the journal and writes it back,
    again and again (bounded): each says the queue (exit 0), none an internal error (it
    exited 70 when the journal went between its create-or-open's two opens, and 5, "0
    hard links", when it went between the open and the check). A status whose every one
    of its bounded tries lost the race (journalfile.TRIES, all in a few microseconds of
    this thread's loop: seen once in a fresh clone's run) gives its own one line, exit 5."""
    sd = _queue_with_jobs(kit)
    path = journal_path(sd)
    data = path.read_bytes()
    stop = threading.Event()

    def churn() -> None:
        for _ in range(500_000):
            if stop.is_set():
                return
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # a status made it first
                continue
            os.write(fd, data)
            os.close(fd)

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        done = [kit.run("--debug", "status", "-P", "lp") for _ in range(40)]
    finally:
        stop.set()
        thread.join(30)
    bad = [(run.returncode, run.stderr[-400:]) for run in done if run.returncode != 0
           and not (run.returncode == 5 and "removed each time it was opened" in run.stderr)]
    assert bad == []
    assert sum(run.returncode == 0 for run in done) >= 30, [r.returncode for r in done]


def _removing_at(path: Path, monkeypatch: pytest.MonkeyPatch, *, after: bool) -> list[int]:
    """os.open of ``path`` without O_CREAT removes it first (``after``: just after it is
    opened), once: an administrator's ``mv`` landing in the window. Returns the count."""
    real_open = os.open
    hits: list[int] = []

    def racing_open(name: str | os.PathLike[str], flags: int, *args: int) -> int:
        racing = os.fspath(name) == str(path) and not flags & os.O_CREAT and not hits
        if racing and not after:
            hits.append(1)
            os.unlink(path)
        fd = real_open(name, flags, *args)
        if racing and after:
            hits.append(1)
            os.unlink(path)
        return fd

    monkeypatch.setattr(os, "open", racing_open)
    return hits


@pytest.mark.parametrize("after", [False, True], ids=["before-the-open", "after-the-open"])
def test_a_journal_removed_while_status_opens_it_is_opened_again(
        kit: Kit, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        after: bool) -> None:
    """The journal removed in the window (exit 70, a FileNotFoundError; or exit 5 "it has
    0 hard links"): a new journal is made, and ``status`` answers (exit 0)."""
    sd = _queue_with_jobs(kit)
    hits = _removing_at(journal_path(sd), monkeypatch, after=after)
    status = main(["--printcap", str(kit.printcap), "status", "-P", "lp"])
    monkeypatch.undo()
    assert hits == [1]
    assert status == 0, capsys.readouterr().err
    assert journal_path(sd).stat().st_nlink == 1


def test_a_readers_journal_moved_aside_is_read_again(kit: Kit, tmp_path: Path) -> None:
    """A process that may not write the state folder (a read-only view of the spool) reads
    the journal; the administrator moves it aside (through the writable path): the next
    look finds no journal and no jobs, where it raised FileNotFoundError (exit 70); the
    new journal a print makes is read from its start."""
    sd = _queue_with_jobs(kit)
    view = tmp_path / "view"
    view.mkdir()
    with read_only_view(sd, view):
        store = SpoolStore(str(view), "lp")
        assert len(store.jobs()) == 3
        journal_path(sd).rename(sd / ".lpfilter" / "journal.bad")
        assert store.jobs() == []
        assert kit.run("print", "--no-wait", "-P", "lp", str(kit.printcap)).returncode == 0
        assert [job.id for job in store.jobs()] == ["000004"]  # the new journal, read
        store.close()
