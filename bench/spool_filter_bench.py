#!/usr/bin/env python3
"""Filter benchmark: one big job through `if=cat` to a socket printer on loopback, lpfilter's
`watch --once` against LPRng's lpd doing the same printing.

Run it as root with the interpreter lpfilter is installed in; see bench/README.md. The
printer is a sink in this process (a TCP server on 127.0.0.1 reading every connection to
its end). Both queues are `lp=127.0.0.1%PORT` with `if=-$ CAT` (`cat` as found on PATH,
`-$`: no options appended, which cat would refuse), `sh` (no banner). lpfilter: the job is
spooled first (`print --no-wait`, untimed), then `watch --once -P q` is timed. LPRng: lpd
runs as in lpd_bench.py (a private mount namespace, its queue `q`), the job is given with
`lpr` (LPRng copies it into its spool first); its printing is what is compared. The rate
of each is the size over the sink's first byte to its last; the peak RSS is sampled every
10 ms over the printing process and its children (lpfilter's watch and cat; lpd and every
process it started).

A missed target prints MISS and still exits 0: this is a benchmark, not a test. Exit
status 2 means it could not run (LPRng missing, not root, a command failed).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import lpd_bench
import psutil
from benchkit import (BenchError, clean_env, header, load_average, lpfilter_command,
                      lpfilter_info, machine_info, print_info, progress, row, rss_sampler,
                      scratch_dirs, size_arg, spread, verdict)
from lpd_bench import LPD, LPR, Lpd

MB, MiB = 1e6, 2**20
TIMEOUT = 900.0


class Sink:
    """A printer that takes everything: one connection at a time, read to its end."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.first = self.last = 0.0
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def reset(self) -> None:
        self.first = self.last = 0.0
        self.received = 0

    def _serve(self) -> None:
        buffer = bytearray(1 << 20)
        self.server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            with conn:
                while got := conn.recv_into(buffer):
                    now = time.perf_counter()
                    self.first = self.first or now
                    self.received += got
                    self.last = now

    def wait(self, size: int, what: str) -> float:
        """Seconds from the first byte to the last, once ``size`` bytes came."""
        deadline = time.monotonic() + TIMEOUT
        while self.received < size:
            if time.monotonic() > deadline:
                raise BenchError(f"{what}: the printer got {self.received} of {size} bytes")
            time.sleep(0.01)
        return self.last - self.first

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.server.close()


def run_lpfilter(root: Path, sink: Sink, big: Path, size: int, cat: str) -> tuple[float, int]:
    sd = root / "lpf-sd"
    sd.mkdir(exist_ok=True)
    printcap = root / "lpf-printcap"
    printcap.write_text(f"q:sd={sd}:lp=127.0.0.1%{sink.port}:if=-$ {cat}:sh\n")
    env = clean_env(root)
    base = [*lpfilter_command(), "--printcap", str(printcap)]
    subprocess.run([*base, "print", "--no-wait", "-P", "q", str(big)], env=env, check=True,
                   capture_output=True, timeout=TIMEOUT)
    sink.reset()
    proc = subprocess.Popen([*base, "watch", "--once", "-P", "q"], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    stop = rss_sampler(psutil.Process(proc.pid), tree=True)
    try:
        seconds = sink.wait(size, "lpfilter")
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        peak = stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    if proc.returncode != 0:
        raise BenchError(f"lpfilter watch --once exited {proc.returncode}: {err.decode()}")
    for ticket in (sd / ".lpfilter" / "jobs").glob("*.job"):
        ticket.unlink()
    return seconds, peak


def run_lprng(lpd: Lpd, sink: Sink, big: Path, size: int) -> tuple[float, int]:
    sink.reset()
    stop = rss_sampler(psutil.Process(lpd.proc.pid), tree=True)  # type: ignore[union-attr]
    try:
        done = subprocess.run([*lpd.nsenter(), LPR, "-P", lpd.queue, str(big)],
                              capture_output=True, timeout=TIMEOUT, check=False)
        if done.returncode != 0:
            raise BenchError(f"lpr exited {done.returncode}: {done.stderr.decode()}")
        seconds = sink.wait(size, "LPRng")
        lpd.drain("LPRng")
    finally:
        peak = stop()
    return seconds, peak


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="measured rounds (default 3)")
    parser.add_argument("--size", type=size_arg, default=2**30, help="the job (default 1G)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args(argv)
    cat = shutil.which("cat") or "/bin/cat"
    missing = [p for p in (LPD, LPR) if not os.access(p, os.X_OK)]
    if missing or os.geteuid() != 0 or not shutil.which("unshare"):
        print(f"spool_filter_bench: needs root and LPRng (missing: {missing or 'none'})",
              file=sys.stderr)
        return 2
    say, load_before = progress(args.json), os.getloadavg()[0]
    got: dict[str, list[float]] = {}
    with scratch_dirs("lpfilter-filter-bench-", "/tmp") as (root,):
        sink, lpd = Sink(), None
        try:
            lpd_bench.PRINTCAP = (f"q:sd={{root}}/spool/q:lp=127.0.0.1%{sink.port}:if=-$ {cat}"
                                  ":sh:sf:ff_separator@:fo@:fq@:tr=:mx=0:\n")
            lpd = Lpd(root / "lpd")
            big = root / "big"
            block = os.urandom(MiB)
            with open(big, "wb") as out:
                for _ in range(max(1, args.size // MiB)):
                    out.write(block)
            size = big.stat().st_size
            for number in range(args.runs):
                say(f"round {number + 1}/{args.runs}")
                order = ("lpfilter", "lprng") if number % 2 == 0 else ("lprng", "lpfilter")
                figures: dict[str, float] = {}
                for who in order:
                    if who == "lpfilter":
                        seconds, peak = run_lpfilter(root, sink, big, size, cat)
                    else:
                        seconds, peak = run_lprng(lpd, sink, big, size)
                    figures[f"{who}_rate"] = size / max(seconds, 1e-9)
                    figures[f"{who}_rss"] = float(peak)
                figures["ratio"] = figures["lpfilter_rate"] / figures["lprng_rate"]
                for key, value in figures.items():
                    got.setdefault(key, []).append(value)
        except (BenchError, subprocess.CalledProcessError) as exc:
            print(f"spool_filter_bench: cannot benchmark: {exc}", file=sys.stderr)
            return 2
        finally:
            if lpd is not None:
                lpd.stop()
            sink.stop()
    ratio = spread(got["ratio"])[0]
    rss_ratio = spread(got["lpfilter_rss"])[0] / max(1.0, spread(got["lprng_rss"])[0])
    targets = [("rate: lpfilter ≥ LPRng's", verdict(ratio, 1.0, higher=True)),
               ("memory flat: lpfilter's peak RSS < 64 MiB",
                verdict(spread(got["lpfilter_rss"])[0], 64 * MiB))]
    info = {**machine_info(), "lpfilter": lpfilter_info(), "filter": f"if=-$ {cat}",
            "printer": "a sink on 127.0.0.1 reading to EOF", "load average (1 min)":
            load_average(load_before)}
    if args.json:
        print(json.dumps({"info": info, "args": vars(args), "samples": got,
                          "targets": targets}, indent=2))
        return 0
    print_info(info)
    print(f"{args.runs} rounds, order alternating; median (min–max)\n")
    header("figure", f"one {args.size / MiB:g} MiB job through if=cat")
    for key, label, unit in (("lpfilter_rate", "lpfilter `watch --once`: rate", "MB/s"),
                             ("lprng_rate", "LPRng lpd: rate", "MB/s"),
                             ("ratio", "rate, lpfilter / LPRng", "x"),
                             ("lpfilter_rss", "lpfilter: peak RSS (watch + cat)", "MiB"),
                             ("lprng_rss", "LPRng: peak RSS (lpd + its processes)", "MiB")):
        scale = {"MB/s": MB, "MiB": MiB, "x": 1.0}[unit]
        median, low, high = spread([v / scale for v in got[key]])
        row(label, f"{median:.2f} {unit} ({low:.2f}–{high:.2f})")
    row("peak RSS, lpfilter / LPRng", f"{rss_ratio:.2f} x")
    print()
    header("target", "result")
    for target, result in targets:
        row(target, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
