#!/usr/bin/env python3
"""LPRng drop-in benchmark: `lpfilter filter` run the way lpd runs it, against nc and cat.

Run it with the interpreter lpfilter is installed in; see bench/README.md. The printer is
a raw TCP sink in its own process (this script with --serve). (a) lp=| device mode: a big
job written by this script (as lpd) into a socketpair whose other end is fds 0, 1, 2 of
`lpfilter filter 127.0.0.1%PORT <lpd's options> acct`, against `nc -N`; (b) if= mode: the
spool file as stdin, a TCP socket to the printer as stdout, against `cat`; (c) small jobs,
one process each in lp=| mode. The promise checked: "streaming costs no more than nc";
a MISS still exits 0. Exit status 2: the benchmark could not run.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchkit import (BenchError, add_options, fs_type, header, load_average, lpfilter_command,
                      lpfilter_info, machine_info, print_info, progress, row, scratch_dirs,
                      size_arg, spread, verdict)

MB, MiB = 1e6, 2**20
HEAD, BUF = 64, 4 * MiB  # bytes the sink keeps of each connection; its recv_into buffer
NC, CAT, TIME = "/usr/bin/nc", "/bin/cat", "/usr/bin/time"  # OpenBSD netcat; GNU time
#: The lab's job (lprng-filters.md §2): lpr -Pq1 -J MyJob -C Z -T title1 -w 100 -i 4 ...
JOB = {"A": "root@localhost+507", "C": "Z", "D": "2026-11-21-04:12:41.392", "F": "f",
       "H": "localhost", "I": "4", "J": "MyJob", "L": "root", "N": "/tmp/lpdlab/job1.txt",
       "P": "q1", "Q": "q1", "S": "Test queue one", "T": "title1", "W": "100",
       "Z": "opt1=a,opt2=b", "a": "acct", "e": "dfA507localhost", "f": "/tmp/lpdlab/job1.txt",
       "h": "localhost", "i": "4", "j": "507", "l": "66", "n": "root", "s": "status",
       "t": "2026-11-21-04:12:41.000", "w": "80", "x": "0", "y": "0"}
PER_FILE = "FNef"  # letters lpd leaves out for an lp=| program
#: (table, variant) -> column heading
PIPES = {"lpf_disk": "`lpfilter filter`, SPOOL_DIR on disk",
         "lpf_tmpfs": "`lpfilter filter`, SPOOL_DIR on tmpfs", "nc": "`nc -N`"}
HEADS = {"a": PIPES, "b": {"lpf": "`lpfilter filter` (if=)", "cat": "`cat`"},
         "c": {**PIPES, "py": "`python -c pass` (not a job)"}}
#: table -> (key, label, unit); unit: MBs, x, s, B, rate
FIGURES = {"a": [("wall", "wall: first byte written to exit", "s"), ("eff", "size / wall", "MBs"),
                 ("written", "first byte written to last byte taken from lpd", "s"),
                 ("gap", "last byte taken from lpd to first byte at the printer", "s"),
                 ("rate", "rate at the printer: first byte to EOF", "MBs"),
                 ("tail", "EOF at the printer to exit", "s"), ("rss", "peak RSS", "B")],
           "b": [("wall", "wall: start to exit", "s"), ("eff", "size / wall", "MBs"),
                 ("start", "start to first byte at the printer", "s"),
                 ("rate", "rate at the printer: first to last byte", "MBs"),
                 ("tail", "last byte at the printer to exit", "s"), ("rss", "peak RSS", "B")],
           "c": [("jobs", "{n} jobs, one process each: jobs/s", "rate"),
                 ("each", "one process: wall, median", "s"),
                 ("start", "start to first byte at the printer, median", "s"),
                 ("tail", "EOF at the printer to exit, median", "s")],
           "ratios": [("a_disk", "(a) lpfilter wall / nc wall, SPOOL_DIR on disk", "x"),
                      ("a_tmpfs", "(a) lpfilter wall / nc wall, SPOOL_DIR on tmpfs", "x"),
                      ("a_rate", "(a) lpfilter rate / nc rate at the printer (disk)", "x"),
                      ("b_wall", "(b) lpfilter wall / cat wall", "x"),
                      ("b_rate", "(b) lpfilter rate / cat rate at the printer", "x"),
                      ("c_disk", "(c) nc jobs/s / lpfilter jobs/s (disk)", "x")]}
#: (ratio, promise); each must be ≤ 1.0, judged only at --size 1G
PROMISES = [("a_disk", "(a) lp=| job, SPOOL_DIR on disk: wall ≤ 1.0 × nc"),
            ("a_tmpfs", "(a) lp=| job, SPOOL_DIR on tmpfs: wall ≤ 1.0 × nc"),
            ("b_wall", "(b) if= job: wall ≤ 1.0 × cat")]
OPTIONS = [("--runs", int, 5, "measured rounds after the warm-up"),
           ("--small-jobs", int, 200, "1 KiB jobs per small-job run (at least 20)"),
           ("--disk", str, "/tmp", "where the big file and the disk SPOOL_DIR go"),
           ("--tmpfs", str, "/dev/shm", "where the tmpfs SPOOL_DIR goes"),
           ("--timeout", float, 600.0, "longest any one command may run, seconds")]






def serve() -> None:
    """The sink process: 127.0.0.1, a free port, one connection at a time read to EOF and
    closed. Prints {"port"}, then one line per connection."""
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: never outlive the bench
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    print(json.dumps({"port": listener.getsockname()[1]}), flush=True)
    buf, clock = memoryview(bytearray(BUF)), time.perf_counter
    while True:
        conn, _ = listener.accept()
        first = last = 0.0
        size, head, reset = 0, b"", False
        with conn:
            try:
                while n := conn.recv_into(buf):
                    last = clock()
                    if not size:
                        first, head = last, bytes(buf[:min(n, HEAD)])
                    size += n
            except OSError:
                reset = True
            end = clock()
        print(json.dumps({"size": size, "first": first, "last": last, "end": end,
                          "head": head.decode("latin-1"), "reset": reset}), flush=True)


class Sink:
    """The sink subprocess, and the connections it reports, in order."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve"],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if '"port"' not in line:
            raise BenchError(f"the sink did not start: {line!r}")
        self.port: int = json.loads(line)["port"]
        self.conns: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout or ():
            with self.cond:
                self.conns.append(json.loads(line))
                self.cond.notify_all()

    def take(self, heads: Sequence[str], size: int, what: str) -> list[dict[str, Any]]:
        """The next connections, one per head, each checked: size, head, ended by EOF."""
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.conns) >= len(heads), 10):
                raise BenchError(f"{what}: the sink saw {len(self.conns)} of {len(heads)}"
                                 " connections")
            got, self.conns = self.conns[:len(heads)], self.conns[len(heads):]
        for i, (conn, head) in enumerate(zip(got, heads)):
            if conn["size"] != size or not conn["head"].startswith(head) or conn["reset"]:
                raise BenchError(f"{what}, connection {i}: the sink got {conn['size']} bytes"
                                 f" starting {conn['head'][:24]!r} (reset: {conn['reset']});"
                                 f" sent {size} starting {head!r}")
        return got

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@dataclass(slots=True)
class Ran:
    fork: float  # just before the fork
    start: float  # the first byte written (lp=|), else = fork
    written: float  # the last byte taken from lpd (lp=|), else = fork
    end: float  # reaped
    rss: float  # GNU time's peak RSS, bytes (0: not measured)


class Bench:
    """Spool directories, the big spool file, the sink, and lpd's ways of running programs."""

    def __init__(self, args: argparse.Namespace, disk: Path, tmpfs: Path, sink: Sink) -> None:
        self.args, self.root, self.sink = args, disk, sink
        self.sd = {"disk": disk / "spool/q1", "tmpfs": tmpfs / "spool/q1"}
        for path in (*self.sd.values(), disk / "home"):
            path.mkdir(parents=True)
        for sd in self.sd.values():
            (sd / "acct").touch()  # lpd's af file: appended to only when it exists
        self.lpf, self.fork, self.timer = lpfilter_command(), 0.0, threading.Timer(0, print)
        self.live: subprocess.Popen[bytes] | None = None
        self.big = self.sd["disk"] / "dfA507localhost"  # the job as lpd spooled it
        block, tag = os.urandom(MiB), b"@@big@@"
        with open(self.big, "wb") as out:
            for i in range(max(1, args.size // MiB)):
                out.write(block if i else (tag + block[len(tag):])[:args.size])
        if self.big.stat().st_size != args.size:
            raise BenchError("--size must be a whole number of MiB, or less than one")

    def env(self, fs: str, lp: str, *flags: str) -> dict[str, str]:
        """Exactly what lpd gives a filter (lprng-filters.md §4), PYTHONPATH kept."""
        sd, home = self.sd[fs], str(self.root / "home")
        entry = "".join(f" :{o}\n" for o in sorted(["cm=Test queue one", f"lp={lp}",
                                                    f"sd={sd}", *flags]))
        hold = "".join(f"{k}={JOB[k]}\n" for k in "ACDHJLNPQ") + "number=507\nsize=18\n"
        env = {"PRINTER": "q1", "USER": "root", "LOGNAME": "root", "HOME": home,
               "LOGDIR": home, "PATH": "/bin:/usr/bin:/usr/local/bin", "SHELL": "/bin/sh",
               "IFS": " \t", "SPOOL_DIR": str(sd), "HF": hold, "DATAFILES": "dfA507localhost ",
               "PRINTCAP_ENTRY": "q1|queue1\n" + entry,
               "LPFILTER_LOCK_DIR": str(self.root / "lk")}
        return {**env, **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}}

    def options(self, fs: str, size: int, lp_pipe: bool) -> list[str]:
        """lpd's option list: every letter, upper case first, then the accounting file."""
        merged = {**JOB, "b": str(size), "d": str(self.sd[fs])}
        keys = sorted((k for k in merged if not (lp_pipe and k in PER_FILE)),
                      key=lambda k: (k.islower(), k))
        return [f"-{k}{merged[k]}" for k in keys] + ["acct"]

    def lp_pipe(self, variant: str, data: Path | bytes, rss: bool) -> Ran:
        """lp=| mode, as lpd runs it: one socketpair end as fds 0, 1, 2; the job written,
        the socket half-closed, status read to EOF, the exit status collected."""
        fs, size = variant.partition("_")[2] or "disk", len(data) if isinstance(data, bytes) \
            else data.stat().st_size
        dest = f"127.0.0.1%{self.sink.port}"
        if variant == "nc":  # -$: lpd must not append its options, nc would refuse them
            argv = [NC, "-N", "127.0.0.1", str(self.sink.port)]
            lp = f"|-$ {' '.join(argv)}"
        else:
            argv = [*self.lpf, "filter", dest, *self.options(fs, size, lp_pipe=True)]
            lp = f"|{' '.join(self.lpf)} filter {dest}"
        ours, theirs = socket.socketpair()
        with ours:
            try:
                proc = self.spawn(argv, rss, self.env(fs, lp), self.sd[fs], theirs, theirs,
                                   theirs)
            finally:
                theirs.close()
            start = time.perf_counter()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # it left early
                if isinstance(data, bytes):
                    ours.sendall(data)
                else:  # lpd reads its spool file; sendfile keeps this side's cost low
                    with open(data, "rb") as src:
                        ours.sendfile(src)
            written = time.perf_counter()
            with contextlib.suppress(OSError):
                ours.shutdown(socket.SHUT_WR)
            back = bytearray()
            with contextlib.suppress(OSError):
                while chunk := ours.recv(65536):
                    back += chunk
        ran = self.reap(proc, argv, rss, back.decode(errors="replace"))
        ran.start, ran.written = start, written
        if variant != "nc" and list(self.sd[fs].glob(".lpfilter-filter-*")):
            raise BenchError(f"{variant}: lpfilter left its copy of the job in {self.sd[fs]}")
        return ran

    def data_filter(self, variant: str) -> Ran:
        """if= mode: the spool file as stdin, a TCP socket to the printer as stdout (opened
        here, as lpd does for lp=host%port; closed here once the program has it)."""
        argv = [CAT] if variant == "cat" else [*self.lpf, "filter", *self.options(
            "disk", self.args.size, lp_pipe=False)]
        env = self.env("disk", f"127.0.0.1%{self.sink.port}", "pjl@",
                       f"if={' '.join(self.lpf)} filter")
        log = self.root / "stderr.log"
        with open(self.big, "rb") as stdin, open(log, "wb") as err, \
                socket.create_connection(("127.0.0.1", self.sink.port)) as out:
            proc = self.spawn(argv, True, env, self.sd["disk"], stdin, out, err)
        return self.reap(proc, argv, True, log.read_text(errors="replace"))

    def spawn(self, argv: list[str], rss: bool, env: dict[str, str], cwd: Path,
               *fds: Any) -> subprocess.Popen[bytes]:
        timed = [TIME, "-f", "%M", "-o", str(self.root / "rss")] if rss else []
        self.fork = time.perf_counter()
        self.live = proc = subprocess.Popen(  # its own group: kill() gets time's child too
            [*timed, *argv], env=env, cwd=cwd, stdin=fds[0], stdout=fds[1], stderr=fds[2],
            start_new_session=True)
        self.timer = threading.Timer(self.args.timeout, self.kill)
        self.timer.start()
        return proc

    def reap(self, proc: subprocess.Popen[bytes], argv: list[str], rss: bool,
              back: str) -> Ran:
        try:
            _, status = os.waitpid(proc.pid, 0)
        finally:
            self.timer.cancel()
        end, proc.returncode = time.perf_counter(), os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise BenchError(f"{' '.join(argv)[:300]}: exit status {proc.returncode}\n"
                             + back[-2000:])
        peak = int((self.root / "rss").read_text().split()[-1]) * 1024.0 if rss else 0.0
        return Ran(self.fork, self.fork, self.fork, end, peak)

    def kill(self) -> None:
        if self.live is not None and self.live.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.live.pid, signal.SIGKILL)


def big_round(b: Bench, table: str, order: Sequence[str]) -> dict[str, dict[str, float]]:
    """(a) The big job in lp=| mode, or (b) the big spool file in if= mode; each variant once."""
    out, size = {}, b.args.size
    for variant in order:
        ran = b.lp_pipe(variant, b.big, rss=True) if table == "a" else b.data_filter(variant)
        conn = b.sink.take(["@@big@@"], size, f"({table}) {variant}")[0]
        wall = ran.end - ran.start
        out[variant] = {"wall": wall, "eff": size / wall, "rss": ran.rss}
        if table == "a":
            out[variant].update(written=ran.written - ran.start, gap=conn["first"] - ran.written,
                                rate=size / (conn["end"] - conn["first"]),
                                tail=ran.end - conn["end"])
        else:
            out[variant].update(start=conn["first"] - ran.start, tail=ran.end - conn["last"],
                                rate=size / (conn["last"] - conn["first"]))
    return out


def round_c(b: Bench, variant: str, n: int) -> dict[str, float]:
    """(c) ``n`` small jobs, one process each, one after another; or ``n`` `python -c pass`."""
    if variant == "py":  # the interpreter's own start-up and exit, for reference
        py, walls = [sys.executable, "-c", "pass"], []
        for _ in range(n):
            ran = b.reap(b.spawn(py, False, {}, b.root, *[subprocess.DEVNULL] * 3), py, False, "")
            walls.append(ran.end - ran.fork)
        return {"jobs": n / sum(walls), "each": spread(walls)[0]}
    heads = [f"@@{variant}{i}@@" for i in range(n)]
    acct = b.sd[variant.partition("_")[2] or "disk"] / "acct"
    lines = acct.read_text().count("\n")
    runs = [b.lp_pipe(variant, (h + "." * 1100).encode()[:1023] + b"\n", rss=False)
            for h in heads]
    conns = b.sink.take(heads, 1024, f"(c) {variant} (in order)")
    if variant != "nc" and acct.read_text().count("\n") != lines + n:
        raise BenchError(f"(c) {variant}: {acct} did not get one line per job")
    return {"jobs": n / (runs[-1].end - runs[0].fork),
            "each": spread([r.end - r.fork for r in runs])[0],
            "start": spread([c["first"] - r.fork for r, c in zip(runs, conns)])[0],
            "tail": spread([r.end - c["end"] for r, c in zip(runs, conns)])[0]}


def measure(args: argparse.Namespace, b: Bench) -> dict[str, dict[str, list[float]]]:
    say, got = progress(args.json), {}
    say("warm-up round")
    for variant in HEADS["c"]:
        round_c(b, variant, 20)
    big_round(b, "a", list(HEADS["a"])), big_round(b, "b", list(HEADS["b"]))  # page cache

    def keep(group: str, figures: dict[str, float]) -> None:
        for key, value in figures.items():
            got.setdefault(group, {}).setdefault(key, []).append(value)

    for number in range(args.runs):
        say(f"round {number + 1}/{args.runs}")
        turn = lambda names: names[number % len(names):] + names[:number % len(names)]  # noqa: E731, B023 - used in this round
        for table in ("a", "b"):
            for variant, figures in big_round(b, table, turn(list(HEADS[table]))).items():
                keep(f"{table}_{variant}", figures)
        for variant in turn(list(HEADS["c"])):
            keep(f"c_{variant}", round_c(b, variant, args.small_jobs))
        last = {g: {k: v[-1] for k, v in fig.items()} for g, fig in got.items()}
        keep("ratios", {"a_disk": last["a_lpf_disk"]["wall"] / last["a_nc"]["wall"],
                        "a_tmpfs": last["a_lpf_tmpfs"]["wall"] / last["a_nc"]["wall"],
                        "a_rate": last["a_lpf_disk"]["rate"] / last["a_nc"]["rate"],
                        "b_wall": last["b_lpf"]["wall"] / last["b_cat"]["wall"],
                        "b_rate": last["b_lpf"]["rate"] / last["b_cat"]["rate"],
                        "c_disk": last["c_nc"]["jobs"] / last["c_lpf_disk"]["jobs"]})
    return got


def cell(samples: list[float], unit: str) -> str:
    """``median (min–max)`` in MiB, ×, MB/s, jobs/s, s or ms."""
    med, low, high = spread(samples)
    scale, form, suffix = {"B": (1 / MiB, ".1f", " MiB"), "x": (1, ".2f", " ×"),
                           "MBs": (1 / MB, ",.0f", " MB/s"), "rate": (1, ",.0f", " jobs/s")}.get(
        unit, (1, ".2f", " s") if med >= 1 else (1e3, ".1f" if abs(med) < 0.1 else ".0f", " ms"))
    text = f"{med * scale:{form}}{suffix}"
    return text if len(samples) == 1 else f"{text} ({low * scale:{form}}–{high * scale:{form}})"


def verdicts(got: dict[str, dict[str, list[float]]], size: int) -> list[dict[str, object]]:
    out = []
    for key, promise in PROMISES:
        median = spread(got["ratios"][key])[0]
        out.append({"promise": promise, "median": median,
                    "status": verdict(median, 1.0 + 1e-9, judged=size == 2**30)})
    return out


def print_report(got: dict[str, dict[str, list[float]]], info: dict[str, object],
                 args: argparse.Namespace) -> None:
    print_info(info)
    print(f"{args.runs} rounds after a warm-up, order rotated each round; median (min–max)"
          f" over rounds; MB = 10^6 bytes; big job {args.size / MiB:g} MiB\n")
    for table, title in (("a", "(a) lp=| device mode"), ("b", "(b) if= data-filter mode"),
                         ("c", "(c) small jobs, lp=| mode")):
        print(f"{title}\n")
        header("figure", *HEADS[table].values())
        for key, label, unit in FIGURES[table]:
            row(label.format(n=args.small_jobs), *(
                cell(got[f"{table}_{v}"][key], unit) if key in got[f"{table}_{v}"] else ""
                for v in HEADS[table]))
        print()
    header("ratio", "per round")
    for key, label, unit in FIGURES["ratios"]:
        row(label, cell(got["ratios"][key], unit))
    print()
    header("promise", "result")
    for check in verdicts(got, args.size):
        row(str(check["promise"]).replace("|", "\\|"),  # a | in a Markdown table
            f"{check['status']}, {check['median']:.2f} ×")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=size_arg, default=2**30,
                        help="size of the big job: 1G, 64M, ... (default 1G)")
    add_options(parser, OPTIONS)
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    if args.runs < 1 or args.small_jobs < 20:
        parser.error("--runs must be at least 1, --small-jobs at least 20")
    if missing := [tool for tool in (NC, CAT, TIME) if not os.access(tool, os.X_OK)]:
        print(f"filter_bench: needs {', '.join(missing)}", file=sys.stderr)
        return 2
    need = {args.disk: 2 * args.size + 512 * MiB, args.tmpfs: args.size + 64 * MiB}
    if short := [base for base, size in need.items() if shutil.disk_usage(base).free < size]:
        print(f"filter_bench: too little space in {', '.join(short)}: the job, lpfilter's copy"
              " and 512 MiB (64 MiB on tmpfs) are needed", file=sys.stderr)
        return 2
    load_before, began = os.getloadavg()[0], time.monotonic()
    with scratch_dirs("lpfilter-filter-bench-", args.disk, args.tmpfs) as roots:
        sink = bench = None
        try:
            sink = Sink()
            bench = Bench(args, roots[0], roots[1], sink)
            got = measure(args, bench)
        except BenchError as exc:
            print(f"filter_bench: cannot benchmark: {exc}", file=sys.stderr)
            return 2
        finally:
            if bench is not None:
                bench.kill()
            if sink is not None:
                sink.close()
    versions = [subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                .stdout.split("\n")[0] for cmd in ([CAT, "--version"], [NC, "-h"])]
    info = {**machine_info(), "python": f"{platform.python_version()} ({sys.executable})",
            "lpfilter": lpfilter_info(),
            "cat": f"{CAT}: {versions[0]}", "nc": f"{NC} -N: {versions[1]}",
            "printer": "a raw TCP sink in its own process, recv_into a 4 MiB buffer, discarded",
            "SPOOL_DIR": f"disk: {args.disk} ({fs_type(args.disk)}); tmpfs: {args.tmpfs}"
                         f" ({fs_type(args.tmpfs)})",
            "load average (1 min)": load_average(load_before),
            "run time": f"{time.monotonic() - began:.0f} s"}
    if args.json:
        print(json.dumps({"info": info, "args": vars(args), "promises": verdicts(got, args.size),
                          "samples": got}, indent=2))
    else:
        print_report(got, info, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
