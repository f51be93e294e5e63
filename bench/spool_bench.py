#!/usr/bin/env python3
"""Spool benchmark: jobs per second, pick-up latency, an idle watcher, `print` wall time.

Run it with the interpreter lpfilter is installed in; see bench/README.md. All local:
queues write to /dev/null or to a FIFO this script reads; each figure is measured with the
spool on disk (/tmp) and on tmpfs (/dev/shm), since lpfilter fsyncs every job.

A missed target prints MISS and still exits 0: this is a benchmark, not a test. Exit
status 2 means it could not run (a command failed, or a job did not end as expected).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil
from benchkit import (BenchError, add_options, clean_env, header, load_average, lpfilter_command,
                      lpfilter_info, machine_info, print_info, progress, row, spool_jobs, spread,
                      stop_process, verdict)

JOB_SIZE = 1024
SETTLE = 5.0  # seconds the idle watcher gets to settle once it serves every queue
GAP = (0.010, 0.030)  # pause between latency samples, so each job finds an idle worker
WAIT = 10.0  # longest wait for one job's first byte
WARM = 3  # unmeasured jobs of each kind when the FIFO queue's watcher starts
#: (figure, target, limit, higher is better, the only setting it is judged at (else N/A))
TARGETS = [("once_rate", "`watch --once` ≥ 1000 jobs/s", 1000.0, True, ("jobs", 1000)),
           ("daemon_rate", "running watcher ≥ 1000 jobs/s end to end", 1000.0, True,
            ("jobs", 1000)),
           ("hot_p50", "pick-up latency p50 < 10 ms", 0.010, False, None),
           ("hot_p99", "pick-up latency p99 < 50 ms", 0.050, False, None),
           ("idle_cpu", "idle 100-queue watcher CPU < 0.5 %", 0.5, False, ("idle_queues", 100)),
           ("idle_rss", "idle 100-queue watcher RSS < 60 MiB", 60 * 2**20, False,
            ("idle_queues", 100)),
           ("print_wall", "`print --no-wait` < 60 ms wall", 0.060, False, None)]
#: (key, label, unit) in report order; unit: rate, s, pct, B, n.
FIGURES = [("submit_rate", "(1) submit {jobs} jobs, `print --no-wait`, no watcher", "rate"),
           ("once_rate", "(1) `watch --once`, wall", "rate"),
           ("once_span", "(1) `watch --once`, first start to last finish (tickets)", "rate"),
           ("daemon_submit", "(1) submit {jobs} jobs while a watcher runs", "rate"),
           ("daemon_rate", "(1) running watcher, submit start to all done", "rate"),
           ("hot_p50", "(2) hot folder: rename to first byte, p50", "s"),
           ("hot_p99", "(2) hot folder: rename to first byte, p99", "s"),
           ("hot_first", "(2) hot folder p50, first quarter ({first} tickets kept)", "s"),
           ("hot_last", "(2) hot folder p50, last quarter ({last} tickets kept)", "s"),
           ("commit_p50", "(2) submit() returned to first byte, p50", "s"),
           ("commit_p99", "(2) submit() returned to first byte, p99", "s"),
           ("submit_call", "(2) one submit() call, in-process", "s"),
           ("print_wall", "(4) `print --no-wait` one job, watcher running", "s"),
           ("print_first", "(4) first byte, after `print` exited (< 0: before)", "s"),
           ("idle_cpu", "(3) idle `watch --all`, {queues} queues: CPU over {idle} s", "pct"),
           ("idle_rss", "(3) idle `watch --all`: RSS", "B"),
           ("idle_threads", "(3) idle `watch --all`: threads", "n"),
           ("idle_ready", "(3) `watch --all` start until every queue is served", "s")]
UNITS = {key: unit for key, _, unit in FIGURES}
#: (option, type, default, help)
OPTIONS = [("--runs", int, 3, "measured rounds after the warm-up"),
           ("--jobs", int, 1000, "1 KiB jobs per throughput run"),
           ("--latency-files", int, 200, "latency samples of each kind per round"),
           ("--prints", int, 10, "`print` commands per round and file system"),
           ("--idle-seconds", float, 60.0, "how long the idle watcher's CPU is measured"),
           ("--idle-queues", int, 100, "queues of the idle watcher"),
           ("--disk", str, "/tmp", "where the disk spool goes"),
           ("--tmpfs", str, "/dev/shm", "where the tmpfs spool goes"),
           ("--timeout", float, 600.0, "longest wait for a running watcher's batch")]
MARK = re.compile(rb"@@([A-Za-z0-9-]+)@@")


def job_bytes(tag: str) -> bytes:
    """A 1 KiB job that starts with a marker the FIFO reader recognises."""
    head = f"@@{tag}@@".encode()
    return head + b"." * (JOB_SIZE - len(head) - 1) + b"\n"


class FifoReader:
    """Reads the FIFO a queue prints to, noting when each job's marker arrived."""

    def __init__(self, path: Path):
        os.mkfifo(path)
        self.fd = os.open(path, os.O_RDWR)  # a writer of our own: reads never see EOF
        self.arrived: dict[str, float] = {}
        self.cond, self.done = threading.Condition(), False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        tail = b""  # a marker split between two reads counts at the second (µs later)
        while not self.done:
            data, now = tail + os.read(self.fd, 65536), time.perf_counter()
            with self.cond:
                for match in MARK.finditer(data):
                    self.arrived.setdefault(match.group(1).decode(), now)
                tail = data[-32:]
                self.cond.notify_all()

    def wait(self, tag: str) -> float:
        with self.cond:
            if not self.cond.wait_for(lambda: tag in self.arrived, WAIT):
                raise BenchError(f"job {tag} did not reach the FIFO within {WAIT:g} s")
            return self.arrived[tag]

    def close(self) -> None:
        self.done = True
        os.write(self.fd, b"\n")  # wakes the reader
        self.thread.join(5)
        os.close(self.fd)


class Area:
    """One file system: queues, printcaps, job files, and the watchers started there."""

    def __init__(self, name: str, root: Path, jobs: int, idle_queues: int):
        self.name, self.root, self.env = name, root, clean_env(root)
        self.lpf = lpfilter_command()
        self.tput, self.lat = root / "spool/tput", root / "spool/lat"
        self.idle_sds = [root / f"idle/q{i:03d}" for i in range(idle_queues)]
        for path in (root / "cwd", root / "in", root / "stage", self.tput, self.lat,
                     *self.idle_sds):
            path.mkdir(parents=True)
        self.printcap, self.idle_printcap = root / "printcap", root / "printcap.idle"
        # done_jobs: every ticket kept, for the check that each job is done (the
        # default, 1, prunes finished tickets as the queue goes on)
        self.printcap.write_text(f"tput:sd={self.tput}:lp=/dev/null:done_jobs#1000000\n"
                                 f"lat:sd={self.lat}:lp={root / 'fifo'}:done_jobs#1000000\n")
        self.idle_printcap.write_text("".join(f"idle{i:03d}:sd={sd}:lp=/dev/null\n"
                                              for i, sd in enumerate(self.idle_sds)))
        self.files = [str(root / f"in/job{i:04d}") for i in range(jobs)]
        for i, path in enumerate(self.files):
            Path(path).write_bytes(job_bytes(f"t{i}"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.fifo: FifoReader | None = None
        self.entry = self.store = None  # the FIFO queue, for submit() in this process

    def run(self, *args: str, printcap: Path | None = None) -> float:
        """Run an lpfilter command; its wall time. A failed command stops the benchmark."""
        argv = [*self.lpf, "--printcap", str(printcap or self.printcap), *args]
        start = time.perf_counter()
        proc = subprocess.run(argv, env=self.env, cwd=self.root / "cwd", capture_output=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise BenchError(f"{' '.join(argv)[:300]}: exit status {proc.returncode}\n"
                             + proc.stderr.decode(errors="replace")[-2000:])
        return wall

    def watch(self, sds: list[Path], *args: str, printcap: Path | None = None) -> psutil.Process:
        """Start ``lpfilter watch ARGS``; return once its pid is in every queue's lock."""
        log = self.root / f"watch-{len(self.procs)}.log"
        with open(log, "wb") as out:
            self.procs.append(subprocess.Popen(
                [*self.lpf, "--printcap", str(printcap or self.printcap), "watch", *args],
                env=self.env, cwd=self.root / "cwd", stdout=out, stderr=out))
        pid, deadline = self.procs[-1].pid, time.monotonic() + 120

        def holder(sd: Path) -> int:
            try:
                return int(json.loads((sd / ".lpfilter/queue.lock").read_text())["pid"])
            except (OSError, ValueError, KeyError):
                return 0
        while not all(holder(sd) == pid for sd in sds):
            if self.procs[-1].poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"lpfilter watch {' '.join(args)} did not start serving:\n"
                                 + log.read_text(errors="replace")[-2000:])
            time.sleep(0.02)
        return psutil.Process(pid)

    def stop(self) -> None:
        """SIGTERM every watcher started here (SIGKILL if one lingers)."""
        for proc in self.procs:
            stop_process(proc)
        self.procs.clear()

    def close(self) -> None:
        self.stop()
        if self.store is not None:
            self.store.close()
        if self.fifo is not None:
            self.fifo.close()


def tickets(sd: Path, expected: int) -> list[dict[str, object]]:
    """Every ticket of the queue; each of the ``expected`` jobs must be done."""
    jobs = spool_jobs(sd)
    bad = [f"{j['id']}: {j['state']} {j['last_error']}" for j in jobs if j["state"] != "done"]
    if len(jobs) != expected or bad:
        raise BenchError(f"{sd}: {len(jobs)} tickets for {expected} jobs; not done: {bad[:5]}")
    return jobs


# --- the measurements -----------------------------------------------------------------

def throughput(area: Area, timeout: float) -> dict[str, float]:
    """(1) The batch submitted with no watcher, then ``watch --once`` timed alone; then the
    batch submitted to a running watcher, timed until every job is done."""
    n = len(area.files)
    shutil.rmtree(area.tput), area.tput.mkdir()
    submit = area.run("print", "--no-wait", "-P", "tput", *area.files)
    once = area.run("watch", "--once", "-P", "tput")
    jobs = tickets(area.tput, n)
    out = {"submit_rate": n / submit, "once_rate": n / once, "once_span": n / (
        max(j["finished"] for j in jobs) - min(j["started"] for j in jobs))}
    shutil.rmtree(area.tput), area.tput.mkdir()
    area.watch([area.tput], "-P", "tput")
    start = time.perf_counter()
    out["daemon_submit"] = n / area.run("print", "--no-wait", "-P", "tput", *area.files)
    # The journal's unfinished jobs, caught up at each look (small jobs have no data file
    # to watch for: their bytes are in the journal, spool/jobdata.py).
    from lpfilter.spool.store import SpoolStore
    store = SpoolStore(str(area.tput), "tput")
    try:
        while store.jobs(finished=False):
            if time.perf_counter() - start > timeout:
                raise BenchError(f"the watcher did not finish {n} jobs in {timeout:g} s")
            time.sleep(0.005)
    finally:
        store.close()
    out["daemon_rate"] = n / (time.perf_counter() - start)
    area.stop()
    tickets(area.tput, n)
    return out


def fresh_latency_queue(area: Area, number: int) -> None:
    """Empty the FIFO queue ``lat`` and start its watcher: finished tickets stay in a queue
    for a minute, and every pass reads them all, so each round starts from none."""
    from lpfilter.printcap import load
    from lpfilter.spool.store import SpoolStore
    area.stop()
    if area.fifo is None:
        area.fifo = FifoReader(area.root / "fifo")
        area.entry = load([str(area.printcap)], cache_dir=None).lookup("lat")
    if area.store is not None:
        area.store.close()
    shutil.rmtree(area.lat), area.lat.mkdir()
    area.watch([area.lat], "-P", "lat")
    area.store = SpoolStore(str(area.lat), "lat")
    for i in range(WARM):  # not measured: the watcher's first jobs import the backend
        for kind in ("hot", "commit", "print"):
            sample(area, kind, f"{kind}-warm{number}-{i}")


def sample(area: Area, kind: str, tag: str) -> tuple[float, float]:
    """One job to the FIFO queue: (how long the hand-over took, from its end to the job's
    first byte). hot: rename(2) into the hot folder; commit: submit() in this process;
    print: ``lpfilter print --no-wait``. The file is written first, on the same fs."""
    from lpfilter.spool.submit import JobOptions, submit
    path = area.root / "stage" / tag
    path.write_bytes(job_bytes(tag))
    start = time.perf_counter()
    if kind == "hot":
        os.rename(path, area.lat / tag)
    elif kind == "commit":
        submit(area.entry, area.store, str(path), JobOptions("bench"))
    else:
        area.run("print", "--no-wait", "-P", "lat", str(path))
    end = time.perf_counter()
    return end - start, area.fifo.wait(tag) - end


def idle(area: Area, seconds: float) -> dict[str, float]:
    """(3) CPU and RSS of ``watch --all`` on the idle printcap, once it has settled."""
    start = time.perf_counter()
    proc = area.watch(area.idle_sds, "--all", printcap=area.idle_printcap)
    ready = time.perf_counter() - start
    time.sleep(SETTLE)
    before, t0 = proc.cpu_times(), time.monotonic()
    time.sleep(seconds)
    after, t1 = proc.cpu_times(), time.monotonic()
    cpu = (after.user + after.system) - (before.user + before.system)
    out = {"idle_cpu": 100 * cpu / (t1 - t0), "idle_rss": float(proc.memory_info().rss),
           "idle_threads": float(proc.num_threads()), "idle_ready": ready}
    area.stop()
    return out


# --- the run --------------------------------------------------------------------------

def measure(args: argparse.Namespace, areas: list[Area]) -> dict[str, dict[str, list[float]]]:
    say = progress(args.json)
    got = {a.name: {key: [] for key in [*UNITS, "hot_all", "commit_all"]} for a in areas}
    got["reference"] = {"pass": []}
    rng = random.Random(1)
    say("warm-up round")
    for area in areas:
        area.run("print", "--no-wait", "-P", "tput", *area.files[:20])
        area.run("watch", "--once", "-P", "tput")
        area.run("printcap", "-P", "idle000", printcap=area.idle_printcap)  # fills its cache
    for number in range(args.runs):
        say(f"round {number + 1}/{args.runs}: throughput")
        for area in areas[number % 2:] + areas[:number % 2]:
            for key, value in throughput(area, args.timeout).items():
                got[area.name][key].append(value)
    for number in range(args.runs):
        say(f"round {number + 1}/{args.runs}: latency and print")
        for area in areas:
            fresh_latency_queue(area, number)
        for area in areas[number % 2:] + areas[:number % 2]:
            hot, commit = [], []
            for i in range(args.latency_files):
                hot.append(sum(sample(area, "hot", f"hot-{number}-{i}")))
                time.sleep(rng.uniform(*GAP))
                call, wait = sample(area, "commit", f"commit-{number}-{i}")
                commit.append(wait)
                got[area.name]["submit_call"].append(call)
                time.sleep(rng.uniform(*GAP))
            quarter = max(1, len(hot) // 4)
            got[area.name]["hot_first"].append(statistics.median(hot[:quarter]))
            got[area.name]["hot_last"].append(statistics.median(hot[-quarter:]))
            for key, samples in (("hot", hot), ("commit", commit)):
                got[area.name][f"{key}_all"] += samples  # for --json
                got[area.name][f"{key}_p50"].append(statistics.median(samples))
                got[area.name][f"{key}_p99"].append(
                    statistics.quantiles(samples, n=100, method="inclusive")[98])
        for i in range(args.prints):
            for area in areas:
                wall, first = sample(area, "print", f"print-{number}-{i}")
                got[area.name]["print_wall"].append(wall)
                got[area.name]["print_first"].append(first)
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], env=areas[0].env, check=True)
            got["reference"]["pass"].append(time.perf_counter() - start)
    for area in areas:
        area.stop()
    for area in areas:
        say(f"idle watcher on {area.name}: {SETTLE:g} s to settle, then {args.idle_seconds:g} s")
        for key, value in idle(area, args.idle_seconds).items():
            got[area.name][key].append(value)
    return got


def cell(samples: list[float], unit: str) -> str:
    """``median (min–max)``: jobs/s or ms; a single value for the idle watcher's figures."""
    med, low, high = spread(samples)
    if unit in ("pct", "B", "n"):
        return {"pct": f"{med:.3f} %", "B": f"{med / 2**20:.1f} MiB", "n": f"{med:.0f}"}[unit]
    if unit == "rate":
        return f"{med:,.0f} jobs/s" + (f" ({low:,.0f}–{high:,.0f})" if len(samples) > 1 else "")
    d = 1 if abs(med) < 0.1 else 0
    return f"{med * 1e3:.{d}f} ms" + (f" ({low * 1e3:.{d}f}–{high * 1e3:.{d}f})"
                                      if len(samples) > 1 else "")


def verdicts(got: dict[str, dict[str, list[float]]], names: list[str],
             args: argparse.Namespace) -> list[dict[str, object]]:
    out = []
    for key, target, limit, higher, only in TARGETS:
        for name in names:
            median = statistics.median(got[name][key])
            status = verdict(median, limit, higher,
                             judged=not only or getattr(args, only[0]) == only[1])
            out.append({"fs": name, "target": target, "figure": key, "median": median,
                        "status": status})
    return out


def print_report(got: dict[str, dict[str, list[float]]], names: list[str],
                 info: dict[str, object], args: argparse.Namespace) -> None:
    print_info(info)
    print(f"{args.runs} rounds after a warm-up, interleaved; median (min–max) over rounds;"
          f" (2) {args.latency_files} samples of each kind per round; (4) {args.prints}"
          " per round; (3) one run per file system\n")
    header("figure", *names)
    for key, label, unit in FIGURES:
        kept, quarter = 3 * WARM, 2 * max(1, args.latency_files // 4)  # 2 jobs per sample
        label = label.format(jobs=args.jobs, idle=f"{args.idle_seconds:g}",
                             queues=args.idle_queues, first=f"{kept}–{kept + quarter}",
                             last=f"{kept + 2 * args.latency_files - quarter}–"
                                  f"{kept + 2 * args.latency_files}")
        row(label, *(cell(got[n][key], unit) for n in names))
    print(), header("reference (wall)", "time")
    row("`python -c pass`", cell(got["reference"]["pass"], "s"))
    print(), header("target", *names)
    checks = verdicts(got, names, args)
    for target in dict.fromkeys(c["target"] for c in checks):
        row(target, *(f"{c['status']}, {cell([c['median']], UNITS[c['figure']])}"
                      for c in checks if c["target"] == target))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_options(parser, OPTIONS)
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args(argv)
    if min(args.runs, args.jobs, args.prints, args.idle_queues) < 1 or args.latency_files < 2:
        parser.error("every count must be at least 1 (--latency-files at least 2)")
    bases = {"disk": args.disk, "tmpfs": args.tmpfs}
    roots: list[Path] = []
    areas: list[Area] = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # and still clean up
    load_before = os.getloadavg()[0]
    try:
        for name, base in bases.items():
            roots.append(Path(tempfile.mkdtemp(prefix="lpfilter-spool-bench-", dir=base)))
            areas.append(Area(name, roots[-1], args.jobs, args.idle_queues))
        got = measure(args, areas)
    except BenchError as exc:
        print(f"spool_bench: cannot benchmark: {exc}", file=sys.stderr)
        return 2
    finally:
        try:
            for area in areas:
                area.close()
        finally:
            for root in roots:
                shutil.rmtree(root, ignore_errors=True)
    info = {**machine_info(),
            "python": f"{platform.python_version()} ({sys.executable}), psutil"
                      f" {psutil.__version__}",
            "lpfilter": lpfilter_info(),
            "spool": ", ".join(f"{name}: {base}" for name, base in bases.items()),
            "load average (1 min)": load_average(load_before)}
    if args.json:
        print(json.dumps({"info": info, "args": vars(args),
                          "targets": verdicts(got, list(bases), args), "samples": got}, indent=2))
    else:
        print_report(got, list(bases), info, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
