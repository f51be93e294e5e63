"""A broken queue's state folder is its owner's (issue 16, review 2): renames there must
not make root's daemon re-read the damaged journal at each event. Events are coalesced
(one try per loop iteration), a queue is tried at most once a FIRST_WAIT (doubling while
it fails), and never again on the very files its last try failed on; a move aside of the
journal is still served at once. Counts, never times."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from spoolkit import Kit, journal_path, kit, wait_until  # noqa: F401 - the fixture
from test_journal_refusals import damage

from lpfilter import printcap
from lpfilter.spool import inotify
from lpfilter.spool.retrywatch import FIRST_WAIT, RetryWatches, stamp
from lpfilter.spool.watcher import Watcher
from lpfilter.spool.worker import RESCAN

RENAMES = 100


def _flood(state: Path) -> None:
    """What a spool owner can do in a few milliseconds: 200 renames of a name the retry
    watch listens for."""
    (state / "journal.next").write_bytes(b"")
    for _ in range(RENAMES):
        os.rename(state / "journal.next", state / "x")
        os.rename(state / "x", state / "journal.next")


def _events(notify: inotify.Inotify, count: int) -> list[inotify.Event]:
    """At least ``count`` events (bounded: 200 reads, 10 s)."""
    events: list[inotify.Event] = []
    for _ in range(200):
        events += notify.read()
        if len(events) >= count:
            return events
        time.sleep(0.05)
    raise AssertionError(f"{len(events)} events, not {count}")


def test_a_broken_queues_events_are_coalesced_spaced_and_skipped_on_the_same_files(
        kit: Kit) -> None:
    sd = kit.queue("q", "/dev/null", accounting=False)
    assert kit.run("print", "--no-wait", "-P", "q", str(kit.printcap)).returncode == 0
    state = sd / ".lpfilter"
    notify = inotify.Inotify.open()
    assert notify is not None
    try:
        retry = RetryWatches(notify)
        retry.watch("q", str(sd))
        retry.failed("q", str(sd), stamp(str(sd)), 100.0)
        os.utime(journal_path(sd), ns=(1, 1))  # the journal changed: worth a try, when due
        _flood(state)
        for event in _events(notify, 2 * RENAMES):
            retry.due(event)
        assert retry.ready(100.0 + FIRST_WAIT / 2, {"q"}) == []  # not yet: stays pending
        assert retry.timeout(100.0 + FIRST_WAIT / 2) == FIRST_WAIT / 2
        assert retry.ready(100.0 + FIRST_WAIT, {"q"}) == ["q"]  # 200 events: one try
        assert retry.ready(100.0 + FIRST_WAIT, {"q"}) == []
        assert retry.timeout(100.0 + FIRST_WAIT) == RESCAN  # nothing pending
        retry.failed("q", str(sd), stamp(str(sd)), 200.0)  # failed again: twice the wait
        _flood(state)
        for event in _events(notify, 2 * RENAMES):
            retry.due(event)
        assert retry.ready(200.0 + FIRST_WAIT, {"q"}) == []
        assert retry.ready(200.0 + 2 * FIRST_WAIT, {"q"}) == []  # the same files: skipped
        retry.failed("q", str(sd), stamp(str(sd)), 230.0)  # a rescan, the same files
        assert retry.failures["q"][3] == 2 * FIRST_WAIT  # the wait does not grow
        _flood(state)
        for event in _events(notify, 2 * RENAMES):
            retry.due(event)
        os.rename(journal_path(sd), state / "journal.bad")  # the administrator's move aside
        for event in _events(notify, 1):
            retry.due(event)
        assert retry.ready(230.0 + 2 * FIRST_WAIT, {"q"}) == ["q"]
        retry.drop("q", ())  # served: the next failure waits FIRST_WAIT again
        retry.failed("q", str(sd), stamp(str(sd)), 400.0)
        assert retry.failures["q"][3] == FIRST_WAIT
    finally:
        notify.close()


def test_renames_in_a_broken_queues_state_folder_cost_the_daemon_a_handful_of_tries(
        kit: Kit, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Review 2's flood against a running watcher (in this process): 200 renames, then the
    administrator's move aside. The daemon tries the queue a few times (each try reads the
    whole damaged journal), not once an event, and serves it once the journal is aside."""
    sd = kit.queue("q", "/dev/null", accounting=False)
    assert kit.run("print", "--no-wait", "-P", "q", str(kit.printcap)).returncode == 0
    damage(sd)
    entry = printcap.load([str(kit.printcap)]).lookup("q")
    tries: list[str] = []
    start = Watcher._start

    def counted(self: Watcher, entry: printcap.Entry) -> None:
        tries.append(entry.name)
        start(self, entry)

    monkeypatch.setattr(Watcher, "_start", counted)
    watcher = Watcher(lambda: [entry], lock_dir=str(tmp_path / "locks"), once=False)
    served: list[bool] = []

    def owner() -> None:
        try:
            wait_until(lambda: "q" in watcher.broken and "q" in watcher._retry.queues.values(),
                       what="the daemon to give the queue up and watch its state folder")
            _flood(sd / ".lpfilter")
            os.rename(journal_path(sd), sd / ".lpfilter" / "journal.bad")
            served.append(bool(wait_until(lambda: "q" in watcher.served, timeout=15,
                                          what="the queue served again")))
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # the watcher's handler: it stops

    thread = threading.Thread(target=owner)
    thread.start()
    try:
        outcome = watcher.run()
    finally:
        thread.join(30)
    assert served == [True]
    assert not outcome.broken
    assert 2 <= len(tries) <= 4, f"{len(tries)} tries for {2 * RENAMES} renames"
