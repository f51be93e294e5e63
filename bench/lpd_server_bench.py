#!/usr/bin/env python3
"""LPD server benchmark: LPRng's `lpr` sending to lpfilter's daemon, against the same `lpr`
sending to LPRng's own lpd, both on loopback, both printing to /dev/null.

Run it as root with the interpreter lpfilter is installed in; see bench/README.md. LPRng's
lpd runs as in lpd_bench.py (a private mount namespace, our /etc/lprng bound over, queue
`q` printing to /dev/null); lpfilter runs `watch --listen 127.0.0.1:PORT` with a queue `q`
printing to /dev/null. `lpr` runs in lpd's namespace (its lpd.conf: `originate_port=`
empty) with `-P q@127.0.0.1%PORT` for either server. (1) one big job; (2) --jobs × 1 KiB
jobs, one `lpr` per job from a shell loop. A run ends when the server has printed every
job: LPRng's spool holds no job file, lpfilter's spool no job data and every ticket done.
Before each timed run memory and the page cache are settled (benchkit.settle_memory,
settle_page_cache), whichever server comes next.
Also: the daemon's peak RSS (sampled every 10 ms) and its CPU time while idle.

A missed target prints MISS and still exits 0: this is a benchmark, not a test. Exit
status 2 means it could not run (LPRng missing, not root, a command failed).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil
from benchkit import (BenchError, clean_env, header, load_average, lpfilter_command,
                      lpfilter_info, machine_info, print_info, progress, row, rss_sampler,
                      scratch_dirs, settle_memory, settle_page_cache, size_arg, spread,
                      verdict)
from lpd_bench import LPD, LPR, Lpd, free_port

MB, MiB = 1e6, 2**20
SMALL = 1024
TIMEOUT = 900.0


class Daemon:
    """`lpfilter watch --listen` on a free loopback port, stopped by pid; its RSS sampled."""

    def __init__(self, root: Path) -> None:
        self.sd = root / "lpf-sd"
        self.sd.mkdir()
        self.printcap = root / "lpf-printcap"
        self.printcap.write_text(f"q:lp=/dev/null:sd={self.sd}\n")
        self.env = clean_env(root)
        self.log = root / "watch.log"
        self.port = free_port()
        argv = [*lpfilter_command(), "--printcap", str(self.printcap), "watch",
                "--listen", f"127.0.0.1:{self.port}"]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.process = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + 20
        while not any(c.laddr == ("127.0.0.1", self.port) and c.status == psutil.CONN_LISTEN
                      for c in self.process.net_connections("tcp")):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BenchError(f"lpfilter watch did not listen:\n{self.log.read_text()}")
            time.sleep(0.05)

    def sample(self) -> Callable[[], int]:
        """Start sampling the RSS every 10 ms; the returned call stops and gives the peak."""
        return rss_sampler(self.process)

    def idle_cpu(self, seconds: float) -> float:
        """CPU seconds the daemon used while nothing happened for ``seconds``."""
        before = self.process.cpu_times()
        time.sleep(seconds)
        after = self.process.cpu_times()
        return (after.user + after.system) - (before.user + before.system)

    def drain(self, count: int, what: str) -> float:
        """When ``count`` tickets exist and no job data is left (polled every 2 ms)."""
        jobs = self.sd / ".lpfilter" / "jobs"
        deadline = time.monotonic() + TIMEOUT
        while True:
            names = os.listdir(jobs) if jobs.is_dir() else []
            if sum(n.endswith(".job") for n in names) >= count and not any(
                    n.endswith(".data") for n in names):
                return time.perf_counter()
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"{what}: lpfilter printed too little:\n"
                                 f"{self.log.read_text()[-2000:]}")
            time.sleep(0.002)

    def clear(self, count: int, what: str) -> None:
        """Check that every ticket ended done, then remove them (untimed)."""
        jobs = self.sd / ".lpfilter" / "jobs"
        tickets = [json.loads(p.read_text()) for p in jobs.glob("*.job")]
        if len(tickets) != count or any(t["state"] != "done" for t in tickets):
            states = sorted({t["state"] for t in tickets})
            raise BenchError(f"{what}: {len(tickets)} tickets for {count} jobs ({states})")
        for path in jobs.glob("*.job"):
            path.unlink()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def lpr_loop(lpd: Lpd, queue: str, files: Sequence[Path]) -> float:
    """Run one `lpr -P queue FILE` per file in lpd's namespace; returns the start time."""
    loop = 'q=$1; shift; for f do "$0" -P "$q" "$f" || exit 1; done'
    start = time.perf_counter()
    done = subprocess.run([*lpd.nsenter(), "sh", "-c", loop, LPR, queue, *map(str, files)],
                          capture_output=True, timeout=TIMEOUT, check=False)
    if done.returncode != 0:
        raise BenchError(f"lpr to {queue}: exit status {done.returncode}: "
                         f"{done.stderr.decode(errors='replace')[-1000:]}")
    return start


def one_round(lpd: Lpd, daemon: Daemon, big: Path, small: list[Path], size: int,
              lpfilter_first: bool) -> dict[str, dict[str, float]]:
    got: dict[str, dict[str, float]] = {"big": {}, "small": {}}
    for group, files, amount in (("big", [big], size), ("small", small, len(small))):
        order = ["lpf", "lprng"] if lpfilter_first else ["lprng", "lpf"]
        for who in order:
            amount_on_disk = sum(p.stat().st_size for p in files)
            settle_memory(amount_on_disk * 2)
            settle_page_cache(big.parent, amount_on_disk + (64 << 20))
            if who == "lpf":
                stop = daemon.sample()
                start = lpr_loop(lpd, f"q@127.0.0.1%{daemon.port}", files)
                end = daemon.drain(len(files), f"lpfilter {group}")
                got[group]["lpf_rss"] = stop()
                daemon.clear(len(files), f"lpfilter {group}")
            else:
                start = lpr_loop(lpd, lpd.queue, files)
                end = lpd.drain(f"LPRng lpd {group}")
            got[group][f"{who}_rate"] = amount / (end - start)
        got[group]["ratio"] = got[group]["lpf_rate"] / got[group]["lprng_rate"]
    return got


FIGURES = {
    "big": [("lpf_rate", "lpr → lpfilter watch: size / (lpr's start to printed)", "MBs"),
            ("lprng_rate", "lpr → LPRng lpd: size / (lpr's start to printed)", "MBs"),
            ("ratio", "lpfilter / LPRng lpd, per round", "x"),
            ("lpf_rss", "lpfilter daemon: peak RSS during the big job", "B")],
    "small": [("lpf_rate", "lpr loop → lpfilter watch: jobs / (first start to printed)", "rate"),
              ("lprng_rate", "lpr loop → LPRng lpd: jobs / (first start to printed)", "rate"),
              ("ratio", "lpfilter / LPRng lpd, per round", "x"),
              ("lpf_rss", "lpfilter daemon: peak RSS during the small jobs", "B")],
}


def cell(samples: list[float], unit: str) -> str:
    med, low, high = spread(samples)
    fmt = {"MBs": lambda v: f"{v / MB:,.0f} MB/s", "rate": lambda v: f"{v:,.0f} jobs/s",
           "x": lambda v: f"{v:.2f} ×", "B": lambda v: f"{v / MiB:.1f} MiB",
           "s": lambda v: f"{v:.3f} s"}[unit]
    return fmt(med) if len(samples) == 1 else f"{fmt(med)} ({fmt(low)}–{fmt(high)})"


def verdicts(got: dict[str, dict[str, list[float]]], idle: float) -> list[tuple[str, str]]:
    big, small = (spread(got[g]["ratio"])[0] for g in ("big", "small"))
    growth = spread(got["big"]["lpf_rss"])[0] - spread(got["small"]["lpf_rss"])[0]
    return [("big job: lpfilter ≥ LPRng's lpd", f"{verdict(big, 1.0, True)}, {big:.2f} ×"),
            ("small jobs: lpfilter ≥ LPRng's lpd", f"{verdict(small, 1.0, True)}, {small:.2f} ×"),
            ("memory flat: big-job peak − small-jobs peak < 4 MiB",
             f"{verdict(growth, 4 * MiB)}, {growth / MiB:.1f} MiB"),
            ("idle daemon: CPU over 5 s < 0.05 s", f"{verdict(idle, 0.05)}, {idle:.3f} s")]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="measured rounds (default 3)")
    parser.add_argument("--size", type=size_arg, default=2**30, help="the big job (default 1G)")
    parser.add_argument("--jobs", type=int, default=1000, help="1 KiB jobs (default 1000)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args(argv)
    if min(args.runs, args.jobs) < 1:
        parser.error("--runs and --jobs must be at least 1")
    missing = [p for p in (LPD, LPR) if not os.access(p, os.X_OK)]
    if missing or os.geteuid() != 0 or not shutil.which("unshare"):
        print(f"lpd_server_bench: needs root and LPRng (missing: {missing or 'none'})",
              file=sys.stderr)
        return 2
    say, load_before = progress(args.json), os.getloadavg()[0]
    with scratch_dirs("lpfilter-lpd-server-bench-", "/tmp") as (root,):
        lpd = daemon = None
        try:
            lpd, daemon = Lpd(root / "lpd"), Daemon(root)
            big = root / "big"
            block = os.urandom(MiB)
            with open(big, "wb") as out:
                for _ in range(args.size // MiB):
                    out.write(block)
            small = [root / f"job{i:05d}" for i in range(args.jobs)]
            for i, path in enumerate(small):
                path.write_bytes(f"job {i}\n".encode().ljust(SMALL - 1, b".") + b"\n")
            say("idle daemon: 5 s")
            idle = daemon.idle_cpu(5.0)
            say("warm-up round")
            one_round(lpd, daemon, big, small[:20], args.size, True)
            got: dict[str, dict[str, list[float]]] = {"big": {}, "small": {}}
            for number in range(args.runs):
                say(f"round {number + 1}/{args.runs}")
                result = one_round(lpd, daemon, big, small, args.size, number % 2 == 0)
                for group, figures in result.items():
                    for key, value in figures.items():
                        got[group].setdefault(key, []).append(value)
        except BenchError as exc:
            print(f"lpd_server_bench: cannot benchmark: {exc}", file=sys.stderr)
            return 2
        finally:
            if daemon is not None:
                daemon.stop()
            if lpd is not None:
                lpd.stop()
    info = {**machine_info(), "lpfilter": lpfilter_info(),
            "servers": "lpfilter watch --listen 127.0.0.1 and LPRng lpd -F, both printing to"
                       " /dev/null, spools on /tmp", "load average (1 min)":
            load_average(load_before)}
    if args.json:
        print(json.dumps({"info": info, "args": vars(args), "samples": got, "idle_cpu": idle,
                          "targets": verdicts(got, idle)}, indent=2))
        return 0
    print_info(info)
    print(f"{args.runs} rounds after a warm-up, order alternating; median (min–max)\n")
    for group, title in (("big", f"one {args.size / MiB:g} MiB job"),
                         ("small", f"{args.jobs} × 1 KiB jobs")):
        header("figure", title)
        for key, label, unit in FIGURES[group]:
            row(label, cell(got[group][key], unit))
        print()
    header("figure", "idle")
    row("lpfilter daemon: CPU time over 5 s idle, listener open", cell([idle], "s"))
    print()
    header("target", "result")
    for target, result in verdicts(got, idle):
        row(target, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
