#!/usr/bin/env python3
"""Issue 16 (SHARE): what a received job costs the daemon when its queue's journal is big.

A stopped queue (lpc stop: jobs are received, none printed), optionally holding
``--history`` finished jobs in its journal first; ``python -m lpfilter watch --listen
127.0.0.1:0`` serves it; a Python client sends ``--jobs`` 1 KiB jobs, one connection each
(control file first), one after another. Figures: jobs/s (first send to last answer) and
the daemon's CPU (utime + stime from /proc/PID/stat) per 1000 jobs. ``--source DIR``: the
lpfilter source tree the daemon runs (PYTHONPATH; e.g. a checkout of main for "before").
A benchmark, not a test: no target, exit 0.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from serverkit import send_job  # type: ignore[import-not-found]  # noqa: E402

from lpfilter import printcap  # noqa: E402
from lpfilter.job import JobState  # noqa: E402
from lpfilter.spool.control import QueueControl, write_control  # noqa: E402
from lpfilter.spool.store import SpoolStore  # noqa: E402
from lpfilter.spool.submit import JobOptions, submit  # noqa: E402


def cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def prepare(root: Path, history: int) -> Path:
    sd = root / "sd"
    sd.mkdir(mode=0o700)
    pc = root / "printcap"
    pc.write_text(f"q:sd={sd}:lp={root / 'out'}:\n")
    (root / "out").touch()
    entry = printcap.load([str(pc)]).lookup("q")
    store = SpoolStore(str(sd), "q")
    store.ensure("watch")
    doc = root / "doc"
    doc.write_bytes(b"x" * 1024)
    if history:
        first = submit(entry, store, str(doc), JobOptions("alice"))
        store.drop_data(first)
        jobs = []
        for number in range(2, history + 1):
            job = first.copy()
            job.id = f"{number:06d}"
            jobs.append(job)
        for job in [first, *jobs]:
            job.state, job.finished = JobState.DONE, time.time()
        for at in range(0, len(jobs) + 1, 64):
            store.write_all(([first] + jobs)[at:at + 64], durable=False)
    write_control(store.state, QueueControl(printing_disabled=True), store.owner)
    store.close()
    return pc


def run(source: str, history: int, count: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="lpd-receive-") as tmp:
        root = Path(tmp)
        pc = prepare(root, history)
        env = dict(os.environ, PYTHONPATH=source, LPFILTER_PRINTCAP=str(pc),
                   LPFILTER_LOCK_DIR=str(root / "locks"),
                   LPFILTER_SOCKET=str(root / "sock"))
        with open(root / "err", "w+b") as err:
            proc = subprocess.Popen([sys.executable, "-m", "lpfilter", "--printcap", str(pc),
                                     "watch", "--listen", "127.0.0.1:0"], env=env,
                                    stderr=err, cwd=source)
            try:
                took, used = _send(proc, root / "err", count)
            finally:
                proc.terminate()
                proc.wait(30)
    return count / took, used * 1000 / count


def _send(proc: subprocess.Popen[bytes], log: Path, count: int) -> tuple[float, float]:
    """(seconds, daemon CPU seconds) for ``count`` jobs, once the daemon listens."""
    port = 0
    for _ in range(400):  # bounded: 20 s
        found = re.search(rb"print server on 127\.0\.0\.1:(\d+)", log.read_bytes())
        if found:
            port = int(found.group(1))
            break
        time.sleep(0.05)
    if not port:
        raise SystemExit(log.read_text())
    send_job(port, b"warm\n", number=999)
    before, start = cpu(proc.pid), time.monotonic()
    for number in range(count):
        send_job(port, b"%d\n" % number + b"x" * 1020, number=number % 999)
    return time.monotonic() - start, cpu(proc.pid) - before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--history", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for _ in range(args.runs):
        rate, cost = run(args.source, args.history, args.jobs)
        print(f"history {args.history}: {rate:7.1f} jobs/s, daemon CPU {cost:6.2f} s"
              f" per 1000 jobs  ({args.source})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
