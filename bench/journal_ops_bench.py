#!/usr/bin/env python3
"""What one durable spool step costs on a file system: the unit prices behind
bench/JOURNAL-DESIGN.md (issue 16).

Each operation is run COUNT times in a fresh directory under ``--dir`` (default /tmp, the
machine's disk), interleaved round by round with the others so a burst of load elsewhere
hits all alike; the figure is the median over the rounds of the mean per operation, in
microseconds. Nothing here is lpfilter's code: these are the system calls lpfilter's
steps are made of (today's ticket write is ``atomic_write``'s sequence, copied).

    python bench/journal_ops_bench.py                 # /tmp, 5 rounds of 200
    python bench/journal_ops_bench.py --dir /dev/shm  # tmpfs, for the contrast

A benchmark, not a test: it prints a Markdown table and exits 0 (2 if it could not run).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence

RECORD = b"x" * 255 + b"\n"  # about a journal record (a job's ticket fields, packed)
DATA = b"y" * 1024


def _create(d: str, i: int, sync: bool) -> None:
    name = os.path.join(d, f"{'s' if sync else 'c'}{i}")
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, DATA)
    if sync:
        os.fdatasync(fd)
    os.close(fd)


def _ticket(d: str, i: int, durable: bool) -> None:
    """Today's atomic_write: a new temporary, written, fdatasync, renamed, dir fsync."""
    tmp = os.path.join(d, f".tmp-{i}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, RECORD * 2)
    if durable:
        os.fdatasync(fd)
    os.close(fd)
    os.replace(tmp, os.path.join(d, "000001.job"))
    if durable:
        dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dfd)
        os.close(dfd)


class Journal:
    """An append-only file: records appended, one fdatasync per ``group`` records."""

    def __init__(self, d: str, flags: int = 0) -> None:
        self.fd = os.open(os.path.join(d, f"journal-{flags}"),
                          os.O_WRONLY | os.O_CREAT | os.O_APPEND | flags, 0o600)

    def append(self, group: int) -> None:
        os.write(self.fd, RECORD * group)  # a batch's records in one write
        os.fdatasync(self.fd)


def operations(d: str, count: int) -> dict[str, tuple[Callable[[int], None], int]]:
    """name -> (operation given its index, records/jobs it stands for)."""
    journals = {g: Journal(d) for g in (1, 16, 64)}
    dsync = Journal(d, os.O_DSYNC)
    seq = os.open(os.path.join(d, "seq"), os.O_RDWR | os.O_CREAT, 0o600)
    os.pwrite(seq, b"000000", 0)
    os.fsync(seq)
    ren = os.path.join(d, "r")
    open(ren + "0", "wb").close()
    dirfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)

    def seq_sync(i: int) -> None:
        os.pwrite(seq, b"%06d" % i, 0)
        os.fsync(seq)

    def rename(i: int) -> None:
        os.rename(f"{ren}{i % 2}", f"{ren}{(i + 1) % 2}")

    def dir_fsync(i: int) -> None:
        open(os.path.join(d, f"e{i}"), "wb").close()
        os.fsync(dirfd)

    def dsync_write(i: int) -> None:
        os.write(dsync.fd, RECORD)

    def batch_files(i: int) -> None:
        fds = []
        for j in range(64):
            fds.append(os.open(os.path.join(d, f"b{i}-{j}"), os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                               0o600))
            os.write(fds[-1], DATA)
        for fd in fds:
            os.fdatasync(fd)
            os.close(fd)
        os.fsync(dirfd)

    def unlink(i: int) -> None:
        os.unlink(os.path.join(d, f"c{i}"))

    zeroed = os.open(os.path.join(d, "zeroed"), os.O_RDWR | os.O_CREAT, 0o600)
    os.write(zeroed, bytes(len(RECORD) * count))
    os.fsync(zeroed)

    def overwrite(i: int) -> None:
        os.pwrite(zeroed, RECORD, i * len(RECORD))
        os.fdatasync(zeroed)

    def sync_fs(i: int) -> None:
        os.write(journals[1].fd, RECORD)
        os.syncfs(dirfd) if hasattr(os, "syncfs") else os.sync()

    return {
        "file create + 1 KiB write + close (no sync)": (lambda i: _create(d, i, False), 1),
        "file create + 1 KiB write + fdatasync": (lambda i: _create(d, i, True), 1),
        "rename (same dir)": (rename, 1),
        "empty file create + fsync of its dir": (dir_fsync, 1),
        "seq: pwrite in place + fsync": (seq_sync, 1),
        "ticket, not durable (create, write, rename)": (lambda i: _ticket(d, i, False), 1),
        "ticket, durable (create, write, fdatasync, rename, dir fsync)":
            (lambda i: _ticket(d, i, True), 1),
        "journal: 1 record + fdatasync": (lambda i: journals[1].append(1), 1),
        "journal: 16 records + 1 fdatasync (per record)": (lambda i: journals[16].append(16), 16),
        "journal: 64 records + 1 fdatasync (per record)": (lambda i: journals[64].append(64), 64),
        "journal: 1 record, O_DSYNC": (dsync_write, 1),
        "journal: 1 record over zeroed blocks + fdatasync": (overwrite, 1),
        "64 new 1 KiB files, then 64 fdatasync + dir fsync (per file)": (batch_files, 64),
        "unlink of a 1 KiB file (made by the first line)": (unlink, 1),
        "journal: 1 record + syncfs": (sync_fs, 1),
    }


def measure(base: str, count: int, rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {}
    for _ in range(rounds):
        d = tempfile.mkdtemp(prefix="lpfilter-journal-ops-", dir=base)
        try:
            for name, (op, per) in operations(d, count).items():
                n = count if per == 1 else max(1, count // per)
                start = time.perf_counter()
                for i in range(n):
                    op(i)
                took = time.perf_counter() - start
                samples.setdefault(name, []).append(took / (n * per) * 1e6)
        finally:
            shutil.rmtree(d, ignore_errors=True)
    return samples


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    try:
        got = measure(args.dir, args.count, args.runs)
    except OSError as exc:
        print(f"journal_ops: {exc}", file=sys.stderr)
        return 2
    print(f"| operation on {args.dir} ({args.runs} rounds of {args.count}) | µs, median"
          " (min–max) |\n| --- | --- |")
    for name, values in got.items():
        print(f"| {name} | {statistics.median(values):.0f} ({min(values):.0f}–"
              f"{max(values):.0f}) |")
    print(f"\nload average: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
