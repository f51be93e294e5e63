"""What the daemon pays per job received: counted (calls, system calls), never timed.

Issue 16's LPD target (1000 jobs received from LPRng's lpr and printed at 500 jobs/s or
more) is CPU-bound: bench/JOURNAL-DESIGN.md §1.4 found a stopped queue's worker listing
every ticket at each wake-up, and set-up checks repeated on every connection. These tests
pin that those costs are gone, by counting them on real stores and real connections.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lpfilter import printcap
from lpfilter.job import JobState
from lpfilter.spool.control import QueueControl, write_control
from lpfilter.spool.store import SpoolStore
from lpfilter.spool.submit import JobOptions, submit
from lpfilter.spool.worker import RECENT_MAX, QueueWorker, WorkSummary


def _queue(tmp_path: Path) -> tuple[printcap.Entry, SpoolStore]:
    sd = tmp_path / "sd"
    sd.mkdir(mode=0o700)
    (tmp_path / "printcap").write_text(f"q:sd={sd}:lp={tmp_path / 'out'}:\n")
    (tmp_path / "out").touch()
    entry = printcap.load([str(tmp_path / "printcap")]).lookup("q")
    store = SpoolStore(str(sd), "q")
    store.ensure("watch")
    return entry, store


def _worker(tmp_path: Path, **kwargs: Any) -> tuple[printcap.Entry, SpoolStore, Path,
                                                    QueueWorker]:
    """The queue, a one-page document and a worker of the queue."""
    entry, store = _queue(tmp_path)
    doc = tmp_path / "doc"
    doc.write_bytes(b"a page\n")
    (tmp_path / "locks").mkdir(mode=0o700)
    return entry, store, doc, QueueWorker(entry, lock_dir=str(tmp_path / "locks"), **kwargs)


def _count_listings(worker: QueueWorker) -> list[int]:
    """How many jobs each of the worker's listings of its store gave, from now on."""
    listed: list[int] = []
    listing = worker.store.jobs

    def counted(*, finished: bool = True):  # type: ignore[no-untyped-def]
        found = listing(finished=finished)
        listed.append(len(found))
        return found

    worker.store.jobs = counted  # type: ignore[method-assign]
    return listed


def test_a_stopped_queues_worker_lists_no_jobs_when_woken(tmp_path: Path) -> None:
    """Every job received wakes the queue's worker; while lpc stop holds the queue, a
    wake-up looks at the gate only (it used to list, stat and copy every ticket first:
    quadratic in the jobs received). Once started, the jobs print."""
    entry, store, doc, worker = _worker(tmp_path)
    write_control(store.state, QueueControl(printing_disabled=True), store.owner)
    listed = _count_listings(worker)
    summary = WorkSummary()
    wakeups = 20
    try:
        for _ in range(wakeups):  # a job received, the worker woken: one batch each
            submit(entry, store, str(doc), JobOptions("alice"))
            assert worker.run_batch(summary) == (False, None)
        assert listed == []
        assert [j.state for j in store.jobs()] == [JobState.QUEUED] * wakeups
        write_control(store.state, QueueControl(), store.owner)  # lpc start
        ran, _ = worker.run_batch(summary)
        assert ran and listed[0] == wakeups
        assert [j.state for j in store.jobs()] == [JobState.DONE] * wakeups
        assert (tmp_path / "out").read_bytes() == b"a page\n" * wakeups
    finally:
        worker.close()
        store.close()


def test_a_batch_looks_at_the_gate_once_per_queued_job_not_per_ticket(tmp_path: Path) -> None:
    """Finished tickets are kept (done_jobs) and listed with the queued ones; lpc's state
    is read before each job sent, never for each finished ticket passed over (it was:
    with 500 jobs received while printing, 33,666 reads of the control file)."""
    entry, store, doc, worker = _worker(tmp_path)
    looks: list[bool] = []
    look = worker.gate.stopped

    def counted() -> bool:
        looks.append(look())
        return looks[-1]

    worker.gate.stopped = counted  # type: ignore[method-assign]
    summary = WorkSummary()
    try:
        finished = 30
        for _ in range(finished):
            submit(entry, store, str(doc), JobOptions("alice"))
        assert worker.run_batch(summary)[0]
        assert len(looks) == 1 + finished  # before the listing, then before each job
        looks.clear()
        submit(entry, store, str(doc), JobOptions("alice"))
        assert worker.run_batch(summary)[0]
        assert len(store.jobs()) == finished + 1  # the finished tickets are still listed
        assert looks == [False, False]  # before the listing, and before the one job
        assert (tmp_path / "out").read_bytes() == b"a page\n" * (finished + 1)
    finally:
        worker.close()
        store.close()


def test_the_spool_is_checked_once_per_daemon_not_per_connection(tmp_path: Path) -> None:
    """store.ensure (about fourteen system calls, four mkdirs) ran on every connection;
    now again only when the spool's folders changed: the first connection checks, its job
    makes files in the state folder (so the second checks again), then 19 connections
    check nothing. A removed tmp/ is
    noticed (the state folder changed), checked and made again."""
    import os

    from receivekit import Client, Receiver, control_file

    server = Receiver(tmp_path)
    calls: list[str] = []
    ensure = server.store.ensure

    def counted(action: str = "print") -> None:
        calls.append(action)
        ensure(action)

    server.store.ensure = counted  # type: ignore[method-assign]
    try:
        for number in range(1, 23):
            if number == 22:
                os.rmdir(server.store.tmp_dir)
            client = Client(server.port)
            assert client.control(f"cfA{number:03d}client", control_file(number)) == b"\0"
            assert client.data(f"dfA{number:03d}client", b"job %d\n" % number) == b"\0"
            client.finish()
            assert server.outcome().error is None
            if number == 21:
                assert calls == ["watch"] * 2, calls  # the first connection's and the second's
        assert calls == ["watch"] * 3  # and once more after tmp/ went
        assert len(server.jobs()) == 22 and server.staged() == []
    finally:
        server.close()


def test_a_failed_operation_makes_the_next_connection_check_in_full(tmp_path: Path) -> None:
    from lpfilter.server.spoolcheck import SpoolChecks

    _, store = _queue(tmp_path)
    checks = SpoolChecks()
    calls: list[str] = []
    ensure = store.ensure

    def counted(action: str = "print") -> None:
        calls.append(action)
        ensure(action)

    store.ensure = counted  # type: ignore[method-assign]
    for _ in range(3):
        checks.ensure(store)
    assert calls == ["watch"]
    checks.forget(store)
    checks.ensure(store)
    checks.ensure(store)
    assert calls == ["watch", "watch"]
    store.close()


def test_an_assembled_jobs_copy_is_closed_once_committed(tmp_path: Path) -> None:
    """Data files sent in another order than the print lines are copied into a second
    staged file; its descriptor was closed only by the digest noted after the final
    acknowledgement, so a job whose digest was known already kept it open for ever."""
    import os

    from receivekit import Client, Receiver, control_file

    server = Receiver(tmp_path)
    try:
        def send(number: int) -> None:
            client = Client(server.port)
            for name in (f"dfB{number:03d}client", f"dfA{number:03d}client"):  # B first
                assert client.data(name, b"%s of job %d\n" % (name[:3].encode(), number)) == b"\0"
            files = (("f", "dfA"), ("f", "dfB"))
            assert client.control(f"cfA{number:03d}client",
                                  control_file(number, files=files)) == b"\0"
            client.finish()
            (job,) = server.outcome().jobs
            assert server.data(job) == b"dfA of job %d\ndfB of job %d\n" % (number, number)

        send(1)
        before = len(os.listdir("/proc/self/fd"))
        for number in range(2, 12):
            send(number)
        assert len(os.listdir("/proc/self/fd")) <= before
    finally:
        server.close()


def test_a_batch_copies_the_unfinished_tickets_only(tmp_path: Path) -> None:
    """A burst keeps every finished ticket for a minute (``print --wait`` reads them), and
    each job received wakes the worker for a batch: copying every ticket at each batch
    was quadratic (cProfile, 500 jobs received and printed: 216,511 copies, 60 % of the
    daemon's CPU). A batch lists the unfinished ones; ``jobs()`` still lists all."""
    entry, store, doc, worker = _worker(tmp_path)
    listed = _count_listings(worker)
    summary = WorkSummary()
    try:
        finished = 40
        for _ in range(finished):
            submit(entry, store, str(doc), JobOptions("alice"))
        assert worker.run_batch(summary)[0]
        assert listed == [finished]
        listed.clear()
        for _ in range(3):  # one job received, one batch: one ticket copied, not 41..43
            submit(entry, store, str(doc), JobOptions("alice"))
            assert worker.run_batch(summary)[0]
        assert listed == [1, 1, 1]
        assert len(store.jobs()) == finished + 3
        assert {j.state for j in store.jobs()} == {JobState.DONE}
        assert (tmp_path / "out").read_bytes() == b"a page\n" * (finished + 3)
    finally:
        worker.close()
        store.close()


def test_a_worker_prunes_at_most_once_a_second(tmp_path: Path) -> None:
    """Each prune sorts every finished ticket kept; after every batch of a burst (and at
    each idle moment of a trickle) that was quadratic too. The worker prunes at most
    every PRUNE_EVERY seconds, and before a pass ends, so ``done_jobs`` holds after it."""
    from lpfilter.spool import worker as worker_module

    now = [1_000_000.0]
    entry, store, doc, worker = _worker(tmp_path, clock=lambda: now[0])
    pruned: list[float] = []
    prune = worker.store.prune

    def counted(keep: int, max_age: float, at: float, keep_recent: float, *,
                recent_max: int | None = None, eager: bool = False) -> None:
        assert not eager  # a pass compacts by the rule that costs it least
        pruned.append(at)
        prune(keep, max_age, at, keep_recent, recent_max=recent_max, eager=eager)

    worker.store.prune = counted  # type: ignore[method-assign]
    summary = WorkSummary()
    try:
        for step in range(10):  # ten batches of one job each, 0.25 s apart
            submit(entry, store, str(doc), JobOptions("alice"))
            assert worker.run_batch(summary)[0]
            now[0] += 0.25 if step < 9 else 0
        start = 1_000_000.0
        every = worker_module.PRUNE_EVERY
        assert every == 1.0 and pruned == [start, start + every, start + 2 * every]
        assert (tmp_path / "out").read_bytes() == b"a page\n" * 10
        pruned.clear()
        worker.serve(burst=True)  # idle 0.25 s after the last prune: owed, done at the end
        assert pruned == [now[0]]
    finally:
        worker.close()
        store.close()


def test_a_daemons_worker_prunes_a_trickle_at_most_once_a_second(tmp_path: Path) -> None:
    """Jobs arriving one at a time (an LPD client, a print per job) leave the daemon's
    worker idle after each, and it pruned at each idle moment: a sort of every finished
    ticket per job. Now the prune owed waits for PRUNE_EVERY since the last one (a
    deadline of the worker's pause), and still comes once the trickle has stopped."""
    import threading
    import time

    from lpfilter.spool import worker as worker_module

    entry, store, doc, worker = _worker(tmp_path)
    pruned: list[float] = []
    prune = worker.store.prune

    def counted(keep: int, max_age: float, at: float, keep_recent: float, *,
                recent_max: int | None = None, eager: bool = False) -> None:
        assert eager  # a daemon compacts sooner: every command reads the journal
        assert recent_max == RECENT_MAX  # and keeps few of the minute's jobs from elsewhere
        pruned.append(time.monotonic())
        prune(keep, max_age, at, keep_recent, recent_max=recent_max, eager=eager)

    worker.store.prune = counted  # type: ignore[method-assign]
    thread = threading.Thread(target=worker.serve, kwargs={"burst": False})
    thread.start()
    try:
        start = time.monotonic()
        for number in range(1, 11):
            submit(entry, store, str(doc), JobOptions("alice"))
            worker.wake()
            for _ in range(1000):  # bounded: 10 s
                if (tmp_path / "out").read_bytes() == b"a page\n" * number:
                    break
                time.sleep(0.01)
            assert (tmp_path / "out").read_bytes() == b"a page\n" * number
        took, last = time.monotonic() - start, time.monotonic()
        assert len(pruned) <= 2 + took / worker_module.PRUNE_EVERY, (len(pruned), took)
        for _ in range(500):  # bounded: 5 s; the owed prune comes at its deadline
            if pruned and pruned[-1] >= last:
                break
            time.sleep(0.01)
        assert pruned and pruned[-1] >= last
    finally:
        worker.stop.set()
        worker.wake()
        thread.join(10)
        store.close()
    assert not thread.is_alive()


def test_a_burst_reads_the_printers_settings_from_the_entry_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend's typed settings are built once from the printcap entry, not per job
    (~30 µs each, and the destination classified again, ~12 µs, of a small job's ~1 ms)."""
    from lpfilter.backends import settings as settings_module

    entry, store, doc, worker = _worker(tmp_path)
    built: list[str] = []
    kind = settings_module.SETTINGS["device"]
    original = kind.from_entry.__func__  # type: ignore[attr-defined]

    def counted(cls, entry, *, framed=True):  # type: ignore[no-untyped-def]
        built.append(entry.name)
        return original(cls, entry, framed=framed)

    monkeypatch.setattr(kind, "from_entry", classmethod(counted))
    try:
        for _ in range(20):
            submit(entry, store, str(doc), JobOptions("alice"))
        assert worker.run_batch(WorkSummary())[0]
        assert built == ["q"]
        assert (tmp_path / "out").read_bytes() == b"a page\n" * 20
    finally:
        worker.close()
        store.close()


def test_a_prune_that_fails_at_the_end_of_a_pass_does_not_fail_the_pass(
        tmp_path: Path) -> None:
    """The prune a pass owes is housekeeping: a full spool there (said by whatever needs
    room next) must not turn a pass that printed every job into an error."""
    import errno

    from lpfilter.errors import SpoolFull

    now = [1_000_000.0]
    entry, store, doc, worker = _worker(tmp_path, clock=lambda: now[0])
    prune = worker.store.prune
    calls: list[float] = []

    def full(keep: int, max_age: float, at: float, keep_recent: float, *,
             recent_max: int | None = None, eager: bool = False) -> None:
        calls.append(at)
        if len(calls) > 1:
            raise SpoolFull(str(tmp_path), errno.ENOSPC, queue="q")
        prune(keep, max_age, at, keep_recent, recent_max=recent_max, eager=eager)

    worker.store.prune = full  # type: ignore[method-assign]
    try:
        for _ in range(3):
            submit(entry, store, str(doc), JobOptions("alice"))
        summary = worker.serve(burst=True)  # prunes after the batch; owes one at the end
        assert summary.pending == 0 and summary.full is None
        assert len(calls) == 2
        assert (tmp_path / "out").read_bytes() == b"a page\n" * 3
    finally:
        store.close()
