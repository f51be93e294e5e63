#!/usr/bin/env python3
"""What ``lpfilter status`` costs on a busy print server (issue 16).

lpfilter's daemon (``watch --listen 127.0.0.1:PORT``, the queue printing to a loopback
sink: lpd_server_bench.py's ``Daemon``) takes ``--jobs`` 1 KiB jobs from two Python
client processes, one connection per job, as fast as it answers. Meanwhile ``lpfilter
status -P q`` runs every half second, and five times once the last job is sent. Every
command reads the queue's journal: what the server keeps there (the finished jobs of
the last minute, its retry notes) is what each status pays for. Figures: the jobs/s the
server took, the status's wall time during the run (median and max) and after it (the
median of five), the lines it printed, the journal's size and the daemon's RSS at the
end. ``--before PYTHON``: the same with the lpfilter installed for that interpreter (an
older commit), the two alternating, ``--runs`` each.

A benchmark, not a test: it prints a Markdown table and exits 0 (2 if it could not run).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil
from benchkit import BenchError, clean_env, header, load_average, row, spread
from lpd_server_bench import Daemon, command_of, py_clients

POLL = 0.5


def status_time(command: list[str], daemon: Daemon, env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds of one ``status -P q``, and the lines it printed."""
    start = time.perf_counter()
    done = subprocess.run([*command, "--printcap", str(daemon.printcap), "status", "-P", "q"],
                          capture_output=True, text=True, timeout=120, env=env)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchError(f"status failed ({done.returncode}): {done.stderr[-500:]}")
    return took, done.stdout.count("\n")


def one_run(python: str, jobs: int, root: Path) -> dict[str, float]:
    """One daemon, ``jobs`` jobs sent, the status timed during and after."""
    command = command_of(python)
    daemon = Daemon(root, command, "lpfilter")
    env = clean_env(root)  # the daemon's: its printcap cache and lock directory
    try:
        during: list[float] = []
        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(POLL):
                during.append(status_time(command, daemon, env)[0])

        poller = threading.Thread(target=poll)
        poller.start()
        start = time.perf_counter()
        try:
            py_clients(daemon.port, jobs, 2, "busy")
        finally:
            stop.set()
            poller.join()
        sent = time.perf_counter() - start
        after = [status_time(command, daemon, env) for _ in range(5)]
        journal = daemon.sd / ".lpfilter" / "journal"
        return {"rate": jobs / sent, "during": spread(during)[0] if during else 0.0,
                "during_max": max(during, default=0.0),
                "after": spread([t for t, _ in after])[0], "lines": after[-1][1],
                "journal": journal.stat().st_size,
                "rss": psutil.Process(daemon.proc.pid).memory_info().rss}
    finally:
        daemon.stop()


def report(results: dict[str, list[dict[str, float]]], jobs: int, load: float) -> None:
    names = list(results)
    print(f"{jobs} × 1 KiB jobs from 2 Python clients to lpfilter's daemon, "
          f"{len(results[names[0]])} runs each; load average {load_average(load)}\n")
    header("median of the runs", *names)
    figures = [("jobs/s taken", "rate", 1.0), ("`status` during the run, ms", "during", 1e3),
               ("… its slowest, ms", "during_max", 1e3),
               ("`status` after the run, ms", "after", 1e3),
               ("lines `status` printed after", "lines", 1.0),
               ("journal at the end, KiB", "journal", 1 / 1024),
               ("daemon's RSS at the end, MiB", "rss", 1 / 2**20)]
    for label, key, scale in figures:
        cells = []
        for name in names:
            mid, low, high = spread([r[key] * scale for r in results[name]])
            cells.append(f"{mid:,.0f} ({low:,.0f}–{high:,.0f})")
        row(label, *cells)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=6000, help="1 KiB jobs (default 6000)")
    parser.add_argument("--runs", type=int, default=2, help="runs of each (default 2)")
    parser.add_argument("--before", metavar="PYTHON",
                        help="also run the lpfilter installed for this interpreter")
    args = parser.parse_args(argv)
    pythons = {"now": sys.executable, **({"before": args.before} if args.before else {})}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in pythons}
    load = os.getloadavg()[0]
    try:
        with tempfile.TemporaryDirectory(prefix="busy-status-") as tmp:
            for run in range(args.runs):
                for name in (list(pythons) if run % 2 == 0 else list(pythons)[::-1]):
                    print(f"run {run + 1}: {name}", file=sys.stderr)
                    results[name].append(
                        one_run(pythons[name], args.jobs, Path(tmp) / f"{name}-{run}"))
    except BenchError as exc:
        print(f"busy_status_bench: cannot benchmark: {exc}", file=sys.stderr)
        return 2
    report(results, args.jobs, load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
