#!/usr/bin/env python3
"""The journal under SpoolStore (issue 16, phase 1), before and after, on the same disk.

Three paths of 1 KiB jobs into a queue printing to /dev/null, each a fresh command, with
the rounds interleaved between the packages compared (``--before DIR`` and ``--after
DIR``: snapshots put first on PYTHONPATH, e.g. ``git archive REV lpfilter | tar -x -C
DIR``): the hot folder taken in and printed by ``watch --once``; ``watch --once`` of jobs
already spooled; ``print --no-wait`` given every file in one command. With ``--strace``,
one more run of each under ``strace -f -c`` gives the system calls per job.

A benchmark, not a test: it prints Markdown tables and exits 0 (2: it could not run).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchkit import BenchError, clean_env, header, row, spread

CALLS = ("fdatasync", "fsync", "openat", "rename", "unlink", "flock", "write", "pread64",
         "mkdir")


def _env(tmp: Path, package: str) -> dict[str, str]:
    env = clean_env(tmp)
    env["PYTHONPATH"] = package
    env["LPFILTER_PRINTCAP"] = str(tmp / "printcap")
    return env


def _fresh(tmp: Path, jobs: int) -> tuple[Path, list[Path]]:
    """A queue q (sd in ``tmp``) and ``jobs`` 1 KiB files to print."""
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    sd = tmp / "sd"
    sd.mkdir(mode=0o700)
    (tmp / "printcap").write_text(f"q:sd={sd}:lp=/dev/null:done_jobs=100000\n")
    files = tmp / "files"
    files.mkdir()
    made = []
    for n in range(jobs):
        path = files / f"f{n:05d}.txt"
        path.write_bytes(f"{n:08d}".encode().ljust(1023, b"x") + b"\n")
        made.append(path)
    return sd, made


def _run(argv: list[str], env: dict[str, str], cwd: Path, trace: Path | None = None) -> float:
    command = [sys.executable, "-m", "lpfilter", *argv]
    if trace is not None:
        command = ["strace", "-f", "-c", "-o", str(trace), *command]
    began = time.perf_counter()
    # cwd: ``python -m`` puts the current folder first on sys.path, before PYTHONPATH: run
    # from a checkout, both packages were that checkout's lpfilter.
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900,
                          check=False, stdin=subprocess.DEVNULL, cwd=cwd)
    took = time.perf_counter() - began
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv[:3])}: exit {done.returncode}: {done.stderr[-400:]}")
    return took


def _kind(kind: str, tmp: Path, package: str, jobs: int,
          trace: Path | None = None) -> float:
    """One run of one path; returns its wall time (only the command measured)."""
    sd, files = _fresh(tmp, jobs)
    env = _env(tmp, package)
    if kind == "hot folder + watch --once":
        _run(["checkpc", "--fix"], env, tmp)
        for path in files:
            os.rename(path, sd / path.name)
        return _run(["watch", "--once", "-q", "-P", "q"], env, tmp, trace)
    if kind == "watch --once, spooled":
        _run(["print", "--no-wait", "-P", "q", *map(str, files)], env, tmp)
        return _run(["watch", "--once", "-q", "-P", "q"], env, tmp, trace)
    return _run(["print", "--no-wait", "-P", "q", *map(str, files)], env, tmp, trace)


def _counts(trace: Path, jobs: int) -> dict[str, float]:
    """strace -c's calls column, per job."""
    found: dict[str, float] = {}
    for line in trace.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[-1] in CALLS and re.fullmatch(r"\d+", parts[3]):
            found[parts[-1]] = int(parts[3]) / jobs
    return found


KINDS = ("hot folder + watch --once", "watch --once, spooled", "print FILE x N, --no-wait")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the package before (PYTHONPATH)")
    parser.add_argument("--after", required=True, help="the package after (PYTHONPATH)")
    parser.add_argument("--runs", type=int, default=3, help="measured rounds (default 3)")
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per run (default 1000)")
    parser.add_argument("--dir", default="/tmp", help="where the spools go (default /tmp)")
    parser.add_argument("--strace", action="store_true", help="also count system calls")
    args = parser.parse_args(argv)
    packages = {"before": args.before, "after": args.after}
    root = Path(tempfile.mkdtemp(prefix="lpfilter-journal-bench-", dir=args.dir))
    rates: dict[tuple[str, str], list[float]] = {}
    counts: dict[tuple[str, str], dict[str, float]] = {}
    try:
        for round_ in range(args.runs + 1):  # the first is a warm-up (.pyc files)
            for kind in KINDS:
                for name, package in packages.items():
                    took = _kind(kind, root / "q", package, args.jobs)
                    if round_:
                        rates.setdefault((kind, name), []).append(args.jobs / took)
        if args.strace:
            for kind in KINDS:
                for name, package in packages.items():
                    _kind(kind, root / "q", package, args.jobs, root / "trace")
                    counts[(kind, name)] = _counts(root / "trace", args.jobs)
    except BenchError as exc:
        print(f"journal_store_bench: cannot benchmark: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{args.jobs} x 1 KiB jobs in {args.dir}, {args.runs} rounds, load"
          f" {os.getloadavg()[0]:.1f}\n")
    header("jobs/s, median (min-max)", *packages)
    for kind in KINDS:
        cells = []
        for name in packages:
            mid, low, high = spread(rates[(kind, name)])
            cells.append(f"{mid:,.0f} ({low:,.0f}-{high:,.0f})")
        row(kind, *cells)
    if counts:
        print()
        header("system calls per job", *(f"{kind}: {name}" for kind in KINDS
                                          for name in packages))
        for call in CALLS:
            row(call, *(f"{counts[(kind, name)].get(call, 0.0):.2f}" for kind in KINDS
                        for name in packages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
