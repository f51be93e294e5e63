"""An appender takes the records it wrote as written, not read back (issue 16, item 5):
holding the lock and caught up, nothing else was appended; other processes read them."""
from __future__ import annotations

import os
import sys
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
