"""An appender takes the records it wrote as written, not read back (issue 16, item 5):
holding the lock and caught up, nothing else was appended; other processes read them."""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from lpfilter.job import Job
from lpfilter.spool import journal, journalformat
from lpfilter.spool.journal import Record

sys.path.insert(0, str(Path(__file__).resolve().parent))
import journalkit  # noqa: E402


def _job(n: int) -> Job:
    return Job(f"{n:06d}", "q", "user", f"file{n}", 10, 1.0)


def _reads(monkeypatch: pytest.MonkeyPatch, fds: set[int]) -> list[int]:
    """Every pread of one of ``fds`` from now on (the real call runs), and every decode."""
    seen: list[int] = []
    real_pread, real_decode = os.pread, journal.decode

    def pread(fd: int, size: int, offset: int) -> bytes:
        if fd in fds:
            seen.append(offset)
        return real_pread(fd, size, offset)

    def decode(data: bytes, base: int) -> tuple[list[Record], int]:
        seen.append(-1)
        return real_decode(data, base)

    monkeypatch.setattr(os, "pread", pread)
    monkeypatch.setattr(journal, "decode", decode)
    return seen


def test_an_appender_reads_none_of_its_own_records_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journalkit.add_jobs(str(tmp_path), 2)  # a journal with records (another "process")
    writer, index = journalkit.open_queue(str(tmp_path))
    applied: list[Record] = []
    apply = index.apply
    writer.on_record = lambda record: (applied.append(record), apply(record))[1]
    seen = _reads(monkeypatch, {writer.fd})
    ends = []
    for n in range(3, 53):  # 50 appends as the worker makes them: each under the lock
        with writer.locked():
            job = _job(n)
            ends.append(writer.append([journalformat.job_record(job)]))
            job.attempts = 1
            ends.append(writer.append([journalformat.start_record(job, 1),
                                       journalformat.first_record(job)]))
    monkeypatch.undo()
    assert seen == []  # no pread of the journal, no decode: 0 reads of its own records
    assert len(applied) == 150 and applied[-1].end == writer.end == ends[-1]
    data = (tmp_path / "journal").read_bytes()
    records, end = journal.decode(data, journal.first_lsn(data))
    assert records[-150:] == applied and end == writer.end  # as a reader reads them
    reader, other = journalkit.open_queue(str(tmp_path))
    assert {i: j.to_json() for i, j in other.jobs.items()} == {
        i: j.to_json() for i, j in index.jobs.items()}
    assert len(index.jobs) == 52 and index.jobs["000052"].attempts == 1
    for opened in (reader, writer):
        opened.close()


def test_records_another_process_appended_are_still_read(tmp_path: Path) -> None:
    """Only what this appender wrote is taken as written: another's records (appended
    between its holds of the lock) are read, in order, before its own."""
    first, index = journalkit.open_queue(str(tmp_path))
    with first.locked():
        first.append([journalformat.job_record(_job(1))])
    second, _ = journalkit.open_queue(str(tmp_path))
    with second.locked():
        second.append([journalformat.job_record(_job(2))])
    second.close()
    with first.locked():
        first.append([journalformat.gone_record(["000001"])])
    assert sorted(index.jobs) == ["000002"]
    first.close()


def _fstats(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every fstat this thread makes from now on (the real call runs)."""
    seen: list[int] = []
    real, me = os.fstat, threading.get_ident()

    def fstat(fd: int) -> os.stat_result:
        if threading.get_ident() == me:
            seen.append(fd)
        return real(fd)

    monkeypatch.setattr(os, "fstat", fstat)
    return seen


def test_a_hold_on_an_open_journal_catches_up_once_under_the_lock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store whose journal is open takes the lock without a catch-up before it (the
    hold catches up: one fstat, not two), and still sees what another process appended
    meanwhile, inside the hold, and appends after it."""
    from lpfilter.spool.store import SpoolStore
    sd = tmp_path / "sd"
    sd.mkdir(mode=0o700)
    mine, other = SpoolStore(str(sd), "q"), SpoolStore(str(sd), "q")
    mine.ensure("print")
    mine.write(_job(1), durable=False)
    other.write(_job(2), durable=False)  # another process's record, not read by mine yet
    seen = _fstats(monkeypatch)
    with mine.tickets_locked():
        assert mine.read("000002") is not None  # caught up inside the hold
    monkeypatch.undo()
    assert len(seen) == 1, seen
    seen = _fstats(monkeypatch)
    other.write(_job(3), durable=False)  # (other catches up once too, under its lock)
    mine.write(_job(4), durable=False)
    monkeypatch.undo()
    assert len(seen) == 4, seen  # each: the catch-up under the lock, the append's own look
    assert [j.id for j in SpoolStore(str(sd), "q").jobs()] == [
        "000001", "000002", "000003", "000004"]
    mine.close()
    other.close()


@pytest.mark.parametrize("way", ["hold", "append"])
def test_a_spool_removed_under_an_open_journal_is_one_line_at_its_next_hold(
        tmp_path: Path, way: str) -> None:
    """The spool's state folder removed while a store has its journal open: its next hold
    (``tickets_locked``) or append meets it taking the lock, and says the one line about
    the removed spool (the store's ``explain``), not a FileNotFoundError."""
    import shutil

    from lpfilter.errors import AccessError
    from lpfilter.spool.store import SpoolStore
    sd = tmp_path / "sd"
    sd.mkdir(mode=0o700)
    store = SpoolStore(str(sd), "q")
    store.ensure("print")
    store.write(_job(1), durable=False)
    shutil.rmtree(sd / ".lpfilter")
    with pytest.raises(AccessError, match="was removed while the queue was served"):
        if way == "hold":
            with store.tickets_locked():
                pass
        else:
            store.write(_job(2), durable=False)
    store.close()
