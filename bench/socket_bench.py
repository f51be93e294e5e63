#!/usr/bin/env python3
"""Socket API benchmark: lpfilter's JetDirect backend against `nc -N`, on a loopback sink.

Run it with the interpreter lpfilter is installed in; see bench/README.md. A sink in this
process takes one loopback connection at a time, reads it to EOF, closes it, and notes its
first byte, its EOF and its byte count. (1) A big job already spooled, sent by `watch
--once`, against `nc -N`; (2) `print` of the same file, spooling included, and `print
--no-wait` (spooling alone); (3) 1000 small jobs through `watch --once`, disk and tmpfs.

A missed target prints MISS and still exits 0: this is a benchmark, not a test. Exit
status 2 means it could not run (a command failed, or the sink got other bytes than sent).
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchkit import (BenchError, add_options, clean_env, fs_type, header, load_average,
                      lpfilter_command, lpfilter_info, machine_info, print_info, progress,
                      reap_timed, row, scratch_dirs, spool_jobs, spread, verdict)

MB, MiB = 1e6, 2**20
SMALL = 1024  # bytes of each small job
HEAD = 64  # bytes the sink keeps of each connection: they name the job
BUF = 4 * MiB  # the recv sink's buffer
NC, TIME = "/usr/bin/nc", "/usr/bin/time"  # OpenBSD netcat; GNU time, for the peak RSS
#: (figure, target, limit, higher is better, groups judged, the setting it needs (else N/A))
TARGETS = [("ratio", "streaming ≥ 1.0 × nc (sink rate)", 1.0, True, ("big",), ("big", 1024)),
           ("ratio", "streaming, aim: ≥ 1.2 × nc", 1.2, True, ("big",), ("big", 1024)),
           ("once_rss", "`watch --once` peak RSS < 50 MiB", 50 * MiB, False, ("medium", "big"),
            None),
           ("rss_growth", "peak RSS flat: big job − medium job < 4 MiB", 4 * MiB, False,
            ("big",), None),
           ("once_rate", "{jobs} × 1 KiB through `watch --once` ≥ 500 jobs/s", 500.0, True,
            ("disk", "tmpfs"), ("jobs", 1000))]
#: (key, label, unit) in report order; unit: MBs, x, s, B, rate.
BIG_FIGURES = [("nc_rate", "(1) `nc -N < file`: rate at the sink", "MBs"),
               ("once_rate", "(1) `watch --once`, job already spooled: rate at the sink", "MBs"),
               ("ratio", "(1) `watch --once` rate / nc rate, per round", "x"),
               ("once_rss", "(1) `watch --once`: peak RSS", "B"),
               ("rss_growth", "(1) peak RSS minus the medium job's, same round", "B"),
               ("once_wall", "(1) `watch --once`: wall", "s"),
               ("once_start", "(1) `watch --once`: process start to first byte", "s"),
               ("once_tail", "(1) `watch --once`: EOF at the sink to process exit", "s"),
               ("spool_wall", "(2) spooling alone: `print --no-wait`, wall", "s"),
               ("spool_rate", "(2) spooling alone: size / wall", "MBs"),
               ("spool_used", "(2) space the spooled copy took (statvfs)", "B"),
               ("print_wall", "(2) `print -P`, foreground, spooling included: wall", "s"),
               ("nc_wall", "(2) `nc -N < file`: wall", "s"),
               ("print_vs_nc", "(2) `print` wall / nc wall, per round", "x"),
               ("print_eff", "(2) `print`: size / wall", "MBs"),
               ("print_rate", "(2) `print`: rate at the sink", "MBs"),
               ("print_rss", "(2) `print`: peak RSS", "B"),
               ("nc_rss", "`nc`: peak RSS", "B")]
SMALL_FIGURES = [("submit_rate", "(3) submit {jobs} jobs: `print --no-wait`, no watcher", "rate"),
                 ("once_rate", "(3) `watch --once`, wall", "rate"),
                 ("span_rate", "(3) tickets: first start to last finish", "rate"),
                 ("sink_rate", "(3) sink: first job's first byte to last job's EOF", "rate"),
                 ("once_rss", "(3) `watch --once`: peak RSS", "B")]
UNITS = {key: unit for key, _, unit in BIG_FIGURES + SMALL_FIGURES}
#: (option, type, default, help)
OPTIONS = [("--runs", int, 5, "measured rounds after the warm-up"),
           ("--big", int, 1024, "size of the big job, MiB"),
           ("--medium", int, 256, "size of the medium job, MiB"),
           ("--jobs", int, 1000, "1 KiB jobs per small-job run"),
           ("--disk", str, "/tmp", "where the big files, their spool and the disk spool go"),
           ("--tmpfs", str, "/dev/shm", "where the tmpfs spool goes"),
           ("--timeout", float, 600.0, "longest any one command may run, seconds")]




@dataclass(slots=True)
class Conn:
    """One connection the sink took: its first byte and EOF (time.perf_counter())."""

    first: float
    end: float
    size: int
    head: bytes


class Sink:
    """The loopback printer: one connection at a time, read to EOF, then closed (so a
    client waiting for the printer's EOF, as lpfilter's waitend=eof and nc -N do, ends)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.listener.getsockname()[1]
        self.conns: list[Conn] = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        buf = memoryview(bytearray(BUF))
        null = os.open(os.devnull, os.O_WRONLY)
        pipe = os.pipe()
        fcntl.fcntl(pipe[1], fcntl.F_SETPIPE_SZ, 1 * MiB)
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed by close()
                for fd in (null, *pipe):
                    os.close(fd)
                return
            first, size, head = 0.0, 0, b""
            try:
                if self.kind == "splice":  # zero-copy: socket -> pipe -> /dev/null
                    head, first = conn.recv(HEAD, socket.MSG_PEEK), time.perf_counter()
                    while n := os.splice(conn.fileno(), pipe[1], 1 * MiB):
                        size += n
                        while n:
                            n -= os.splice(pipe[0], null, n)
                else:
                    n, first = conn.recv_into(buf), time.perf_counter()
                    size, head = n, bytes(buf[:min(n, HEAD)])
                    while n:
                        n = conn.recv_into(buf)
                        size += n
                        if len(head) < HEAD:
                            head += bytes(buf[:min(n, HEAD - len(head))])
            except OSError:
                pass  # a reset: the byte count shows it
            with self.cond:
                self.conns.append(Conn(first, time.perf_counter(), size, head))
                self.cond.notify_all()
            conn.close()

    def take(self, count: int, what: str) -> list[Conn]:
        """The next ``count`` connections (the client has exited: they are over or nearly)."""
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.conns) >= count, 10):
                raise BenchError(f"{what}: the sink saw {len(self.conns)} of {count} connections")
            got, self.conns = self.conns[:count], self.conns[count:]
        return got

    def one(self, size: int, head: bytes, what: str) -> Conn:
        conn = self.take(1, what)[0]
        if conn.size != size or not conn.head.startswith(head):
            raise BenchError(f"{what}: the sink got {conn.size} bytes starting {conn.head[:24]!r};"
                             f" sent {size} starting {head!r}")
        return conn

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self.listener.close()
        self.thread.join(10)


@dataclass(slots=True)
class Ran:
    start: float
    end: float
    rss: float  # peak RSS, bytes

    @property
    def wall(self) -> float:
        return self.end - self.start


class Bench:
    """Files, printcap, sink, and the commands run against them."""

    def __init__(self, args: argparse.Namespace, disk: Path, tmpfs: Path, sink: Sink) -> None:
        self.args, self.disk, self.sink = args, disk, sink
        self.env, self.lpf = clean_env(disk), lpfilter_command()
        self.live: subprocess.Popen[bytes] | None = None
        self.sd = {"big": disk / "sd-big", "disk": disk / "sd-small", "tmpfs": tmpfs / "sd-small"}
        for path in (*self.sd.values(), disk / "in", tmpfs / "in", disk / "cwd"):
            path.mkdir()
        self.printcap = disk / "printcap"
        # done_jobs: every ticket kept, for the check that each job is done (the
        # default, 1, prunes finished tickets as the queue goes on)
        self.printcap.write_text("".join(f"{q}:lp=127.0.0.1%{sink.port}:sd={sd}"
                                         ":done_jobs#1000000\n"
                                         for q, sd in self.sd.items()))
        block = os.urandom(MiB)  # the big files: a random MiB over and over, a named head
        self.big = {}
        for name in ("medium", "big"):
            mib = getattr(args, name)
            self.big[name] = path = disk / f"in/{name}-{mib}MiB"
            with open(path, "wb") as out:
                out.write(self.tag(name) + block[len(self.tag(name)):])
                for _ in range(mib - 1):
                    out.write(block)
        self.small = {}
        for fs, root in (("disk", disk), ("tmpfs", tmpfs)):
            self.small[fs] = [root / f"in/job{i:04d}" for i in range(args.jobs)]
            for i, path in enumerate(self.small[fs]):
                head = self.tag(f"{fs}{i}")
                path.write_bytes(head + b"." * (SMALL - len(head) - 1) + b"\n")

    @staticmethod
    def tag(name: str) -> bytes:
        return f"@@{name}@@".encode()

    def run(self, argv: list[str], stdin: Path | None = None) -> Ran:
        """Run a command to its end; a failure stops the benchmark. GNU time gives the peak
        RSS: Linux gives a child of this process at least this process's ru_maxrss."""
        log, rss = self.disk / "cmd.log", self.disk / "cmd.rss"
        with open(log, "wb") as out, open(stdin or os.devnull, "rb") as inp:
            start = time.perf_counter()
            self.live = proc = subprocess.Popen(  # its own group: kill() gets time's child too
                [TIME, "-f", "%M", "-o", rss, *argv], env=self.env, cwd=self.disk / "cwd",
                stdin=inp, stdout=out, stderr=out, start_new_session=True)
        end = reap_timed(proc, self.args.timeout, self.kill, argv, log)
        return Ran(start, end, int(rss.read_text().split()[-1]) * 1024.0)

    def lpfilter(self, *args: object) -> Ran:
        return self.run([*self.lpf, "--printcap", str(self.printcap), *map(str, args)])

    def nc(self, path: Path) -> Ran:
        return self.run([NC, "-N", "127.0.0.1", str(self.sink.port)], stdin=path)

    def empty(self, queue: str) -> None:
        shutil.rmtree(self.sd[queue]), self.sd[queue].mkdir()

    def kill(self) -> None:
        if self.live is not None and self.live.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.live.pid, signal.SIGKILL)

    def close(self) -> None:
        self.kill()
        if self.live is not None and self.live.returncode is None:
            self.live.wait()


def big_round(b: Bench, name: str, nc_first: bool) -> dict[str, float]:
    """(1) and (2) for one file: nc; then spool, `watch --once`, and `print` in the foreground."""
    path, size, head, out = b.big[name], b.big[name].stat().st_size, b.tag(name), {}

    def nc() -> None:
        ran = b.nc(path)
        conn = b.sink.one(size, head, "nc")
        out.update(nc_rate=size / (conn.end - conn.first), nc_wall=ran.wall, nc_rss=ran.rss)

    def lpfilter() -> None:
        free = shutil.disk_usage(b.sd["big"]).free
        ran = b.lpfilter("print", "--no-wait", "-P", "big", path)
        out.update(spool_wall=ran.wall, spool_rate=size / ran.wall,
                   spool_used=free - shutil.disk_usage(b.sd["big"]).free)
        ran = b.lpfilter("watch", "--once", "-P", "big")
        conn = b.sink.one(size, head, "watch --once")
        out.update(once_rate=size / (conn.end - conn.first), once_rss=ran.rss,
                   once_wall=ran.wall, once_start=conn.first - ran.start,
                   once_tail=ran.end - conn.end)
        ran = b.lpfilter("print", "-P", "big", path)
        conn = b.sink.one(size, head, "print")
        out.update(print_wall=ran.wall, print_eff=size / ran.wall, print_rss=ran.rss,
                   print_rate=size / (conn.end - conn.first))
        b.empty("big")

    for step in (nc, lpfilter) if nc_first else (lpfilter, nc):
        step()
    out.update(ratio=out["once_rate"] / out["nc_rate"], print_vs_nc=out["print_wall"] /
               out["nc_wall"])
    return out


def small_round(b: Bench, fs: str) -> dict[str, float]:
    """(3) The small jobs spooled with no watcher, then sent by `watch --once`, timed."""
    files, n = b.small[fs], len(b.small[fs])
    b.empty(fs)
    submit = b.lpfilter("print", "--no-wait", "-P", fs, *files)
    ran = b.lpfilter("watch", "--once", "-P", fs)
    conns = b.sink.take(n, f"watch --once -P {fs}")
    wrong = [(i, c) for i, c in enumerate(conns)
             if c.size != SMALL or not c.head.startswith(b.tag(f"{fs}{i}"))]
    if wrong:
        raise BenchError(f"{fs}: {len(wrong)} of {n} jobs reached the sink wrong or out of order;"
                         f" the first, job {wrong[0][0]}: {wrong[0][1]}")
    jobs = spool_jobs(b.sd[fs])
    if len(jobs) != n or any(j["state"] != "done" for j in jobs):
        raise BenchError(f"{fs}: {len(jobs)} tickets for {n} jobs, not all done")
    return {"submit_rate": n / submit.wall, "once_rate": n / ran.wall, "once_rss": ran.rss,
            "span_rate": n / (max(j["finished"] for j in jobs) - min(j["started"] for j in jobs)),
            "sink_rate": n / (conns[-1].end - conns[0].first)}


def measure(args: argparse.Namespace, b: Bench) -> dict[str, dict[str, list[float]]]:
    say = progress(args.json)
    got: dict[str, dict[str, list[float]]] = {g: {} for g in ("medium", "big", "disk", "tmpfs")}
    say("warm-up round")
    for fs in ("disk", "tmpfs"):
        b.empty(fs)
        b.lpfilter("print", "--no-wait", "-P", fs, *b.small[fs][:20])
        b.lpfilter("watch", "--once", "-P", fs)
        b.sink.take(20, "warm-up")
    for name in ("medium", "big"):  # also brings the files into the page cache
        big_round(b, name, True)
    for number in range(args.runs):
        say(f"round {number + 1}/{args.runs}")
        for name in ("medium", "big"):
            for key, value in big_round(b, name, number % 2 == 0).items():
                got[name].setdefault(key, []).append(value)
        got["big"].setdefault("rss_growth", []).append(got["big"]["once_rss"][-1]
                                                       - got["medium"]["once_rss"][-1])
        for fs in ("disk", "tmpfs")[number % 2:] + ("disk", "tmpfs")[:number % 2]:
            for key, value in small_round(b, fs).items():
                got[fs].setdefault(key, []).append(value)
    return got


def cell(samples: list[float], unit: str) -> str:
    """``median (min–max)`` in MB/s, ×, ms or s, MiB, jobs/s."""
    med, low, high = spread(samples)
    if len(samples) == 1:  # a single value: no range
        return cell(samples * 2, unit).split(" (")[0]
    if unit == "B":
        return f"{med / MiB:.1f} MiB ({low / MiB:.1f}–{high / MiB:.1f})"
    if unit == "x":
        return f"{med:.2f} × ({low:.2f}–{high:.2f})"
    if unit in ("MBs", "rate"):
        scale, suffix = (1 / MB, "MB/s") if unit == "MBs" else (1, "jobs/s")
        return f"{med * scale:,.0f} {suffix} ({low * scale:,.0f}–{high * scale:,.0f})"
    if med >= 1:
        return f"{med:.2f} s ({low:.2f}–{high:.2f})"
    d = 1 if med < 0.1 else 0
    return f"{med * 1e3:.{d}f} ms ({low * 1e3:.{d}f}–{high * 1e3:.{d}f})"


def verdicts(got: dict[str, dict[str, list[float]]],
             args: argparse.Namespace) -> list[dict[str, object]]:
    out = []
    for key, target, limit, higher, groups, only in TARGETS:
        for group in groups:
            median = statistics.median(got[group][key])
            status = verdict(median, limit, higher,
                             judged=not only or getattr(args, only[0]) == only[1])
            out.append({"target": target.format(jobs=args.jobs), "group": group, "figure": key,
                        "median": median, "status": status})
    return out


def print_report(got: dict[str, dict[str, list[float]]], info: dict[str, object],
                 args: argparse.Namespace) -> None:
    print_info(info)
    print(f"{args.runs} rounds after a warm-up, interleaved (nc first in odd rounds);"
          " median (min–max) over rounds; MB = 10^6 bytes\n")
    names = {"medium": f"{args.medium} MiB", "big": f"{args.big} MiB",
             "disk": "disk", "tmpfs": "tmpfs"}
    for groups, figures in ((("medium", "big"), BIG_FIGURES), (("disk", "tmpfs"), SMALL_FIGURES)):
        header("figure", *(names[g] for g in groups))
        for key, label, unit in figures:
            row(label.format(jobs=args.jobs),
                *(cell(got[g][key], unit) if key in got[g] else "" for g in groups))
        print()
        if figures is BIG_FIGURES:
            used = statistics.median(got["big"]["spool_used"]) / (args.big * MiB)
            print(f"The spooled copy took {used:.0%} of the job's size on {args.disk}: "
                  + ("its blocks were copied, not shared (no reflink).\n" if used > 0.5
                     else "its blocks are shared with the file printed (a reflink).\n"))
    header("target", "judged on", "result")
    for check in verdicts(got, args):
        row(str(check["target"]), names[str(check["group"])],
            f"{check['status']}, {cell([check['median']], UNITS[str(check['figure'])])}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_options(parser, OPTIONS)
    parser.add_argument("--sink", choices=("recv", "splice"), default="recv",
                        help="recv: recv_into a 4 MiB buffer (default); splice: zero-copy")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args(argv)
    if min(args.runs, args.big, args.medium, args.jobs) < 1 or args.jobs < 20:
        parser.error("every count must be at least 1 (--jobs at least 20)")
    need = {args.disk: (2 * args.big + 2 * args.medium + 1024) * MiB,  # files, spool, margin
            args.tmpfs: args.jobs * 16 * 1024 + 64 * MiB}
    for base, size in need.items():
        if (free := shutil.disk_usage(base).free) < size:
            print(f"socket_bench: {base} has {free / MiB:,.0f} MiB free; this run needs"
                  f" {size / MiB:,.0f} MiB", file=sys.stderr)
            return 2
    load_before = os.getloadavg()[0]
    with scratch_dirs("lpfilter-socket-bench-", args.disk, args.tmpfs) as roots:
        sink = bench = None
        try:
            sink = Sink(args.sink)
            bench = Bench(args, roots[0], roots[1], sink)
            got = measure(args, bench)
        except BenchError as exc:
            print(f"socket_bench: cannot benchmark: {exc}", file=sys.stderr)
            return 2
        finally:
            if bench is not None:
                bench.close()
            if sink is not None:
                sink.close()
    nc_version = subprocess.run([NC, "-h"], capture_output=True, text=True).stderr
    info = {**machine_info(),
            "python": f"{platform.python_version()} ({sys.executable})",
            "lpfilter": lpfilter_info(),
            "nc": f"{NC}: {nc_version.splitlines()[0] if nc_version else '?'}",
            "sink": f"in-process, {args.sink}" + (" into a 4 MiB buffer" if args.sink == "recv"
                                                 else ", socket to pipe to /dev/null"),
            "spool": f"big jobs and disk: {args.disk} ({fs_type(args.disk)}); tmpfs:"
                     f" {args.tmpfs} ({fs_type(args.tmpfs)})",
            "load average (1 min)": load_average(load_before)}
    if args.json:
        print(json.dumps({"info": info, "args": vars(args), "targets": verdicts(got, args),
                          "samples": got}, indent=2))
    else:
        print_report(got, info, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
