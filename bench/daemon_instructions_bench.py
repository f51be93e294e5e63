#!/usr/bin/env python3
"""The instructions lpfilter's LPD daemon runs per job received and printed (issue 16, round 13).

The daemon's CPU per job (lpd_server_bench.py) moves by 10-20 % between runs on this shared
machine, more than most changes to its receiving or printing path. valgrind's callgrind
counts the instructions a process runs, the same from run to run: here the daemon
(`watch --listen 127.0.0.1:PORT`, queue `q` printing to a socket printer, a sink in this
process) runs under callgrind twice, taking --few jobs and then --few + --jobs jobs from
lpd_server_bench.py's Python client (one process, one connection per job, each job's final
acknowledgement awaited, 1 KiB each). The difference over --jobs is the instructions of
one job received and printed, all of the daemon's threads together; start-up and shutdown
cancel out. Only user-space instructions count: the kernel's work (TCP, fdatasync) does
not, and neither do waits.

Under callgrind the daemon runs ~50 times slower, one thread at a time: what depends on
time (the status line every 0.25 s, the idle flush after 0.1 s, pruning once a second)
happens as often per second, so less often per job. A figure is for comparing two
versions in the same run (--before PYTHON: the lpfilter installed for that interpreter),
not for converting to milliseconds. Runs ~1 minute per version with the defaults.

Exit status 2 means it could not run (valgrind missing, a command failed).
"""
from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import instructions
from benchkit import (BenchError, clean_env, header, lpfilter_command, machine_info, print_info,
                      progress, row)
from lpd_bench import free_port
from lpd_server_bench import CLIENT, SMALL, Sink, command_of

TIMEOUT = 900.0


def daemon_run(command: list[str], jobs: int, root: Path, *, counted: bool = True) -> int:
    """The instructions of one daemon (``command``), from its start to its exit after
    SIGTERM, having received and printed ``jobs`` jobs (not ``counted``: run without
    valgrind, 0)."""
    sink = Sink()
    try:
        (root / "sd").mkdir()
        printcap = root / "printcap"
        printcap.write_text(f"q:lp=127.0.0.1%{sink.port}:sd={root / 'sd'}\n")
        port, log = free_port(), root / "callgrind.log"
        tool = instructions.under_callgrind(log) if counted else []
        argv = [*tool, *command, "--printcap", str(printcap), "watch", "--listen",
                f"127.0.0.1:{port}"]
        with (root / "stderr").open("wb") as err:
            proc = subprocess.Popen(argv, env=clean_env(root), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err,
                                    start_new_session=True)
        try:
            _listening(proc, port, root)
            client = subprocess.run([sys.executable, "-c", CLIENT, str(port), "t", "0",
                                     str(jobs)], capture_output=True, timeout=TIMEOUT,
                                    check=False)
            if client.returncode != 0:
                raise BenchError(f"the Python client failed: {client.stderr[-800:]!r}")
            _printed(sink, jobs)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        return instructions.collected(log, "the daemon") if counted else 0
    finally:
        sink.close()


def _listening(proc: subprocess.Popen[bytes], port: int, root: Path) -> None:
    """Wait (bounded) until the daemon under callgrind accepts connections."""
    deadline = time.monotonic() + 180
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError("the daemon did not listen under callgrind:"
                                 f" {(root / 'stderr').read_text()[-800:]}") from None
            time.sleep(0.2)


def _printed(sink: Sink, jobs: int) -> None:
    """Wait (bounded) until the printer has every job's bytes, then a little more: the
    daemon's last records and its idle flush happen before it is stopped, in every run."""
    deadline = time.monotonic() + TIMEOUT
    while sink.bytes < jobs * SMALL:
        if time.monotonic() > deadline:
            raise BenchError(f"{sink.bytes} of {jobs * SMALL} bytes printed")
        time.sleep(0.1)
    time.sleep(3)


def per_job(command: list[str], few: int, jobs: int) -> tuple[float, int]:
    """(instructions per job, instructions of the run with ``few`` jobs), after a run not
    counted: the modules' bytecode is compiled and cached before the counted runs."""
    counts = []
    for count, counted in ((few, False), (few, True), (few + jobs, True)):
        with tempfile.TemporaryDirectory(prefix="lpfilter-daemon-instr-", dir="/tmp") as tmp:
            counts.append(daemon_run(command, count, Path(tmp), counted=counted))
    counts.pop(0)
    return (counts[1] - counts[0]) / jobs, counts[0]


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100, help="jobs counted (default 100)")
    parser.add_argument("--few", type=int, default=10,
                        help="jobs of the run subtracted (default 10)")
    parser.add_argument("--before", metavar="PYTHON",
                        help="also count the lpfilter installed for this interpreter")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if instructions.valgrind() is None:
        print("daemon_instructions_bench: needs valgrind", file=sys.stderr)
        return 2
    say = progress(args.json)
    versions = {"this": lpfilter_command()}
    if args.before:
        versions["before"] = command_of(args.before)
    got: dict[str, dict[str, float]] = {}
    try:
        for name, command in versions.items():
            say(f"{name}: {args.few} and {args.few + args.jobs} jobs under callgrind")
            job, few = per_job(command, args.few, args.jobs)
            got[name] = {"per_job": job, "run_of_few": float(few)}
    except BenchError as exc:
        print(f"daemon_instructions_bench: cannot benchmark: {exc}", file=sys.stderr)
        return 2
    info = {**machine_info(), **{f"lpfilter ({name})": " ".join(command)
                                 for name, command in versions.items()}}
    if args.json:
        print(json.dumps({"info": info, "args": vars(args), "instructions": got}, indent=2))
        return 0
    print_info(info)
    header("lpfilter", "instructions per job received and printed",
           f"a run of {args.few} jobs (start, jobs, stop)")
    for name, figures in got.items():
        row(name, f"{figures['per_job'] / 1e6:.2f} M", f"{figures['run_of_few'] / 1e6:.0f} M")
    return 0


if __name__ == "__main__":
    sys.exit(main())
