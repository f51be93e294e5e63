"""Issue 16: the daemon shares one journal-backed store per served queue.

A new ``SpoolStore`` replays the queue's whole journal on first use (~100 ms at ~2000
jobs); the daemon made one per connection. These tests count, never time: over many LPD
connections to one queue (jobs received, status asked) the journal is opened once, the
worker's, and a connection's ``close`` leaves it open for the worker. Then, with a real
``watch --listen`` daemon: an administrator removing the spool's state folder under it
does not make later jobs go into the removed journal.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from serverkit import ask, printed, send_job, start_server
from spoolkit import Kit, kit, wait_until  # noqa: F401 - fixture

from lpfilter import printcap
from lpfilter.commands.lpdserver import ServedQueues
from lpfilter.job import JobState
from lpfilter.protocols import lpd
from lpfilter.server.listener import Listener, open_tcp, parse_allow
from lpfilter.spool import journal as journal_module
from lpfilter.spool import store as store_module
from lpfilter.spool.control import QueueControl, write_control
from lpfilter.spool.worker import QueueWorker


class OneQueue:
    """The part of a Watcher that ``ServedQueues`` reads: one served queue, its worker."""

    def __init__(self, entry: printcap.Entry, worker: QueueWorker) -> None:
        self.served = {entry.name: SimpleNamespace(entry=entry, worker=worker)}


@pytest.fixture
def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[tuple[QueueWorker, int, list[str]]]:
    """A stopped queue's worker (lpc stop: jobs are received, not printed) served by a
    listener in this process; the list grows by one for each Journal opened."""
    sd = tmp_path / "sd"
    sd.mkdir(mode=0o700)
    (tmp_path / "printcap").write_text(f"q:sd={sd}:lp={tmp_path / 'out'}:\n")
    (tmp_path / "out").touch()
    entry = printcap.load([str(tmp_path / "printcap")]).lookup("q")
    worker = QueueWorker(entry, lock_dir=str(tmp_path / "locks"))
    worker.store.ensure("watch")
    write_control(worker.store.state, QueueControl(printing_disabled=True), worker.store.owner)
    opened: list[str] = []
    journal_class = journal_module.Journal

    class Counted(journal_class):  # type: ignore[misc, valid-type]
        def __init__(self, folder: str, *args: object, **kwargs: object) -> None:
            opened.append(folder)
            super().__init__(folder, *args, **kwargs)

    monkeypatch.setattr(store_module, "Journal", Counted)
    sock = open_tcp("127.0.0.1", 0)
    listener = Listener([sock], ServedQueues(OneQueue(entry, worker)),  # type: ignore[arg-type]
                        allow=[parse_allow("127.0.0.0/8")], max_connections=100,
                        idle_timeout=30)
    listener.start()
    try:
        yield worker, sock.getsockname()[1], opened
    finally:
        listener.shutdown()
        worker.close()


def test_many_connections_open_and_replay_the_journal_once(
        daemon: tuple[QueueWorker, int, list[str]]) -> None:
    worker, port, opened = daemon
    assert worker.store.jobs() == []  # the worker's store opens the journal: once
    assert len(opened) == 1
    for number in range(1, 21):
        send_job(port, b"job %d\n" % number, number=number)
        assert b"job.txt" in ask(port, lpd.status("q", long=True))
    assert len(opened) == 1, opened  # was 41: a new store (a replay) per connection
    jobs = worker.store.jobs()  # the worker's view has every job received
    assert [j.state for j in jobs] == [JobState.QUEUED] * 20
    assert worker.store.shared and worker.store._journal is not None  # not closed by them


def test_the_owners_final_close_closes_the_shared_journal(
        daemon: tuple[QueueWorker, int, list[str]]) -> None:
    worker, port, _ = daemon
    send_job(port, b"one\n")
    journal = worker.store._journal
    assert journal is not None and journal.fd >= 0
    worker.store.close()  # what a connection does: the journal stays open
    assert worker.store._journal is journal and journal.fd >= 0
    worker.close()  # the worker is done: closed, and later users close what they open
    assert worker.store._journal is None and journal.fd == -1
    assert len(worker.store.jobs()) == 1
    worker.store.close()
    assert worker.store._journal is None


def test_a_job_after_the_state_folder_was_removed_goes_into_the_new_journal(
        daemon: tuple[QueueWorker, int, list[str]]) -> None:
    """rm -rf sd/.lpfilter under the shared store, then a connection: its checks make the
    folder again and the job is recorded in the new journal (it went into the removed
    file, the store's fd, found again only as recovered-N after a restart)."""
    worker, port, _ = daemon
    send_job(port, b"before\n", number=1)
    assert len(worker.store.jobs()) == 1
    shutil.rmtree(worker.store.state)
    send_job(port, b"after\n", user="bob", name="after.txt", number=2)
    again = store_module.SpoolStore(worker.store.sd, "q")  # a new reader: the file's truth
    try:
        assert [(j.user, j.name) for j in again.jobs()] == [("bob", "after.txt")]
    finally:
        again.close()
    assert [j.user for j in worker.store.jobs()] == ["bob"]


def test_a_journal_removed_under_a_daemon_is_made_again(kit: Kit) -> None:
    """rm sd/.lpfilter/journal under a real daemon (its watcher sees no such event): the
    next job received over LPD, and the next one dropped into the hot folder, are
    recorded in the new journal and print."""
    kit.queue("q", kit.recorder())
    server = start_server(kit)
    send_job(server.port, b"before\n", number=1)
    assert printed(kit, "q", 1) == [b"before\n"]
    # The printer (the recorder) has job 1's bytes a moment before the worker records the
    # job's outcome, when the recorder has ended: a journal removed in between gets that
    # outcome as its new first record, and job 1 is in the new journal too.
    wait_until(lambda: kit.states("q") == {"000001": "done"}, what="job 1 done")
    (kit.sd("q") / ".lpfilter" / "journal").unlink()
    send_job(server.port, b"after\n", user="bob", name="after.txt", number=2)
    (kit.sd("q") / "dropped.txt").write_bytes(b"dropped\n")
    wait_until(lambda: sorted(t["name"] for t in kit.tickets("q").values())
               == ["after.txt", "dropped.txt"], what="both jobs in the new journal")
    outputs = printed(kit, "q", 3)
    assert b"after\n" in outputs and b"dropped\n" in outputs
    wait_until(lambda: [t["state"] for t in kit.tickets("q").values()] == ["done"] * 2,
               what="both jobs done in the new journal")
    assert server.proc.popen.poll() is None


def test_a_writer_whose_folder_was_removed_appends_to_a_new_journal_under_its_lock(
        tmp_path: Path) -> None:
    """The journal's folder removed and made again under a writer: its next append goes
    into a new journal there, and it holds the new lock file while appending (another
    process's flock of it must wait); a reader of a removed journal is told."""
    import fcntl
    import os

    from lpfilter.spool.journal import Journal, Kind

    folder = tmp_path / "state"
    folder.mkdir(mode=0o700)
    records: list[bytes] = []
    writer = Journal(str(folder), os.getuid(), lambda r: records.append(r.payload))
    reader = Journal(str(folder), os.getuid(), writable=False)
    try:
        with writer.locked():
            writer.append([(Kind.NOTE, b"old")])
        shutil.rmtree(folder)
        with pytest.raises(FileNotFoundError):
            reader.catch_up()
        folder.mkdir(mode=0o700)
        with writer.locked():
            writer.append([(Kind.NOTE, b"new")])
            other = os.open(folder / "journal.lock", os.O_RDWR)
            try:
                with pytest.raises(BlockingIOError):
                    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            finally:
                os.close(other)
        seen: list[bytes] = []
        fresh = Journal(str(folder), os.getuid(), lambda r: seen.append(r.payload),
                        writable=False)
        fresh.close()
        assert seen == [b"{}", b"new"]  # a HEAD going on from the old end, then the record
    finally:
        writer.close()
        reader.close()
