"""The LPD server's retry notes as journal records (issue 16, spool/notes.py): a note counts
only once its job's record follows it, a failed commit takes its note back, a digest noted
later replaces the first, the notes are bounded, and a compaction keeps the recent ones.
Real journals and a real loopback receiving server (receivekit); never timed."""
from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from receivekit import Client, Receiver, control_file, receiver, restarted  # noqa: F401

from lpfilter.job import Job
from lpfilter.spool import notes
from lpfilter.spool.jobindex import JobIndex, replay
from lpfilter.spool.journalformat import Kind, decode, encode_all, first_lsn, job_record
from lpfilter.spool.notes import SEEN, VOID, Noted, note_record
from lpfilter.spool.store import SpoolStore

KEY, OTHER = "a" * 40, "b" * 40


def _index(records: list[tuple[int, bytes]]) -> JobIndex:
    whole, _ = encode_all(0, records)
    return replay(whole, "q")


def _job(number: int) -> Job:
    return Job(f"{number:06d}", "q", "user", "f", 3, 1.0)


def test_a_note_counts_only_once_its_jobs_record_follows() -> None:
    """A torn write or a power cut keeps a prefix of the job's write: a note whose job
    never was would make that job's resend (never acknowledged) be dropped as a retry."""
    job = _job(1)
    records = [note_record(KEY, Noted(job.id, 5.0, "d" * 40)), job_record(job)]
    whole, _ = encode_all(0, records)
    cuts = {len(replay(whole[:cut], "q").notes.lookup(KEY)) for cut in range(len(whole))}
    assert cuts == {0}
    assert replay(whole, "q").notes.lookup(KEY) == [Noted(job.id, 5.0, "d" * 40)]


def test_a_later_note_replaces_the_first_and_void_takes_it_back() -> None:
    job, second = _job(1), _job(2)
    index = _index([note_record(KEY, Noted(job.id, 5.0)), job_record(job),
                    note_record(KEY, Noted(second.id, 6.0)), job_record(second),
                    note_record(KEY, Noted(job.id, 5.0, "d" * 40), SEEN)])
    assert index.notes.lookup(KEY) == [Noted(job.id, 5.0, "d" * 40), Noted(second.id, 6.0)]
    index = _index([note_record(KEY, Noted(job.id, 5.0)), job_record(job),
                    note_record(KEY, Noted(job.id, 5.0), VOID)])
    assert index.notes.lookup(KEY) == [] and index.notes.count == 0


def test_the_notes_are_bounded_per_key_and_in_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client repeating one control file for new jobs fills one key (the oldest go);
    past NOTES_MAX the oldest keys go: the index stays a few MiB."""
    jobs = [_job(n) for n in range(1, notes.MAX_NOTED + 3)]
    index = _index([r for job in jobs for r in (note_record(KEY, Noted(job.id, 1.0)),
                                                 job_record(job))])
    assert [n.job_id for n in index.notes.lookup(KEY)] == [j.id for j in jobs[2:]]
    monkeypatch.setattr(notes, "NOTES_MAX", 3)
    keys = [f"{n:040d}" for n in range(5)]
    index = _index([r for n, key in enumerate(keys)
                    for r in (note_record(key, Noted(f"{n + 1:06d}", 1.0), SEEN),)])
    assert [key for key in keys if index.notes.lookup(key)] == keys[2:]
    assert index.notes.count == 3


def test_a_malformed_note_is_skipped() -> None:
    index = _index([(Kind.NOTE, b"../../etc 1 2 3 new"), (Kind.NOTE, b"\xff"),
                    note_record(KEY, Noted("000001", 1.0), SEEN)])
    assert index.notes.lookup(KEY) == [Noted("000001", 1.0)]
    assert index.skipped == 2  # (counted when the notes are read: the first ``notes``)


def test_a_compaction_keeps_the_recent_notes_that_count() -> None:
    """Of a printed and dropped job too (its retry is still known); not a note whose job
    never came, nor one older than KEEP."""
    job = _job(1)
    now = 1e9
    index = _index([note_record(KEY, Noted(job.id, now - 10, "d" * 40)), job_record(job),
                    note_record(OTHER, Noted("000002", now)),  # its job never came
                    note_record("c" * 40, Noted("000003", now - notes.KEEP - 1), SEEN)])
    kept = index.notes.records(now)
    assert kept == [note_record(KEY, Noted(job.id, now - 10, "d" * 40), SEEN)]
    assert _index(kept).notes.lookup(KEY) == [Noted(job.id, now - 10, "d" * 40)]


def _send(server: Receiver, number: int, data: bytes) -> bytes:
    client = Client(server.port)
    assert client.control(f"cfA{number:03d}client", control_file(number)) == b"\0"
    answer = client.data(f"dfA{number:03d}client", data)
    client.close()
    return answer


def test_a_retry_is_known_after_its_job_was_printed_dropped_and_compacted(
        receiver: Receiver) -> None:  # noqa: F811
    assert _send(receiver, 5, b"once") == b"\0"
    (first,) = receiver.outcome().jobs
    receiver.store.remove(first)
    receiver.store.compact()
    assert _send(receiver, 5, b"once") == b"\0"
    assert receiver.outcome().jobs == [] and receiver.jobs() == []
    index = restarted(receiver.store)
    (key,) = index.notes.keys
    assert [n.job_id for n in index.notes.lookup(key)] == [first.id]


def test_a_job_whose_commit_failed_is_queued_when_sent_again(
        receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """The journal's flush fails (EIO): the client is not told "received", and its resend
    is a new job, not the twin of one the journal forgot (that would lose it). The note
    is taken back in the write that forgets the job: both or neither."""
    real: Callable[[int], None] = os.fdatasync
    failed: list[int] = []

    def failing(fd: int) -> None:
        if not failed:
            failed.append(fd)
            raise OSError(errno.EIO, "Input/output error")
        real(fd)

    monkeypatch.setattr(os, "fdatasync", failing)
    assert _send(receiver, 6, b"twice") != b"\0"
    receiver.outcome()
    assert failed and receiver.jobs() == []
    data = Path(receiver.store.journal_path).read_bytes()
    kinds = [(r.kind, r.payload.rsplit(b" ", 1)[-1]) for r in decode(data, first_lsn(data))[0]]
    assert kinds[-2:] == [(Kind.GONE, kinds[-2][1]), (Kind.NOTE, b"void")]  # one write
    assert _send(receiver, 6, b"twice") == b"\0"
    (job,) = receiver.outcome().jobs
    assert receiver.data(job) == b"twice" and not job.possible_duplicate


def test_a_compaction_writes_the_notes_a_line_each_in_few_records() -> None:
    """A busy server keeps thousands of notes, and every command replays the journal: one
    record a note was 40 % of a ``status``'s replay (issue 16). Read back, they are the
    same notes."""
    now = 1e9
    keys = [f"{n:040x}" for n in range(3000)]
    index = _index([note_record(key, Noted(f"{n + 1:06d}", now - n, "d" * 40), SEEN)
                    for n, key in enumerate(keys)])
    kept = index.notes.records(now)
    assert 2 <= len(kept) <= 3000 * 120 // notes.BATCH_BYTES + 1
    assert all(len(payload) <= notes.BATCH_BYTES for _, payload in kept)
    again = _index(kept)
    assert again.notes.count == 3000
    assert all(again.notes.lookup(key) == index.notes.lookup(key) for key in keys)


def test_a_bad_line_of_a_compactions_notes_is_skipped_alone() -> None:
    good = note_record(KEY, Noted("000001", 1.0), SEEN)[1]
    other = note_record(OTHER, Noted("000002", 2.0), SEEN)[1]
    index = _index([(Kind.NOTE, b"\n".join([good, b"../../etc 1 2 3 seen", other,
                                            KEY.encode() + b" 3 " + b"9" * 40 + b" - seen"]))])
    assert index.notes.lookup(KEY) == [Noted("000001", 1.0)]
    assert index.notes.lookup(OTHER) == [Noted("000002", 2.0)]
    assert index.skipped == 1  # one record, skipped in part, logged once


def test_the_notes_stay_unread_until_a_server_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the LPD server looks its notes up: a replay keeps the records as read, and
    reading them later gives what reading them at once gave (a note counts only once its
    job's record follows, whichever comes first in the journal)."""
    parsed: list[bytes] = []
    real = notes.parse
    monkeypatch.setattr(notes, "parse", lambda payload: parsed.append(payload) or real(payload))
    job, lost = _job(1), _job(2)
    records = [note_record(KEY, Noted(job.id, 5.0)), job_record(job),
               note_record(OTHER, Noted(lost.id, 6.0))]  # its job's record never came
    index = _index(records)
    assert parsed == [] and index.jobs == {job.id: job}
    assert index.notes.lookup(KEY) == [Noted(job.id, 5.0)] and index.notes.lookup(OTHER) == []
    assert len(parsed) == 2
    index.apply(decode(encode_all(100, [job_record(lost)])[0], 100)[0][0])
    assert index.notes.lookup(OTHER) == [Noted(lost.id, 6.0)]  # read as they come now


def test_unread_notes_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A journal of many notes (up to its 64 MiB) is not held as records: past
    UNREAD_MAX they are read as they come, a few MiB at most."""
    from lpfilter.spool import jobindex
    monkeypatch.setattr(jobindex, "UNREAD_MAX", 8)
    jobs = [_job(n) for n in range(1, 21)]
    index = _index([r for n, job in enumerate(jobs)
                    for r in (note_record(f"{n:040d}", Noted(job.id, 1.0)), job_record(job))])
    assert len(index.unread) <= 8
    assert [len(index.notes.lookup(f"{n:040d}")) for n in range(20)] == [1] * 20


def test_a_daemon_compacts_a_journal_its_notes_alone_would_keep_big(tmp_path: Path) -> None:
    """6,000 notes (720 KiB) are live bytes, but a compaction writes them a line each: they
    do not take a running daemon's journal out of the eager rule (past twice its live
    bytes), which kept a busy server's journal, and each ``status``, at four times them."""
    store = SpoolStore(str(tmp_path), "q")
    store.ensure("test")
    now = time.time()
    seen = [note_record(f"{n:040x}", Noted(f"{n + 1:06d}", now), SEEN) for n in range(6000)]
    for _ in range(3):  # the same notes again: the journal grows, its live bytes do not
        store.add_notes(seen)
    grown = os.path.getsize(store.journal_path)
    store.prune(0, 0.0, now, 60.0)  # a watch --once pass: four times the live bytes
    assert os.path.getsize(store.journal_path) == grown
    store.prune(0, 0.0, now, 60.0, eager=True)  # a running daemon
    assert os.path.getsize(store.journal_path) < grown // 2
    restarted_store = SpoolStore(str(tmp_path), "q")
    assert len(restarted_store.noted(seen[0][1][:40].decode())) == 1  # the notes kept
    restarted_store.close()
    store.close()
