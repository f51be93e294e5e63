#!/usr/bin/env python3
"""Issue 16's small-job throughput targets, end to end to a socket printer.

1000 x 1 KiB jobs (``--jobs``) to a loopback "printer" that reads each connection to EOF
and closes it (the queue's ``lp=127.0.0.1%PORT``: the socket backend waits for that EOF),
in six ways, each timed from its first command's start to the last job's EOF at the
printer:

* hot folder: the files renamed into the spool directory, then ``watch --once``;
* ``watch --once`` of jobs ``print --no-wait`` spooled before (only ``watch`` timed);
* a running ``watch``, one ``print --no-wait`` given every file;
* a running ``watch``, 4 ``print --no-wait`` processes at once, a quarter of the files each;
* one ``print`` given every file and no watcher: it spools them and serves the queue itself;
* a pool of two printers (``sv=``, each server queue's printer a loopback printer of its
  own), the jobs spooled by ``print --no-wait`` before, then ``watch --once`` (no target:
  the issue's are for a queue; this one shows what a pool costs beside it).

Every run checks that the printer got every job exactly once and byte-exact (each job's
bytes name it), else the benchmark stops (exit 2). The packages compared (``--package
NAME=DIR``: put first on PYTHONPATH, e.g. ``git archive REV lpfilter | tar -x -C DIR``; the
default is the installed one) run in interleaved rounds, on the disk (``--disk``) and on
tmpfs (``--tmpfs``). A benchmark, not a test: it prints Markdown tables and exits 0; the
target (>= 1000 jobs/s on the disk) prints PASS or MISS.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from benchkit import BenchError, clean_env, header, row, spread, stop_process

JOB = 1024
WAYS = ("hot folder + watch --once", "watch --once, spooled",
        "running watch, 1 print", "running watch, 4 prints at once",
        "print FILE..., foreground", "pool of 2 printers, watch --once, spooled")
TARGET = 1000.0
WAIT = 300.0  # the longest a run may take before the benchmark gives up


class Printer:
    """The loopback printer: connections one at a time, each read to EOF, then closed."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.listener.getsockname()[1]
        self.got: list[tuple[bytes, float]] = []  # (the job's bytes, when EOF came)
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed
                return
            parts = []
            with conn, contextlib.suppress(OSError):
                while chunk := conn.recv(65536):
                    parts.append(chunk)
            with self.cond:
                self.got.append((b"".join(parts), time.perf_counter()))
                self.cond.notify_all()

    def take(self, count: int) -> list[tuple[bytes, float]]:
        """The next ``count`` jobs, waiting at most WAIT seconds."""
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.got) >= count, WAIT):
                raise BenchError(f"the printer got {len(self.got)} of {count} jobs")
            taken, self.got = self.got[:count], self.got[count:]
        return taken

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(10)


def job_bytes(n: int) -> bytes:
    head = f"@@job{n:05d}@@".encode()
    return head + bytes([65 + n % 26]) * (JOB - len(head) - 1) + b"\n"


def check(got: list[tuple[bytes, float]], count: int) -> float:
    """Every job exactly once, byte-exact; returns when the last one ended."""
    seen = Counter(data for data, _ in got)
    want = {job_bytes(n) for n in range(count)}
    if set(seen) != want or any(times != 1 for times in seen.values()):
        wrong = len(set(seen) - want) + sum(times - 1 for times in seen.values())
        raise BenchError(f"the printer got {len(want - set(seen))} jobs short and {wrong}"
                         " wrong or repeated")
    return max(when for _, when in got)


class Site:
    """One spool (``root``/sd) printing to the printer, run with one package."""

    def __init__(self, root: Path, ports: tuple[int, int], package: str | None,
                 jobs: int) -> None:
        self.root, self.jobs = root, jobs
        self.sd, self.files = root / "sd", root / "files"
        self.env = clean_env(root)
        if package:
            self.env["PYTHONPATH"] = package
        self.env["LPFILTER_PRINTCAP"] = str(root / "printcap")
        root.mkdir(parents=True, exist_ok=True)
        (root / "printcap").write_text(
            f"q:sd={self.sd}:lp=127.0.0.1%{ports[0]}:done_jobs=100000\n"
            f"pool:sd={root / 'sdpool'}:sv=pa,pb:done_jobs=100000\n"
            f"pa:sd={root / 'sdpa'}:lp=127.0.0.1%{ports[0]}:ss=pool\n"
            f"pb:sd={root / 'sdpb'}:lp=127.0.0.1%{ports[1]}:ss=pool\n")
        self.command = [sys.executable, "-m", "lpfilter"]

    def fresh(self) -> list[Path]:
        """An empty spool and the job files."""
        spools = [self.sd, *(self.root / name for name in ("sdpool", "sdpa", "sdpb"))]
        for path in (*spools, self.files):
            shutil.rmtree(path, ignore_errors=True)
        for path in spools:
            path.mkdir(mode=0o700)
        self.files.mkdir()
        made = []
        for n in range(self.jobs):
            path = self.files / f"job{n:05d}.txt"
            path.write_bytes(job_bytes(n))
            made.append(path)
        return made

    def run(self, *argv: str) -> subprocess.Popen[bytes]:
        # cwd: ``python -m`` puts the current folder first on sys.path, before PYTHONPATH:
        # run from a checkout, every package compared was that checkout's lpfilter.
        return subprocess.Popen([*self.command, *argv], env=self.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                cwd=self.root)

    def done(self, *procs: subprocess.Popen[bytes]) -> None:
        for proc in procs:
            try:
                _, err = proc.communicate(timeout=WAIT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise BenchError(f"{' '.join(map(str, proc.args))[:80]}: still running") from None
            if proc.returncode != 0:
                raise BenchError(f"lpfilter exited {proc.returncode}: {err.decode()[-400:]}")

    def watcher(self) -> subprocess.Popen[bytes]:
        """A running ``watch -P q``, once it holds the queue's lease."""
        proc = self.run("watch", "-q", "-P", "q")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError, ValueError, KeyError):
                lock = json.loads((self.sd / ".lpfilter/queue.lock").read_text())
                if int(lock["pid"]) == proc.pid:
                    return proc
            time.sleep(0.02)
        stop_process(proc)
        raise BenchError("lpfilter watch did not start serving the queue")


def take_both(printers: tuple[Printer, Printer], count: int) -> list[tuple[bytes, float]]:
    """The next ``count`` jobs of the two printers together, waiting at most WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while sum(len(printer.got) for printer in printers) < count:
        if time.monotonic() > deadline:
            raise BenchError(f"the two printers got {sum(len(p.got) for p in printers)} of"
                             f" {count} jobs")
        time.sleep(0.01)
    return [job for printer in printers for job in printer.take(len(printer.got))]


def one_run(site: Site, printers: tuple[Printer, Printer], way: str) -> float:
    """One way's jobs/s."""
    printer, files = printers[0], site.fresh()
    names = [str(path) for path in files]
    if way == "hot folder + watch --once":
        start = time.perf_counter()
        for path in files:
            os.rename(path, site.sd / path.name)
        site.done(site.run("watch", "--once", "-q", "-P", "q"))
    elif way == "print FILE..., foreground":  # print serves the queue itself: no watcher
        start = time.perf_counter()
        site.done(site.run("print", "-P", "q", *names))
    elif way == "watch --once, spooled":
        site.done(site.run("print", "--no-wait", "-P", "q", *names))
        start = time.perf_counter()
        site.done(site.run("watch", "--once", "-q", "-P", "q"))
    elif way.startswith("pool"):
        site.done(site.run("print", "--no-wait", "-P", "pool", *names))
        start = time.perf_counter()
        site.done(site.run("watch", "--once", "-q", "-P", "pool"))
        return site.jobs / (check(take_both(printers, site.jobs), site.jobs) - start)
    else:
        watcher = site.watcher()
        try:
            parts = 4 if way.endswith("4 prints at once") else 1
            start = time.perf_counter()
            site.done(*[site.run("print", "--no-wait", "-P", "q", *names[k::parts])
                        for k in range(parts)])
            end = check(printer.take(site.jobs), site.jobs)
        finally:
            stop_process(watcher)
        return site.jobs / (end - start)
    return site.jobs / (check(printer.take(site.jobs), site.jobs) - start)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", action="append", default=[], metavar="NAME=DIR",
                        help="a package to compare (PYTHONPATH); default: the installed one")
    parser.add_argument("--runs", type=int, default=3, help="measured rounds (default 3)")
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per run (default 1000)")
    parser.add_argument("--disk", default="/tmp", help="the disk's folder (default /tmp)")
    parser.add_argument("--tmpfs", default="/dev/shm", help="tmpfs (default /dev/shm)")
    parser.add_argument("--ways", default=",".join(str(n) for n in range(len(WAYS))),
                        help="which ways, by number from 0 (default all)")
    return parser.parse_args(argv)


def report(rates: dict[tuple[str, str, str], list[float]], packages: list[str],
           places: list[str], ways: list[str], args: argparse.Namespace, load: str) -> None:
    print(f"{args.jobs} x 1 KiB jobs to a loopback socket printer (EOF wait), {args.runs}"
          f" rounds; load average {load}\n")
    header("jobs/s, median (min-max)", *(f"{where}: {name}" for where in places
                                          for name in packages))
    for way in ways:
        cells = []
        for where in places:
            for name in packages:
                mid, low, high = spread(rates[(way, where, name)])
                cells.append(f"{mid:,.0f} ({low:,.0f}-{high:,.0f})")
        row(way, *cells)
    print()
    header("target: >= 1000 jobs/s on the disk", *packages)
    for way in ways:
        row(way, *("no target" if way.startswith("pool") else "PASS"
                   if spread(rates[(way, "disk", name)])[0] >= TARGET else "MISS"
                   for name in packages))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    packages = dict(item.split("=", 1) for item in args.package) or {"installed": ""}
    ways = [WAYS[int(n)] for n in args.ways.split(",")]
    places = {"disk": args.disk, "tmpfs": args.tmpfs}
    printers = (Printer(), Printer())
    roots = {where: Path(tempfile.mkdtemp(prefix="lpfilter-tput-", dir=folder))
             for where, folder in places.items()}
    rates: dict[tuple[str, str, str], list[float]] = {}
    load = f"{os.getloadavg()[0]:.1f}"
    try:
        sites = {(where, name): Site(roots[where] / name, (printers[0].port, printers[1].port),
                                     package, args.jobs)
                 for where in places for name, package in packages.items()}
        for round_ in range(args.runs + 1):  # the first is a warm-up (.pyc files, caches)
            for way in ways:
                for (where, name), site in sites.items():
                    rate = one_run(site, printers, way)
                    if round_:
                        rates.setdefault((way, where, name), []).append(rate)
    except BenchError as exc:
        print(f"throughput_bench: cannot benchmark: {exc}", file=sys.stderr)
        return 2
    finally:
        for printer in printers:
            printer.close()
        for root in roots.values():
            shutil.rmtree(root, ignore_errors=True)
    report(rates, list(packages), list(places), ways, args,
           f"{load} before, {os.getloadavg()[0]:.1f} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
