"""The journal's limits and failure paths (issue 16's review, helper JFIX): a journal
lpfilter writes never grows past what readers accept; a commit whose sync fails leaves no
job without data; forged numbers and planted files are one-line refusals, never exit 70.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from spoolkit import Kit, journal_path, kit, write_files  # noqa: F401

from lpfilter.errors import SpoolFull
from lpfilter.job import Job
from lpfilter.spool import journallimit
from lpfilter.spool.journalformat import JOURNAL_MAX
from lpfilter.spool.journallimit import JournalFull
from lpfilter.spool.store import SpoolStore


def _store(tmp_path: Path, queue: str = "q") -> tuple[SpoolStore, Path]:
    sd = tmp_path / "sd"
    sd.mkdir(mode=0o700)
    store = SpoolStore(str(sd), queue)
    store.ensure()
    return store, sd


def test_big_live_journal_is_compacted_before_it_passes_journal_max(tmp_path: Path) -> None:
    """~20 MiB of live jobs rewritten three times (a worker's retries): prune and the
    append path compact in time; the journal never passes JOURNAL_MAX and stays readable."""
    store, sd = _store(tmp_path)
    title = "t" * 200_000
    jobs = [Job(f"{n:06d}", "q", "u", "f", 1, time.time(), title=title) for n in range(1, 101)]
    store.write_all(jobs, durable=False)
    biggest = 0
    for round_ in range(3):
        for job in jobs:
            job.attempts = round_ + 1
            store.write(job, durable=False)
            biggest = max(biggest, journal_path(sd).stat().st_size)
        store.prune(keep=100, max_age=0, now=time.time(), keep_recent=0)
    assert biggest <= JOURNAL_MAX * 3 // 4
    fresh = SpoolStore(str(sd), "q")
    assert [j.attempts for j in fresh.jobs()] == [3] * 100
    store.close()
    fresh.close()


def test_append_past_the_limit_is_refused_before_writing(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Live jobs filling the journal (limit lowered to 4 MiB): the job that would pass 3/4
    of it, even compacted, is refused in one line naming the journal (SpoolFull: exit 10),
    nothing of it written; removing jobs still works and makes room."""
    monkeypatch.setattr(journallimit, "LIMIT", 4 << 20)
    store, sd = _store(tmp_path)
    title = "t" * 100_000
    written: list[Job] = []
    refused = None
    for n in range(1, 61):
        job = Job(f"{n:06d}", "q", "u", "f", 1, time.time(), title=title)
        try:
            store.write(job, durable=False)
        except SpoolFull as exc:
            refused = (job, exc)
            break
        written.append(job)
    assert refused is not None
    job, exc = refused
    assert isinstance(exc, JournalFull) and str(journal_path(sd)) in str(exc)
    assert "\n" not in str(exc)
    size = journal_path(sd).stat().st_size
    assert size <= (4 << 20) * 3 // 4
    fresh = SpoolStore(str(sd), "q")
    assert [j.id for j in fresh.jobs()] == [j.id for j in written]
    store.remove(written[0])
    for gone in written[1:4]:
        store.remove(gone)
    store.write(job, durable=False)
    assert job.id in [j.id for j in SpoolStore(str(sd), "q").jobs()]
    assert journal_path(sd).stat().st_size <= 4 << 20
    store.close()
    fresh.close()

