#!/usr/bin/env python3
"""FTP backend benchmark: lpfilter's lp=ftp:// against `curl -T`, on one loopback FTP server.

Run it with the interpreter lpfilter is installed in; see bench/README.md. The server is
pyftpdlib in a process of its own (this script with --serve), so it shares no GIL with a
client. It discards the data and prints a JSON line per login and per file: size, head,
and the times of its first byte and EOF. (a) A big job already spooled, sent by `watch
--once`, against `curl -T`; (b) `print` of the same file, spooling included; (c) peak RSS;
(d) small jobs through one `watch --once` against one curl process per job.

A missed target prints MISS and still exits 0: this is a benchmark, not a test. Exit
status 2 means it could not run (a command failed, or the server got other bytes than sent).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchkit import (BenchError, add_options, clean_env, fs_type, header, load_average,
                      lpfilter_command, lpfilter_info, machine_info, print_info, progress,
                      reap_timed, row, scratch_dirs, size_arg, spool_jobs, spread, verdict)

MB, MiB = 1e6, 2**20
SMALL = 1024  # bytes of each small job
HEAD = 64  # bytes the server keeps of each file: they name the job
BUF = 4 * MiB  # the server's receive buffer
CURL, TIME = "/usr/bin/curl", "/usr/bin/time"  # GNU time, for the peak RSS
#: curl in passive mode (its default, as the issue ran it) and in active mode.
CURLS = {"curl": [], "curl_active": ["--ftp-port", "127.0.0.1"]}
#: (group, figure, target, limit, higher is better, judged only at this --size)
TARGETS = [("ratios", "ratio", "(a) `watch --once` ≥ 0.9 × curl, server-side rate", 0.9, True,
            2**30)]
TARGETS += [(group, "rss", f"(c) peak RSS < 50 MiB: {what}", 50 * MiB, False, None)
            for group, what in (("once", "`watch --once`, big job"), ("print", "`print`, big job"),
                                ("disk_jobs", "`watch --once`, small jobs, disk"),
                                ("tmpfs_jobs", "`watch --once`, small jobs, tmpfs"))]
TARGETS += [(f"{fs}_jobs", "logins", f"(d) one login per `watch --once` batch, {fs}", 1.5, False,
             None) for fs in ("disk", "tmpfs")]
#: table columns: group -> heading; rows: (key, label, unit); unit: MBs, x, s, B, rate, n.
BIG_GROUPS = {"once": "(a) `watch --once`, job spooled", "print": "(b) `print -P`, spooling"
              " included", "spool": "`print --no-wait` (untimed)", "curl": "`curl -T`",
              "curl_active": "`curl -T --ftp-port 127.0.0.1`"}
BIG_FIGURES = [("rate", "rate at the server", "MBs"), ("wall", "wall", "s"),
               ("start", "process start to first byte", "s"),
               ("tail", "EOF at the server to process exit", "s"),
               ("eff", "size / wall", "MBs"), ("rss", "(c) peak RSS", "B")]
RATIOS = [("ratio", "(a) `watch --once` rate / curl rate", "x"),
          ("ratio_active", "(a) `watch --once` rate / active curl rate", "x"),
          ("print_vs_curl", "(b) `print` wall / curl wall", "x"),
          ("print_vs_active", "(b) `print` wall / active curl wall", "x")]
SMALL_GROUPS = {"disk_jobs": "`watch --once`, spool on disk", "tmpfs_jobs": "`watch --once`,"
                " spool on tmpfs", "curl_jobs": "`curl -T`, one per job",
                "curl_active_jobs": "active `curl -T`, one per job"}
SMALL_FIGURES = [("submit", "submit {jobs} jobs: `print --no-wait`, untimed", "rate"),
                 ("rate", "(d) {jobs} jobs, wall", "rate"),
                 ("server_rate", "(d) server: first job's first byte to last job's EOF", "rate"),
                 ("start", "first process start to first byte", "s"),
                 ("tail", "last EOF at the server to last process exit", "s"),
                 ("logins", "(d) logins at the server", "n"), ("rss", "(c) peak RSS", "B"),
                 ("each", "one curl process: wall, median", "s"),
                 ("stalls", "curl processes that took over 100 ms", "n")]
UNITS = {"ratio": "x", "rss": "B", "logins": "n"}  # of the figures judged
#: (option, type, default, help)
OPTIONS = [("--runs", int, 5, "measured rounds after the warm-up"),
           ("--small-jobs", int, 200, "1 KiB jobs per small-job run"),
           ("--disk", str, "/tmp", "where the big file, its spool and the disk spool go"),
           ("--tmpfs", str, "/dev/shm", "where the tmpfs spool goes"),
           ("--timeout", float, 600.0, "longest any one command may run, seconds")]






def serve(home: str) -> None:
    """The server process: pyftpdlib on 127.0.0.1, a free port; anonymous may store; files
    go to /dev/null. Prints {"port"}, then a {"login"} or {"size", "first", ...} per event."""
    import ctypes
    import logging
    import warnings

    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.filesystems import AbstractedFS
    from pyftpdlib.handlers import DTPHandler, FTPHandler
    from pyftpdlib.log import config_logging
    from pyftpdlib.servers import FTPServer
    config_logging(level=logging.WARNING)
    say = lambda **event: print(json.dumps(event), flush=True)  # noqa: E731
    buf = memoryview(bytearray(BUF))

    class SinkDTP(DTPHandler):  # type: ignore[misc]
        first = end = 0.0
        head = b""

        def handle_read(self) -> None:  # recv_into one buffer, write nothing
            try:
                n = self.socket.recv_into(buf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                n = -1  # a reset: end stays 0, and the file is reported incomplete
            if n <= 0:
                self.end = time.perf_counter() if n == 0 else 0.0
                return self.handle_close()
            if not self.tot_bytes_received:
                self.first, self.head = time.perf_counter(), bytes(buf[:min(n, HEAD)])
            self.tot_bytes_received += n

        handle_read_event = handle_read

        def close(self) -> None:
            if not self._closed and self.receive:
                say(size=self.tot_bytes_received, first=self.first, end=self.end,
                    head=self.head.decode("latin-1"))
            super().close()

    class Handler(FTPHandler):  # type: ignore[misc]
        authorizer, dtp_handler = DummyAuthorizer(), SinkDTP
        # STOR writes to /dev/null; pyftpdlib closes the file it opens.
        abstracted_fs = type("SinkFS", (AbstractedFS,), {
            "open": lambda self, name, mode: open(os.devnull, mode)})  # noqa: SIM115

        def on_login(self, username: str) -> None:
            say(login=username)

    with warnings.catch_warnings():  # "write permission for anonymous": wanted here
        warnings.simplefilter("ignore", RuntimeWarning)
        Handler.authorizer.add_anonymous(home, perm="elw")
    server = FTPServer(("127.0.0.1", 0), Handler)
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: never outlive the benchmark
    say(port=server.address[1])
    server.serve_forever(handle_exit=False)


class Server:
    """The server subprocess, and the files and logins it reports, in order."""

    def __init__(self, env: dict[str, str], home: Path) -> None:
        home.mkdir()
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve",
                                      str(home)], env=env, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if '"port"' not in line:
            raise BenchError(f"the FTP server did not start: {line!r}")
        self.port: int = json.loads(line)["port"]
        self.files: list[dict[str, Any]] = []
        self.logins = 0
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout or ():
            event = json.loads(line)
            with self.cond:
                if "login" in event:
                    self.logins += 1
                else:
                    self.files.append(event)
                self.cond.notify_all()

    def take(self, count: int, what: str, size: int = SMALL,
             heads: Sequence[str] = ()) -> tuple[list[dict[str, Any]], int]:
        """The next ``count`` files, each checked (``heads``: in that order), and the logins
        since the last take (``take(0)`` forgets them)."""
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.files) >= count, 10):
                raise BenchError(f"{what}: the server got {len(self.files)} of {count} files")
            got, self.files = self.files[:count], self.files[count:]
            logins, self.logins = self.logins, 0
        for i, (event, head) in enumerate(zip(got, heads or (f"@@job{i}@@" for i in range(count)))):
            if event["size"] != size or not event["head"].startswith(head) or not event["end"]:
                raise BenchError(f"{what}, file {i}: the server got {event['size']} bytes"
                                 f" starting {event['head'][:24]!r} (complete:"
                                 f" {bool(event['end'])}); sent {size} starting {head!r}")
        return got, logins

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Bench:
    """Files, printcap, server, and the commands run against them."""

    def __init__(self, args: argparse.Namespace, disk: Path, tmpfs: Path, server: Server) -> None:
        self.args, self.disk, self.server = args, disk, server
        self.env = {**clean_env(disk), "HOME": str(disk / "home")}  # HOME: no ~/.netrc
        self.lpf = lpfilter_command()
        self.live: subprocess.Popen[bytes] | None = None
        self.sd = {"big": disk / "sd-big", "disk": disk / "sd-small", "tmpfs": tmpfs / "sd-small"}
        for path in (*self.sd.values(), disk / "in", disk / "cwd", disk / "home"):
            path.mkdir()
        self.printcap = disk / "printcap"
        # done_jobs: every ticket kept, for the check that each job is done (the
        # default, 1, prunes finished tickets as the queue goes on)
        self.printcap.write_text("".join(f"{q}:lp=ftp\\://127.0.0.1\\:{server.port}/:sd={sd}"
                                         ":done_jobs#1000000\n"
                                         for q, sd in self.sd.items()))
        block, tag = os.urandom(MiB), b"@@big@@"  # a random MiB over and over, a head
        self.big = disk / "in/big"
        with open(self.big, "wb") as out:
            for i in range(max(1, args.size // MiB)):
                out.write(block if i else (tag + block[len(tag):])[:args.size])
        if self.big.stat().st_size != args.size:
            raise BenchError("--size must be a whole number of MiB, or less than one")
        self.small = [disk / f"in/job{i:04d}" for i in range(args.small_jobs)]
        for i, path in enumerate(self.small):
            head = f"@@job{i}@@".encode()
            path.write_bytes(head + b"." * (SMALL - len(head) - 1) + b"\n")

    def run(self, argv: list[str], rss: bool = True) -> tuple[float, float, float]:
        """(start, end, peak RSS) of a command run to its end; a failure stops the benchmark.
        GNU time gives the RSS: Linux gives a child at least its parent's ru_maxrss."""
        log, rss_file = self.disk / "cmd.log", self.disk / "cmd.rss"
        timed = [TIME, "-f", "%M", "-o", str(rss_file)] if rss else []
        with open(log, "wb") as out:
            start = time.perf_counter()
            self.live = proc = subprocess.Popen(  # its own group: kill() gets time's child too
                [*timed, *argv], env=self.env, cwd=self.disk / "cwd", stdin=subprocess.DEVNULL,
                stdout=out, stderr=out, start_new_session=True)
        end = reap_timed(proc, self.args.timeout, self.kill, argv, log)
        return start, end, int(rss_file.read_text().split()[-1]) * 1024.0 if rss else 0.0

    def lpfilter(self, *args: object) -> tuple[float, float, float]:
        return self.run([*self.lpf, "--printcap", str(self.printcap), *map(str, args)])

    def curl(self, path: Path, name: str, variant: str,
             rss: bool = True) -> tuple[float, float, float]:
        return self.run([CURL, "-sS", *CURLS[variant], "-T", str(path),
                         f"ftp://127.0.0.1:{self.server.port}/{name}"], rss)

    def empty(self, queue: str) -> None:
        shutil.rmtree(self.sd[queue]), self.sd[queue].mkdir()

    def kill(self) -> None:
        if self.live is not None and self.live.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.live.pid, signal.SIGKILL)


def big_round(b: Bench, curl_first: bool) -> dict[str, dict[str, float]]:
    """(a), (b), (c): both curls; then spool, `watch --once`, and `print` in the foreground."""
    size, out = b.args.size, {}

    def timed(group: str, ran: tuple[float, float, float]) -> None:
        (start, end, rss), got = ran, b.server.take(1, group, size, ["@@big@@"])[0][0]
        out[group] = {"rate": size / (got["end"] - got["first"]), "wall": end - start,
                      "start": got["first"] - start, "tail": end - got["end"],
                      "eff": size / (end - start), "rss": rss}

    def lpfilter() -> None:
        start, end, _ = b.lpfilter("print", "--no-wait", "-P", "big", b.big)
        out["spool"] = {"wall": end - start, "eff": size / (end - start)}
        timed("once", b.lpfilter("watch", "--once", "-P", "big"))
        timed("print", b.lpfilter("print", "-P", "big", b.big))
        b.empty("big")

    steps = [lambda v=v: timed(v, b.curl(b.big, f"{v}-big", v)) for v in CURLS] + [lpfilter]
    for step in steps if curl_first else steps[::-1]:
        step()
    once, print_ = out["once"], out["print"]
    out["ratios"] = {"ratio": once["rate"] / out["curl"]["rate"],
                     "ratio_active": once["rate"] / out["curl_active"]["rate"],
                     "print_vs_curl": print_["wall"] / out["curl"]["wall"],
                     "print_vs_active": print_["wall"] / out["curl_active"]["wall"]}
    return out


def small_round(b: Bench, group: str) -> dict[str, float]:
    """(d) The small jobs: spooled with no watcher, then one `watch --once` (group: a queue);
    or one curl process per job, one after another (group: a curl variant)."""
    n, out, queue = len(b.small), {}, group in b.sd
    if queue:
        b.empty(group)
        start, end, _ = b.lpfilter("print", "--no-wait", "-P", group, *b.small)
        out["submit"] = n / (end - start)
        b.server.take(0, "")  # forget the logins so far
        first, end, out["rss"] = b.lpfilter("watch", "--once", "-P", group)
    else:
        b.server.take(0, "")
        walls, first = [], time.perf_counter()
        for i, path in enumerate(b.small):
            start, end, _ = b.curl(path, f"{group}-{i:04d}", group, rss=False)
            walls.append(end - start)
        out.update(each=statistics.median(walls), stalls=sum(wall > 0.1 for wall in walls))
    events, out["logins"] = b.server.take(n, f"{group}, small jobs (in order)")
    tickets = spool_jobs(b.sd[group]) if queue else []
    if queue and [ticket["state"] for ticket in tickets] != ["done"] * n:
        raise BenchError(f"{group}: the tickets are not {n} jobs done")
    head, last = events[0], events[-1]
    out.update(rate=n / (end - first), start=head["first"] - first, tail=end - last["end"],
               server_rate=n / (last["end"] - head["first"]))
    return out


def measure(args: argparse.Namespace, b: Bench) -> dict[str, dict[str, list[float]]]:
    say = progress(args.json)
    got: dict[str, dict[str, list[float]]] = {}
    say("warm-up round")
    for fs in ("disk", "tmpfs"):
        b.empty(fs)
        b.lpfilter("print", "--no-wait", "-P", fs, *b.small[:20])
        b.lpfilter("watch", "--once", "-P", fs)
        b.server.take(20, "warm-up")
    for variant in CURLS:
        b.curl(b.small[0], "warm-up", variant, rss=False), b.server.take(1, "warm-up")
    big_round(b, True)  # also brings the file into the page cache
    small = ["disk", "tmpfs", *CURLS]
    for number in range(args.runs):
        say(f"round {number + 1}/{args.runs}")
        results = list(big_round(b, number % 2 == 0).items())
        turn = number % len(small)
        results += [(f"{g}_jobs", small_round(b, g)) for g in small[turn:] + small[:turn]]
        for group, figures in results:
            for key, value in figures.items():
                got.setdefault(group, {}).setdefault(key, []).append(value)
    return got


def cell(samples: list[float], unit: str) -> str:
    """``median (min–max)`` in MiB, ×, a count, MB/s, jobs/s, s or ms."""
    med, low, high = spread(samples)
    scale, form, suffix = {"B": (1 / MiB, ".1f", " MiB"), "x": (1, ".2f", " ×"), "n": (1, "g", ""),
                           "MBs": (1 / MB, ",.0f", " MB/s"), "rate": (1, ",.0f", " jobs/s")}.get(
        unit, (1, ".2f", " s") if med >= 1 else (1e3, ".1f" if abs(med) < 0.1 else ".0f", " ms"))
    text = f"{med * scale:{form}}{suffix}"
    return text if len(samples) == 1 else f"{text} ({low * scale:{form}}–{high * scale:{form}})"


def verdicts(got: dict[str, dict[str, list[float]]],
             args: argparse.Namespace) -> list[dict[str, object]]:
    out = []
    for group, key, target, limit, higher, only in TARGETS:
        median = statistics.median(got[group][key])
        out.append({"target": target, "figure": key, "median": median,
                    "status": verdict(median, limit, higher, judged=only in (None, args.size))})
    return out


def table(got: dict[str, dict[str, list[float]]], groups: dict[str, str],
          figures: list[tuple[str, str, str]], jobs: int) -> None:
    """A Markdown table: a column per group, a row per figure, blank where not measured."""
    header("figure", *groups.values())
    for key, label, unit in figures:
        row(label.format(jobs=jobs), *(cell(got[g][key], unit) if key in got.get(g, {}) else ""
                                       for g in groups))
    print()


def print_report(got: dict[str, dict[str, list[float]]], info: dict[str, object],
                 args: argparse.Namespace) -> None:
    print_info(info)
    print(f"{args.runs} rounds after a warm-up, interleaved (curl first in odd rounds); median"
          f" (min–max) over rounds; MB = 10^6 bytes; big job {args.size / MiB:g} MiB\n")
    table(got, BIG_GROUPS, BIG_FIGURES, args.small_jobs)
    table(got, {"ratios": "per round"}, RATIOS, args.small_jobs)
    table(got, SMALL_GROUPS, SMALL_FIGURES, args.small_jobs)
    header("target", "result")
    for check in verdicts(got, args):
        row(str(check["target"]),
            f"{check['status']}, {cell([check['median']], UNITS[str(check['figure'])])}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=size_arg, default=2**30,
                        help="size of the big job: 1G, 64M, ... (default 1G)")
    add_options(parser, OPTIONS)
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    parser.add_argument("--serve", metavar="HOME", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    if min(args.runs, args.small_jobs) < 1 or args.small_jobs < 20:
        parser.error("every count must be at least 1 (--small-jobs at least 20)")
    try:
        import pyftpdlib
    except ImportError:
        print("ftp_bench: needs pyftpdlib: pip install 'lpfilter[ftp]'", file=sys.stderr)
        return 2
    need = 2 * args.size + 512 * MiB  # file, spool, margin
    if (free := shutil.disk_usage(args.disk).free) < need:
        print(f"ftp_bench: {args.disk} has {free / MiB:,.0f} MiB free; this run needs"
              f" {need / MiB:,.0f} MiB", file=sys.stderr)
        return 2
    load_before, began = os.getloadavg()[0], time.monotonic()
    with scratch_dirs("lpfilter-ftp-bench-", args.disk, args.tmpfs) as roots:
        server = bench = None
        try:
            server = Server(clean_env(roots[0]), roots[0] / "ftp-home")
            bench = Bench(args, roots[0], roots[1], server)
            got = measure(args, bench)
        except BenchError as exc:
            print(f"ftp_bench: cannot benchmark: {exc}", file=sys.stderr)
            return 2
        finally:
            if bench is not None:
                bench.kill()
            if server is not None:
                server.close()
    curl_version = subprocess.run([CURL, "--version"], capture_output=True, text=True).stdout
    info = {**machine_info(), "python": f"{platform.python_version()} ({sys.executable})",
            "lpfilter": lpfilter_info(),
            "curl": f"{CURL}: {' '.join(curl_version.split()[:2])}",
            "server": f"pyftpdlib {pyftpdlib.__ver__} in its own process, recv_into a 4 MiB"
                      " buffer, data discarded",
            "spool": f"big job and disk: {args.disk} ({fs_type(args.disk)}); tmpfs:"
                     f" {args.tmpfs} ({fs_type(args.tmpfs)})",
            "load average (1 min)": load_average(load_before),
            "run time": f"{time.monotonic() - began:.0f} s"}
    if args.json:
        print(json.dumps({"info": info, "args": vars(args), "targets": verdicts(got, args),
                          "samples": got}, indent=2))
    else:
        print_report(got, info, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
