"""A daemon whose passes a full spool keeps aborting (its backlog's outcome cannot be
written: SpoolFull before the pass's idle sync) still syncs the journal, so the data
files of finished jobs that waited for a sync leave the full disk (issue 16, review 2)."""
from __future__ import annotations

import errno
import os
import threading

import pytest
from spoolkit import wait_until
from test_journal_marks import Spool, _journal_fd, spool  # noqa: F401 - the fixture

from lpfilter.spool.jobdata import INLINE_MAX


def test_a_daemon_on_a_full_spool_still_removes_finished_jobs_data(
        spool: Spool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Job 1 printed, its outcome appended (not yet synced): its data file waits for a
    sync; job 2's outcome meets ENOSPC (every time): the daemon waits for room, and job
    1's data file is gone (job 2's stays: its outcome is not written)."""
    spool.setup("/dev/null")
    spool.spool(2, size=INLINE_MAX + 1)  # jobs with data files (not in the journal)
    real = os.write

    def full(fd: int, data: bytes) -> int:
        if _journal_fd(fd) and b'"id": "000002"' in bytes(data) and (
                b'"state": "done"' in bytes(data)):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(os, "write", full)
    worker = spool.worker()
    thread = threading.Thread(target=worker.serve, kwargs={"burst": False})
    thread.start()
    try:
        wait_until(lambda: worker.backlog.said is not None, what="job 2's outcome refused")
        assert spool.data_files() == ["000002.data"]
    finally:
        worker.stop.set()
        worker.wake()
        thread.join(30)
    assert not thread.is_alive()
    monkeypatch.undo()
    jobs = spool.jobs()
    assert jobs["000001"].state.value == "done", jobs
