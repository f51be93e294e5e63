#!/usr/bin/env python3
"""Start-up benchmark (issue 16): what one lpfilter command costs beyond the interpreter's
own start, and what that means for a loop of one command per small job.

Run it as root with the interpreter lpfilter is installed in; see bench/README.md.
(1) own cost: the wall time of `lpfilter print --no-wait`, `status` and `cancel`, each
minus that of `python -c pass` with the same interpreter, in interleaved rounds.
(2) --jobs × 1 KiB jobs, one command per job from a shell loop, to a socket printer (a
loopback sink that reads each connection to EOF and closes it): `lpfilter print --no-wait`
to a running `lpfilter watch` (EOF wait), LPRng's `lpr` to LPRng's lpd (in a private mount
namespace, as lpd_bench.py runs it, the queue's lp= the sink; by lpd's Unix socket, as
Debian's local users reach it, and by TCP), and CUPS's socket backend (from Debian's cups
package unpacked under .ci/cups), one process per job. (3) the same jobs through LPRng's
lpd with `if=lpfilter filter` in front of the same printer, both ways, and beside it two
floors by lpd's Unix socket: `if=` a shell running cat, and `if=` a script of this
interpreter that copies its input. (4) the instructions each command runs, counted once
by valgrind's callgrind (bench/instructions.py): the same every run, where wall times move.
A run ends when the sink has closed one connection per job, each checked by its marker.
LPRng's, CUPS's and valgrind's parts are left out (N/A) when they cannot run here.

A missed target prints MISS and still exits 0. Exit status 2: the benchmark could not run.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import instructions
from benchkit import (BenchError, clean_env, header, load_average, lpfilter_command,
                      lpfilter_info, machine_info, print_info, progress, row, scratch_dirs,
                      spread, verdict)

REPO = Path(__file__).resolve().parent.parent
CUPS_SOCKET = REPO / ".ci/cups/usr/lib/cups/backend-available/socket"
SMALL, TIMEOUT = 1024, 300.0
#: The jobs of each loop of ``--sustained``.
LONG_LOOP = 100
#: (4) counts a print on a queue whose journal holds the records of this many jobs that
#: a ``watch --once`` pass printed (it keeps them all until the journal passes 1 MiB;
#: of the finished tickets it keeps done_jobs and spool/worker.py's RECENT_MAX).
KEPT = 100
#: (4) counts every LOOP_EVERY-th print of LOOP_COUNTED in the per-job loop.
LOOP_COUNTED, LOOP_EVERY = 140, 7
OWN = ["print", "status", "cancel"]
#: (variant, label) of the loops of one command per job
#: LPRng's ``lpr -P q`` reaches a local lpd by its Unix socket, as on Debian, where lpd
#: listens on no TCP port by default; ``lpr -P q@127.0.0.1%PORT`` by TCP, where each job
#: waits out the receiver's 40 ms delayed ACK (bench/README.md, round 12).
LOOPS = [("lpf", "`lpfilter print --no-wait` → running `lpfilter watch`"),
         ("lprng", "LPRng `lpr` → LPRng lpd, Unix socket"),
         ("lprng_tcp", "LPRng `lpr` → LPRng lpd, TCP"),
         ("cups", "CUPS socket backend, one per job"),
         ("filter", "LPRng `lpr` → lpd, Unix socket, `if=lpfilter filter`"),
         ("filter_tcp", "LPRng `lpr` → lpd, TCP, `if=lpfilter filter`"),
         ("filter_cat", "LPRng `lpr` → lpd, Unix socket, `if=` sh running cat"
                        " (lpd's floor with a filter)"),
         ("filter_py", "LPRng `lpr` → lpd, Unix socket, `if=` Python copying stdin"
                       " (a Python filter's floor)")]
#: LPRng's queue of each of its loops (``_tcp``: by TCP, else by lpd's Unix socket).
LPD_QUEUES = {"lprng": "q", "lprng_tcp": "q", "filter": "f", "filter_tcp": "f",
              "filter_cat": "c", "filter_py": "p"}
#: The floors' filters, started by lpd per job with its options (which they ignore),
#: copying the job to the printer and nothing more: a shell running cat, and this
#: interpreter.
CAT_FLOOR = "#!/bin/sh\nexec /bin/cat\n"
PY_FLOOR = "#!{python}\nimport sys\nsys.stdout.buffer.write(sys.stdin.buffer.read())\n"


class Sink:
    """A socket printer on 127.0.0.1: each connection read to EOF, then closed; the time
    of each close and the first bytes are kept, in order."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port: int = self.listener.getsockname()[1]
        self.done: list[tuple[float, int, bytes]] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        got = bytearray()
        with conn:
            conn.settimeout(60)
            try:
                while chunk := conn.recv(65536):
                    got += chunk
            except OSError:
                pass
        with self.cond:
            self.done.append((time.perf_counter(), len(got), bytes(got[:256])))
            self.cond.notify_all()

    def take(self, markers: Sequence[bytes], what: str) -> float:
        """When the last of ``len(markers)`` connections closed; each marker seen once."""
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.done) >= len(markers), TIMEOUT):
                raise BenchError(f"{what}: the printer got {len(self.done)} of {len(markers)}"
                                 " jobs")
            got, self.done = self.done, []
        seen = sorted(m for m in markers if any(m in head for _, _, head in got))
        if len(got) != len(markers) or seen != sorted(markers):
            raise BenchError(f"{what}: {len(got)} connections, {len(seen)} of"
                             f" {len(markers)} jobs recognised")
        return max(end for end, _, _ in got)

    def close(self) -> None:
        self.listener.close()


def timed(argv: Sequence[str], env: dict[str, str], ok: Sequence[int] = (0,)) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(list(argv), env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=TIMEOUT, check=False)
    wall = time.perf_counter() - start
    if done.returncode not in ok:
        raise BenchError(f"{' '.join(argv)[:200]}: exit status {done.returncode}:"
                         f" {done.stderr[-800:]}")
    return wall, done.stdout


def own_round(lpf: list[str], env: dict[str, str], job: Path, samples: int,
              turn: int) -> dict[str, list[float]]:
    """``samples`` × (python -c pass, print --no-wait, status, cancel of that job), the
    order of the four rotated by ``turn``; queue ``own`` has no watcher, so the spool
    holds at most one job."""
    got: dict[str, list[float]] = {name: [] for name in ["python", *OWN]}
    for _ in range(samples):
        job_id = ""
        order = ["python", *OWN]
        order = order[turn % 4:] + order[:turn % 4]
        for name in order:
            if name == "python":
                wall, _ = timed([sys.executable, "-c", "pass"], env)
            elif name == "print":
                wall, out = timed([*lpf, "print", "--no-wait", "-P", "own", str(job)], env)
                job_id = out.strip().rpartition("-")[2]
            elif name == "status":
                wall, _ = timed([*lpf, "status", "-P", "own"], env)
            else:  # cancel the job just printed; before the print, one that is not there
                wall, _ = timed([*lpf, "cancel", "-P", "own", job_id or "999999"], env,
                                ok=(0, 1))
                job_id = ""
            got[name].append(wall)
        if job_id:
            timed([*lpf, "cancel", "-P", "own", job_id], env)
    return got


def counted(site: Site) -> dict[str, list[float]]:
    """(4) The instructions of ``python -c pass``, of pip's console-script wrapper alone,
    of ``print --no-wait``, ``status`` and ``cancel`` (of the job just printed), and of
    ``filter HOST%PORT < FILE`` to the sink, each run once under callgrind:
    ``instr_NAME``. The commands use queue ``count``, which nothing else uses, after one
    print and cancel of their own: what they read is the same whatever ran before. Last,
    ``print_kept``: a print on that queue once a pass printed KEPT jobs;
    ``print_loop``: a print of the per-job loop (``print_looping``)."""
    lpf, env, job = site.lpf, site.env, site.files[0]
    out = timed([*lpf, "print", "--no-wait", "-P", "count", str(job)], env)[1]
    timed([*lpf, "cancel", "-P", "count", out.strip().rpartition("-")[2]], env)
    python = [sys.executable, "-c"]
    got = {"python": instructions.count([*python, "pass"], env)[0],
           "wrapper": instructions.count([*python, instructions.wrapper(Path(lpf[0]))],
                                         env)[0]}
    got["print"], out = instructions.count([*lpf, "print", "--no-wait", "-P", "count",
                                            str(job)], env)
    got["status"] = instructions.count([*lpf, "status", "-P", "count"], env)[0]
    job_id = out.strip().rpartition("-")[2]
    got["cancel"] = instructions.count([*lpf, "cancel", "-P", "count", job_id], env)[0]
    got["filter"] = instructions.count([*lpf, "filter", f"127.0.0.1%{site.sink.port}"], env,
                                       stdin=job)[0]
    site.sink.take([f"@@{job.name}@@".encode()], "filter under callgrind")
    got["filter_if"] = filter_as_if(site)
    got["print_kept"] = print_kept(site)
    got["print_loop"] = print_looping(site)
    return {f"instr_{name}": [float(value)] for name, value in got.items()}


def filter_as_if(site: Site) -> int:
    """The instructions of ``lpfilter filter`` as LPRng's lpd runs an ``if=`` filter for a
    queue whose ``lp=`` is the sink: the entry in PRINTCAP_ENTRY, lpd's options, the job on
    standard input and lpd's connection to the printer as standard output (loop (3)'s
    filter)."""
    lpf, job, port = site.lpf, site.files[1 % len(site.files)], site.sink.port
    env = {**site.env, "PRINTCAP_ENTRY": f"f:lp=127.0.0.1%{port}:pjl@:sd={site.root}\n"}
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as printer:
        counted = instructions.count([*lpf, "filter", "-Pf", "-Jcount", "-nroot",
                                      "-hlocalhost"], env, stdin=job, stdout=printer)[0]
    site.sink.take([f"@@{job.name}@@".encode()], "filter as if= under callgrind")
    return counted


def print_kept(site: Site) -> int:
    """The instructions of ``print --no-wait`` on queue ``count`` once ``watch --once``
    printed KEPT jobs: a working queue's journal, which every command replays (a pass
    does not compact it below 1 MiB, so it holds every record of those jobs)."""
    lpf, env, job = site.lpf, site.env, site.files[0]
    shell_loop([], f'"{lpf[0]}" print --no-wait -P count "$f" >/dev/null', [job] * KEPT, env)
    timed([*lpf, "watch", "--once", "-q", "-P", "count"], env)
    return instructions.count([*lpf, "print", "--no-wait", "-P", "count", str(job)], env)[0]


def print_looping(site: Site) -> float:
    """The mean instructions of ``print --no-wait`` in the per-job loop (queue ``sock``,
    its running watcher sending each job as it comes and compacting the journal now and
    then), counted at every LOOP_EVERY-th of LOOP_COUNTED jobs: a stride the compactions
    do not keep step with (every 25th job, say, fell each time at the same point of
    their cycle)."""
    lpf, env = site.lpf, site.env
    files = [job_file(site.root, f"count{n:05d}") for n in range(1, LOOP_COUNTED + 1)]
    counts = []
    for number, path in enumerate(files, 1):
        argv = [*lpf, "print", "--no-wait", "-P", "sock", str(path)]
        if number % LOOP_EVERY:
            timed(argv, env)
        else:
            counts.append(instructions.count(argv, env)[0])
    site.sink.take([f"@@{p.name}@@".encode() for p in files], "the counted loop")
    return statistics.mean(counts)


def shell_loop(prefix: Sequence[str], command: str, files: Sequence[Path],
               env: dict[str, str]) -> float:
    """Run ``command`` once per file from one shell, one after another; the start time."""
    start = time.perf_counter()
    done = subprocess.run([*prefix, "sh", "-c", f'for f do {command} || exit 1; done', "sh",
                           *map(str, files)], env=env, capture_output=True, timeout=TIMEOUT,
                          check=False)
    if done.returncode != 0:
        raise BenchError(f"{command}: exit status {done.returncode}:"
                         f" {done.stderr.decode(errors='replace')[-800:]}")
    return start


def job_file(root: Path, name: str) -> Path:
    """A 1 KiB job whose first line is its marker (``@@name@@``)."""
    path = root / name
    path.write_bytes(f"@@{name}@@\n".encode().ljust(SMALL - 1, b".") + b"\n")
    return path


class Site:
    """The printcap, the watcher, the sink, and LPRng's lpd when it can run here."""

    def __init__(self, root: Path, args: argparse.Namespace) -> None:
        self.sink, self.lpf = Sink(), lpfilter_command()
        self.env = clean_env(root)
        sd = {name: root / f"sd-{name}" for name in ("own", "sock", "count")}
        for path in sd.values():
            path.mkdir()
        printcap = root / "printcap"
        printcap.write_text(f"own:lp=/dev/null:sd={sd['own']}\n"
                            f"sock:lp=127.0.0.1%{self.sink.port}:sd={sd['sock']}\n"
                            f"count:lp=/dev/null:sd={sd['count']}\n")
        self.env["LPFILTER_PRINTCAP"] = str(printcap)
        self.root = root
        self.files = [job_file(root, f"job{i:05d}") for i in range(args.jobs)]
        self.watch = subprocess.Popen([*self.lpf, "watch", "-q", "-P", "sock"], env=self.env,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True)
        lock = sd["sock"] / ".lpfilter" / "queue.lock"
        deadline = time.monotonic() + 30
        while str(self.watch.pid) not in (lock.read_text() if lock.exists() else ""):
            if self.watch.poll() is not None or time.monotonic() > deadline:
                raise BenchError("lpfilter watch did not start serving queue sock")
            time.sleep(0.02)
        self.cups = Path(args.cups_socket) if os.access(args.cups_socket, os.X_OK) else None
        self.lpd = self._lpd(root / "lpd") if args.lprng else None

    def _lpd(self, root: Path) -> Any:
        import lpd_bench
        if os.geteuid() != 0 or not os.access(lpd_bench.LPD, os.X_OK) or not shutil.which(
                "unshare"):
            return None
        common = ":sh:sf:ff_separator@:fo@:fq@:tr=:mx=0:"
        printer = f"lp=127.0.0.1%{self.sink.port}{common}"
        floors = {"c": self.root / "cat-floor-filter", "p": self.root / "py-floor-filter"}
        floors["c"].write_text(CAT_FLOOR)
        floors["p"].write_text(PY_FLOOR.format(python=sys.executable))
        for path in floors.values():
            path.chmod(0o755)
        lpd_bench.PRINTCAP = (  # lpd_bench's Lpd writes this printcap ({root} filled in)
            f"q:sd={{root}}/spool/q:{printer}\n"
            f"f:sd={{root}}/spool/f:{printer}pjl@:if={' '.join(self.lpf)} filter:\n"
            f"c:sd={{root}}/spool/c:{printer}if={floors['c']}:\n"
            f"p:sd={{root}}/spool/p:{printer}if={floors['p']}:\n"
            f"check:sd={{root}}/spool/check:lp=/dev/null{common}\n")
        for queue in "fcp":
            (root / "spool" / queue).mkdir(parents=True)
        return lpd_bench.Lpd(root, unix_socket=True)

    def loop(self, variant: str) -> float:
        """One command per job, every job to the printer: jobs/s."""
        markers = [f"@@{p.name}@@".encode() for p in self.files]
        if variant == "lpf":
            start = shell_loop([], f'"{self.lpf[0]}" print --no-wait -P sock "$f" >/dev/null',
                               self.files, self.env)
        elif variant == "cups":
            empty = self.files[0].parent / "cups-etc"
            empty.mkdir(exist_ok=True)
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C",
                   "DEVICE_URI": f"socket://127.0.0.1:{self.sink.port}",
                   "CUPS_SERVERROOT": str(empty), "CUPS_DATADIR": str(empty)}
            start = shell_loop([], f'"{self.cups}" 1 bench job 1 "" "$f" 2>/dev/null',
                               self.files, env)
        else:
            lpd = self.lpd
            queue = LPD_QUEUES[variant]
            if variant.endswith("_tcp"):
                queue += f"@127.0.0.1%{lpd.port}"
            import lpd_bench
            start = shell_loop(lpd.nsenter(), f'"{lpd_bench.LPR}" -P {queue} "$f"',
                               self.files, os.environ.copy())
        return len(self.files) / (self.sink.take(markers, variant) - start)

    def close(self) -> None:
        if self.watch.poll() is None:
            self.watch.terminate()
            try:
                self.watch.wait(15)
            except subprocess.TimeoutExpired:
                self.watch.kill()
                self.watch.wait(10)
        if self.lpd is not None:
            self.lpd.stop()
        self.sink.close()


def measure(site: Site, args: argparse.Namespace) -> dict[str, list[float]]:
    say, got = progress(args.json), {}
    variants = [v for v, _ in LOOPS if (v != "cups" or site.cups) and
                (v in ("lpf", "cups") or site.lpd is not None)]
    job = site.files[0]
    say("warm-up round")
    own_round(site.lpf, site.env, job, 2, 0)
    for variant in variants:
        site.loop(variant)
    for number in range(args.runs):
        say(f"round {number + 1}/{args.runs}")
        for name, walls in own_round(site.lpf, site.env, job, args.samples, number).items():
            got.setdefault(name, []).append(statistics.median(walls))
        for variant in variants[number % len(variants):] + variants[:number % len(variants)]:
            got.setdefault(variant, []).append(site.loop(variant))
        for name in OWN:
            got.setdefault(f"{name}_own", []).append(got[name][-1] - got["python"][-1])
    return got


def sustained(site: Site, count: int) -> list[float]:
    """``count`` jobs by ``print --no-wait`` loops of LONG_LOOP, back to back, as a long
    batch runs them: each loop's jobs/s. The queue keeps finished jobs for those who wait
    for them, and every command reads what its queue keeps: a later loop pays for what
    the earlier ones left (bench/README.md, round 10)."""
    files, rates = site.files, []
    try:
        for first in range(0, count, LONG_LOOP):
            site.files = [job_file(site.root, f"long{n:05d}")
                          for n in range(first, min(count, first + LONG_LOOP))]
            rates.append(site.loop("lpf"))
    finally:
        site.files = files
    return rates


def cell(samples: list[float] | None, unit: str) -> str:
    if not samples:
        return "N/A"
    fmt = {"ms": lambda v: f"{v * 1e3:.1f} ms", "rate": lambda v: f"{v:,.0f} jobs/s",
           "x": lambda v: f"{v:.2f} ×"}[unit]
    med, low, high = spread(samples)
    return fmt(med) if len(samples) == 1 else f"{fmt(med)} ({fmt(low)}–{fmt(high)})"


def verdicts(got: dict[str, list[float]]) -> list[tuple[str, str]]:
    out = []
    for name in OWN:
        own = spread(got[f"{name}_own"])[0]
        out.append((f"`{name}`: own cost (wall − `python -c pass`) ≤ 25 ms",
                    f"{verdict(own, 0.025 + 1e-9)}, {own * 1e3:.1f} ms"))
    rate = spread(got["lpf"])[0]
    out.append(("one `print --no-wait` per job ≥ 40 jobs/s",
                f"{verdict(rate, 40, higher=True)}, {rate:,.0f} jobs/s"))
    if got.get("filter"):
        rate = spread(got["filter"])[0]
        out.append(("`lpfilter filter` under lpd ≥ 60 jobs/s",
                    f"{verdict(rate, 60, higher=True)}, {rate:,.0f} jobs/s"))
    return out


def report(got: dict[str, list[float]], info: dict[str, object], args: argparse.Namespace) -> None:
    print_info(info)
    print(f"\n{args.runs} rounds after a warm-up, order rotated each round; median (min–max)"
          " over rounds\n")
    header("command (wall)", f"median of {args.samples} per round", "own cost: − `python -c pass`")
    row("`python -c pass`", cell(got["python"], "ms"), "")
    for name in OWN:
        label = {"print": "`lpfilter print --no-wait -P own FILE`",
                 "status": "`lpfilter status -P own`", "cancel": "`lpfilter cancel -P own ID`"}
        row(label[name], cell(got[name], "ms"), cell(got[f"{name}_own"], "ms"))
    floor = 1 / spread(got["python"])[0]
    print()
    header(f"{args.jobs} × 1 KiB, one command per job", "jobs/s", "÷ lpfilter")
    for variant, label in LOOPS:
        ratio = [v / p for v, p in zip(got[variant], got["lpf"])] if got.get(variant) else None
        row(label, cell(got.get(variant), "rate"), cell(ratio, "x") if variant != "lpf" else "")
    row("floor: 1 / (`python -c pass`)", f"{floor:,.0f} jobs/s", "")
    if got.get("filter") and got.get("filter_py"):
        near = [f / p for f, p in zip(got["filter"], got["filter_py"])]
        row("`lpfilter filter` ÷ the Python filter's floor, under lpd", cell(near, "x"), "")
    if got.get("sustained"):
        rates = got["sustained"]
        print()
        header(f"{args.sustained} × 1 KiB by `print --no-wait`, loops of {LONG_LOOP} back to"
               " back", "jobs/s")
        row("the first loop", f"{rates[0]:,.0f} jobs/s")
        row("the last loop", f"{rates[-1]:,.0f} jobs/s")
        row("the slowest loop", f"{min(rates):,.0f} jobs/s")
    if got.get("instr_python"):
        print()
        header("one run under callgrind", "instructions", "− `python -c pass`")
        base = got["instr_python"][0]
        for name, label in [("python", "`python -c pass`"),
                            ("wrapper", "the installed `lpfilter` wrapper alone"),
                            ("print", "`lpfilter print --no-wait -P count FILE`"),
                            ("print_kept", f"the same, after a `watch --once` pass printed"
                                           f" {KEPT} jobs"),
                            ("print_loop", f"`print --no-wait -P sock` in the per-job loop,"
                                           f" mean of every {LOOP_EVERY}th of"
                                           f" {LOOP_COUNTED}"),
                            ("status", "`lpfilter status -P count`"),
                            ("cancel", "`lpfilter cancel -P count ID`"),
                            ("filter", "`lpfilter filter 127.0.0.1%PORT < FILE` (as `lp=\\|`,"
                                       " no lpd)"),
                            ("filter_if", "`lpfilter filter -Pf … < FILE` as lpd's `if=`,"
                                          " standard output lpd's socket to the printer")]:
            value = got[f"instr_{name}"][0]
            row(label, f"{value / 1e6:,.1f} M", f"{(value - base) / 1e6:,.1f} M" if
                name != "python" else "")
    print()
    header("target", "result")
    for target, result in verdicts(got):
        row(target, result)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument("--samples", type=int, default=10,
                        help="runs of each command per round for the own cost (default 10)")
    parser.add_argument("--jobs", type=int, default=100, help="1 KiB jobs per loop (default 100)")
    parser.add_argument("--cups-socket", default=os.environ.get("LPFILTER_CUPS_SOCKET",
                                                                str(CUPS_SOCKET)),
                        help=f"CUPS's socket backend (default {CUPS_SOCKET})")
    parser.add_argument("--no-lprng", dest="lprng", action="store_false",
                        help="leave LPRng's lpd out")
    parser.add_argument("--sustained", type=int, default=0, metavar="N",
                        help=f"also N jobs in loops of {LONG_LOOP} back to back (default 0)")
    parser.add_argument("--no-instructions", dest="instructions", action="store_false",
                        help="leave out (4), the instructions counted by valgrind")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args(argv)
    if min(args.runs, args.samples, args.jobs) < 1:
        parser.error("--runs, --samples and --jobs must be at least 1")
    if len(lpfilter_command()) != 1:
        print("startup_bench: needs the lpfilter script beside this interpreter", file=sys.stderr)
        return 2
    load_before, began = os.getloadavg()[0], time.monotonic()
    with scratch_dirs("lpfilter-startup-bench-", "/tmp") as (root,):
        site = None
        try:
            site = Site(root, args)
            got = measure(site, args)
            if args.instructions and instructions.valgrind():
                progress(args.json)("instructions, under callgrind")
                got.update(counted(site))
            if args.sustained > 0:
                progress(args.json)(f"sustained: {args.sustained} jobs")
                got["sustained"] = sustained(site, args.sustained)
            cups, lpd = site.cups, site.lpd
        except BenchError as exc:
            print(f"startup_bench: cannot benchmark: {exc}", file=sys.stderr)
            return 2
        finally:
            if site is not None:
                site.close()
    info = {**machine_info(), "python": f"{sys.version.split()[0]} ({sys.executable})",
            "lpfilter": lpfilter_info(),
            "CUPS socket backend": str(cups) if cups else "not found (N/A)",
            "LPRng lpd": "running in a private mount namespace" if lpd else "not run (N/A)",
            "valgrind": instructions.valgrind() or "not found: (4) N/A",
            "load average (1 min)": load_average(load_before),
            "run time": f"{time.monotonic() - began:.0f} s"}
    if args.json:
        print(json.dumps({"info": info, "args": vars(args), "samples": got,
                          "targets": verdicts(got)}, indent=2))
    else:
        report(got, info, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
