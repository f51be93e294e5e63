#!/usr/bin/env python3
"""SpoolStore's calls against the journal design's batches: the file work of 1000
hot-folder jobs, taken in and sent, through lpfilter's own code (issue 16,
bench/JOURNAL-DESIGN.md). ``today`` is whatever store the package imported has: ticket
files before phase 1 (a snapshot on PYTHONPATH), the journal with one record per change
since; ``journal`` is the design's phase 2 (MARK batches) written directly.

Two variants, each in a fresh process, interleaved round by round, on the disk (``--disk``,
default /tmp) and on tmpfs (``--tmpfs``, default /dev/shm):

* ``today``: the calls ``watch --once`` makes per job, in its order, through
  ``SpoolStore``: ``next_id``, the rename into ``jobs/``, the check on the descriptor, the
  ticket (durable); then per job: the ticket read under the lock and written ``active``
  (not synced), the "maybe sent" ticket (durable), the bytes (sendfile to /dev/null), the
  outcome ticket (durable), ``clear_cancel``, the data file dropped, the status file
  (``atomic_write``, not synced).
* ``journal``: the design's calls through ``spool/journal.py``: per batch of 64 files the
  renames and checks, one ``fsync`` of ``jobs/``, their JOB records in one write, one
  fdatasync; then per batch of 64 jobs one durable MARK, per job START, FIRST, the bytes,
  END (not synced), the data files dropped after the next commit, the status file once
  per batch.

Not measured: start-up, the scan of the hot folder, the backend's own work, filters, the
queue's log. It shows the part of a job the journal changes. ``--strace`` also counts the
system calls of one run of each variant (strace must be installed).

A benchmark, not a test: it prints Markdown, exits 0 (2 when it could not run).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lpfilter.job import Job, JobState  # noqa: E402
from lpfilter.safefiles import atomic_write, copy_fd, fsync_dir, open_regular  # noqa: E402
from lpfilter.spool import jobindex, journalformat  # noqa: E402
from lpfilter.spool.journal import Journal, Kind, boot_id  # noqa: E402
from lpfilter.spool.store import SpoolStore  # noqa: E402

BATCH = 64


def _drop(sd: str, count: int) -> list[str]:
    """``count`` 1 KiB files renamed into the hot folder, as a writer would."""
    names = []
    for n in range(count):
        name = f"file{n:05d}"
        tmp = os.path.join(sd, f".{name}.part")
        with open(tmp, "wb") as handle:
            handle.write((f"@@{n}@@".encode() + b"x" * 1024)[:1024])
        os.rename(tmp, os.path.join(sd, name))
        names.append(name)
    return names


def _send(devnull: int, data_fd: int, size: int) -> None:
    os.sendfile(devnull, data_fd, 0, size)


def today(store: SpoolStore, names: list[str], devnull: int, status: str) -> None:
    for name in names:
        job_id = store.next_id()
        path = store.data_path(job_id)
        os.rename(os.path.join(store.sd, name), path)
        fd, info = open_regular(path)
        os.close(fd)
        store.write(Job(job_id, "q", "user", name, info.st_size, time.time(),
                        source="hotfolder"))
    for listed in store.jobs():
        with store.tickets_locked():
            job = store.read(listed.id)
            assert job is not None and job.state == JobState.QUEUED
            data_fd = store.open_data(job.id)
            assert isinstance(data_fd, int)
            job.attempts += 1
            job.move_to(JobState.ACTIVE)
            job.started = time.time()
            store.write(job, durable=False)
        with store.tickets_locked():
            job.send_started = True
            store.write(job)
        _send(devnull, data_fd, job.size)
        os.close(data_fd)
        job.move_to(JobState.DONE)
        job.finished = time.time()
        with store.tickets_locked():
            store.write(job)
            store.clear_cancel(job.id)
        store.drop_data(job)
        atomic_write(status, f"job {job.id} done\n".encode(), 0o644, durable=False)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def journal(store: SpoolStore, names: list[str], devnull: int, status: str) -> None:
    index = jobindex.JobIndex("q")
    j = Journal(store.state, store.owner, index.apply)
    boot = boot_id()
    for batch in _chunks(names, BATCH):
        records = []
        with j.locked():
            number = index.last_id
            for name in batch:
                number += 1
                path = store.data_path(f"{number:06d}")
                os.rename(os.path.join(store.sd, name), path)
                fd, info = open_regular(path)
                os.close(fd)
                records.append(journalformat.job_record(Job(
                    f"{number:06d}", "q", "user", name, info.st_size, time.time(),
                    source="hotfolder")))
            fsync_dir(store.jobs_dir)  # the renames before the records that name them
            end = j.append(records)
        j.sync_to(end)
    _serve(j, index, store, devnull, status, boot)
    j.close()


def _serve(j: Journal, index: jobindex.JobIndex, store: SpoolStore, devnull: int,
           status: str, boot: str) -> None:
    drop: list[str] = []
    while True:
        with j.locked():
            batch = sorted(index.queued(), key=lambda job: int(job.id))[:BATCH]
            if not batch:
                break
            end = j.append([journalformat.mark_record([job.id for job in batch], boot)])
        j.sync_to(end)  # the marks, and every END before them
        for path in drop:
            os.unlink(path)
        drop = []
        for queued in batch:
            data_fd = store.open_data(queued.id)
            assert isinstance(data_fd, int)
            with j.locked():
                job = index.jobs[queued.id]
                job.attempts += 1
                job.started = time.time()
                j.append([journalformat.start_record(job, os.getpid())])
                j.append([journalformat.first_record(job)])
            _send(devnull, data_fd, job.size)
            os.close(data_fd)
            with j.locked():
                done = index.jobs[queued.id].copy()
                done.move_to(JobState.DONE)
                done.finished, done.bytes_sent = time.time(), done.size
                j.append([journalformat.end_record(done)])
            drop.append(store.data_path(queued.id))
        atomic_write(status, f"job {batch[-1].id} done\n".encode(), 0o644, durable=False)
    j.sync_to(j.end)
    for path in drop:
        os.unlink(path)


def print_today(store: SpoolStore, sources: list[str]) -> None:
    """``spool/submit.py``'s store calls for each file, as ``print FILE...`` makes them."""
    for path in sources:
        src = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        job_id = store.next_id()
        fd, staged = store.stage(job_id)
        size = copy_fd(src, fd)
        os.fsync(fd)
        os.close(src)
        store.commit(Job(job_id, "q", "user", os.path.basename(path), size, time.time()),
                     staged)
        os.close(fd)


def print_journal(store: SpoolStore, sources: list[str]) -> None:
    """The design's ``print FILE...``: each file staged and synced (a separate file: one
    flush each), then per batch the renames, one fsync of ``jobs/``, the JOB records in
    one write and one fdatasync, shared with other processes' at the same moment."""
    index = jobindex.JobIndex("q")
    j = Journal(store.state, store.owner, index.apply)
    for batch in _chunks(sources, BATCH):
        staged = []
        for path in batch:
            src = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            fd, tmp = store.stage(f"s{os.getpid()}-{os.urandom(4).hex()}")
            size = copy_fd(src, fd)
            os.fdatasync(fd)
            os.close(src)
            staged.append((fd, tmp, size, os.path.basename(path)))
        records = []
        with j.locked():
            number = index.last_id
            for fd, tmp, size, name in staged:
                number += 1
                os.rename(tmp, store.data_path(f"{number:06d}"))
                os.close(fd)
                records.append(journalformat.job_record(Job(f"{number:06d}", "q", "user", name,
                                                       size, time.time())))
            fsync_dir(store.jobs_dir)
            end = j.append(records)
        j.sync_to(end)
    j.close()


def print_inline(store: SpoolStore, sources: list[str]) -> None:
    """Phase 2 (design §2.9): a small file's bytes go into the journal with its JOB
    record, so one fdatasync per batch covers data and job alike; no file per job."""
    index = jobindex.JobIndex("q")
    j = Journal(store.state, store.owner, index.apply)
    for batch in _chunks(sources, BATCH):
        loaded = []
        for path in batch:
            with open(path, "rb") as handle:
                loaded.append((os.path.basename(path), handle.read()))
        with j.locked():
            number = index.last_id
            records: list[tuple[int, bytes]] = []
            for name, data in loaded:
                number += 1
                job = Job(f"{number:06d}", "q", "user", name, len(data), time.time())
                records += [(Kind.DATA, job.id.encode() + b"\0" + data),
                            journalformat.job_record(job)]
            end = j.append(records)
        j.sync_to(end)
    j.close()


PRINTS = {"today": print_today, "journal": print_journal, "inline": print_inline}


def print_run(variant: str, base: str, count: int, processes: int) -> float:
    """``processes`` processes printing ``count`` files between them into one queue:
    jobs/s from starting them to the last one's exit (their start-up included)."""
    root = tempfile.mkdtemp(prefix="lpfilter-journal-proto-", dir=base)
    try:
        sd = os.path.join(root, "sd")
        os.mkdir(sd, 0o700)
        SpoolStore(sd, "q").ensure("watch")
        src = os.path.join(root, "src")
        os.mkdir(src)
        sources = [os.path.join(src, name) for name in _drop(src, count)]
        parts = [sources[n::processes] for n in range(processes)]
        start = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, __file__, "--print-child", variant, sd,
                                   *part]) for part in parts]
        if any(proc.wait() != 0 for proc in procs):
            raise OSError(f"{variant}: a printing process failed")
        took = time.perf_counter() - start
        jobs = [n for n in os.listdir(os.path.join(sd, ".lpfilter", "jobs"))
                if n.endswith(".data")]
        if variant != "inline" and len(jobs) != count:
            raise OSError(f"{variant}: {len(jobs)} data files, not {count}")
        return count / took
    finally:
        shutil.rmtree(root, ignore_errors=True)


def child(variant: str, base: str, count: int) -> float:
    """One run in this process: set up, then time the variant (jobs/s)."""
    root = tempfile.mkdtemp(prefix="lpfilter-journal-proto-", dir=base)
    try:
        sd = os.path.join(root, "sd")
        os.mkdir(sd, 0o700)
        store = SpoolStore(sd, "q")
        store.ensure("watch")
        names = _drop(sd, count)
        devnull = os.open(os.devnull, os.O_WRONLY)
        status = os.path.join(sd, "status")
        start = time.perf_counter()
        (today if variant == "today" else journal)(store, names, devnull, status)
        took = time.perf_counter() - start
        left = os.listdir(store.jobs_dir)
        if any(name.endswith(".data") for name in left):
            raise SystemExit(f"{variant}: data files left: {len(left)}")
        return count / took
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(variant: str, base: str, count: int, strace: str | None = None) -> float:
    argv = [sys.executable, __file__, "--child", variant, "--disk", base,
            "--jobs", str(count)]
    if strace:
        argv = ["strace", "-f", "-c", "-o", strace, *argv]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return float(json.loads(done.stdout.splitlines()[-1]))


def _counts(path: str, count: int) -> dict[str, float]:
    wanted = ("fsync", "fdatasync", "openat", "rename", "unlink", "flock", "write", "pread64")
    found = {}
    for line in Path(path).read_text().splitlines():
        words = line.split()
        if words and words[-1] in wanted:
            found[words[-1]] = int(words[3]) / count
    return found


def _print_table(args: argparse.Namespace) -> None:
    rates: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.runs):
        for processes in (1, 4):
            for variant in PRINTS:
                rates.setdefault((variant, processes), []).append(
                    print_run(variant, args.disk, args.jobs, processes))
    print(f"\n| {args.jobs} files printed into one queue on {args.disk} (jobs/s, median of"
          f" {args.runs}, min–max; process start-up included) | 1 process | 4 processes |"
          "\n| --- | --- | --- |")
    for variant in PRINTS:
        cells = [rates[(variant, p)] for p in (1, 4)]
        print(f"| {variant} | " + " | ".join(
            f"{statistics.median(c):,.0f} ({min(c):,.0f}–{max(c):,.0f})" for c in cells)
            + " |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=("today", "journal"))
    parser.add_argument("--disk", default="/tmp")
    parser.add_argument("--tmpfs", default="/dev/shm")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--strace", action="store_true")
    parser.add_argument("--print", action="store_true",
                        help="also the print path: 1 and 4 processes; today, journal, and"
                        " journal with small files' bytes inside it (inline)")
    parser.add_argument("--print-child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.print_child:
        variant, sd, *sources = args.print_child
        PRINTS[variant](SpoolStore(sd, "q"), sources)
        return 0
    if args.child:
        print(json.dumps(child(args.child, args.disk, args.jobs)))
        return 0
    try:
        rates: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.runs):
            for where in (args.disk, args.tmpfs):
                for variant in ("today", "journal"):
                    rates.setdefault((variant, where), []).append(
                        _run(variant, where, args.jobs))
        print(f"| {args.jobs} hot-folder jobs, taken in and sent (jobs/s, median of"
              f" {args.runs}, min–max) | {args.disk} | {args.tmpfs} |\n| --- | --- | --- |")
        for variant in ("today", "journal"):
            cells = [rates[(variant, where)] for where in (args.disk, args.tmpfs)]
            print(f"| {variant} | " + " | ".join(
                f"{statistics.median(c):,.0f} ({min(c):,.0f}–{max(c):,.0f})" for c in cells)
                + " |")
        if args.print:
            _print_table(args)
        if args.strace:
            print("\n| system calls per job (strace -f -c, one run on "
                  f"{args.disk}) | today | journal |\n| --- | ---: | ---: |")
            counts = {}
            with tempfile.TemporaryDirectory() as tmp:
                for variant in ("today", "journal"):
                    out = os.path.join(tmp, variant)
                    _run(variant, args.disk, args.jobs, strace=out)
                    counts[variant] = _counts(out, args.jobs)
            for name in sorted(set(counts["today"]) | set(counts["journal"])):
                print(f"| {name} | {counts['today'].get(name, 0):.2f} |"
                      f" {counts['journal'].get(name, 0):.2f} |")
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"journal_proto: {exc}", file=sys.stderr)
        return 2
    print(f"\nload average: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
