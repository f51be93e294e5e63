"""A worker that sends jobs the way the journal design says (bench/JOURNAL-DESIGN.md §2.4),
for the crash tests of the design's phase 2 (the store does not batch yet): one durable
MARK per batch, then START, FIRST, the bytes and END for each job, none of them synced;
at start the replay is settled (jobindex).

The "printer" is a file opened with O_APPEND: each try writes ``ID BEGIN`` and then
``ID PAYLOAD END``, two writes, so a kill between them leaves a job half printed.

Run as a script: ``python tests/journalkit.py FOLDER PRINTER_FILE [PAUSE [COMPACT_EVERY]]``
(exit 0 when no job is left queued).
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lpfilter.job import Job, JobState  # noqa: E402
from lpfilter.spool import jobindex, journalformat, marks  # noqa: E402
from lpfilter.spool.journal import Journal, boot_id  # noqa: E402

QUEUE = "q"
BATCH = 64


def open_queue(folder: str) -> tuple[Journal, jobindex.JobIndex]:
    index = jobindex.JobIndex(QUEUE)
    return Journal(folder, os.getuid(), index.apply, index.reset), index


def add_jobs(folder: str, count: int) -> None:
    """``count`` queued jobs, committed (as print would before saying their ids)."""
    journal, index = open_queue(folder)
    try:
        with journal.locked():
            first = index.last_id + 1
            end = journal.append([journalformat.job_record(Job(
                f"{n:06d}", QUEUE, "user", f"file{n}", 10, time.time()))
                for n in range(first, first + count)])
        journal.sync_to(end)
    finally:
        journal.close()


def settle(journal: Journal, index: jobindex.JobIndex, boot: str) -> None:
    """What a crash left: written back, durably, before anything is sent."""
    with journal.locked():
        changed = marks.settle(index, boot)
        end = journal.append([journalformat.job_record(job) for job in changed]) if changed \
            else journal.end
    journal.sync_to(end)


def serve(journal: Journal, index: jobindex.JobIndex, send: Callable[[Job], None],
          boot: str, compact_every: int = 0) -> None:
    """Send every queued job, a batch at a time; the last outcomes synced at the end.
    ``compact_every``: compact the journal (keeping every job) before every so many
    batches, so that kills land in compactions too."""
    batches = 0
    while True:
        with journal.locked():
            batch = sorted(index.queued(), key=lambda j: int(j.id))[:BATCH]
            if not batch:
                break
            batches += 1
            if compact_every and batches % compact_every == 0:
                journal.compact(*reversed(index.compacted(keep=1 << 20)))
            end = journal.append([journalformat.mark_record([j.id for j in batch], boot)])
        journal.sync_to(end)  # "maybe sent": durable before any byte of the batch
        for job in batch:
            send_one(journal, index, job.id, send)
    journal.sync_to(journal.end)


def send_one(journal: Journal, index: jobindex.JobIndex, job_id: str,
             send: Callable[[Job], None]) -> None:
    with journal.locked():
        job = index.jobs[job_id]
        job.attempts += 1
        job.started = time.time()
        journal.append([journalformat.start_record(job, os.getpid())])
        journal.append([journalformat.first_record(job)])  # connected: bytes leave next
    send(job)
    with journal.locked():
        job = index.jobs[job_id].copy()
        job.move_to(JobState.DONE)
        job.finished, job.bytes_sent = time.time(), job.size
        journal.append([journalformat.end_record(job)])


def printer(path: str, pause: float = 0.0) -> Callable[[Job], None]:
    """A printer that takes ``pause`` seconds between a job's first and last bytes."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def send(job: Job) -> None:
        os.write(fd, f"{job.id} BEGIN\n".encode())
        if pause:
            time.sleep(pause)
        os.write(fd, f"{job.id} {job.name} END\n".encode())
    return send


def main(argv: list[str]) -> int:
    folder, out, pause, compact_every = (*argv, "0", "0")[:4]
    journal, index = open_queue(folder)
    boot = boot_id()
    settle(journal, index, boot)
    serve(journal, index, printer(out, float(pause)), boot, int(compact_every))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
