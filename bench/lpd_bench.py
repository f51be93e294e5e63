#!/usr/bin/env python3
"""LPD forwarding benchmark: lpfilter's LPD backend against LPRng's own `lpr`, both sending
to a real LPRng lpd on loopback; and lpfilter's `print -P q@host` (no spool) beside `lpr`.

Run it as root with the interpreter lpfilter is installed in; see bench/README.md. LPRng's
lpd runs as the tests run it (tests/lpdkit.py): a private mount namespace with our
/etc/lprng bound over, `lpd -F` listening on 127.0.0.1 on a free port, its queue `q` printing
to /dev/null so the disk holds only lpd's spool. (1) One big job; (2) --jobs × 1 KiB jobs.
lpfilter's jobs are spooled first (`print --no-wait`, untimed), then `watch --once -P q`
is timed; LPRng's `lpr -P q@127.0.0.1%PORT` runs once for the big job, once per small job
(a shell loop, in lpd's namespace). lpfilter's `print -P q@127.0.0.1%PORT` sends straight
to lpd as `lpr` does, with no spool: once for the big job, once per small job (the same
loop). A run ends when the client has exited and lpd's spool holds no job file any more
(the jobs went to its printer).

A missed target prints MISS and still exits 0: this is a benchmark, not a test. Exit
status 2 means it could not run (LPRng missing, not root, a command failed).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import NamedTuple
from pathlib import Path

import psutil
from benchkit import (BenchError, FirstFile, clean_env, fs_type, header, load_average,
                      lpfilter_command, lpfilter_info, machine_info, print_info, progress,
                      reap_timed, row, scratch_dirs, settle_memory, size_arg, spool_jobs, spread,
                      verdict)

MB, MiB = 1e6, 2**20
SMALL = 1024
LPD, LPR, TIME = "/usr/sbin/lpd", "/usr/bin/lpr", "/usr/bin/time"
TIMEOUT = 900.0  # longest any one command or drain may take, seconds
# As tests/lpdkit.py, and originate_port empty: as root, LPRng's clients otherwise bind
# source ports 721-731 only, and a loop of 1000 lpr runs out of them (TIME_WAIT): "cannot
# bind to port - Address already in use". Empty, lpr takes an ordinary port, as lpfilter does.
CONF = """\
printcap_path={root}/printcap
lpd_printcap_path=
perms_path={root}/lpd.perms
lpd_listen_port=127.0.0.1%{port}
lpd_port={port}
unix_socket_path={unix_socket}
lockfile={root}/lpd
user=0
group=0
server_tmp_dir={root}/tmp
default_tmp_dir={root}/tmp
syslog_device=/dev/null
sendmail=
check_for_nonprintable@
done_jobs=0
originate_port=
"""
PRINTCAP = ("q:sd={root}/spool/q:lp=/dev/null:sh:sf:ff_separator@:fo@:fq@:tr=:mx=0:\n"
            "check:sd={root}/spool/check:lp={root}/printed:sh:sf:ff_separator@:fo@:fq@:tr=:mx=0:\n")
#: (key, label, unit) in report order; unit: MBs, rate, s, B
BIG_FIGURES = [("lpf_rate", "lpfilter `watch --once`: size / (lpd's first byte to its queue"
                " empty)", "MBs"),
               ("lpr_rate", "LPRng `lpr`: size / (lpd's first byte to its queue empty)", "MBs"),
               ("ratio", "sending rate, lpfilter / LPRng, per round", "x"),
               ("lpf_whole", "lpfilter `watch --once`: size / (start to lpd's queue empty)",
                "MBs"),
               ("lpr_whole", "LPRng `lpr`: size / (start to lpd's queue empty)", "MBs"),
               ("lpf_wall", "lpfilter `watch --once`: wall (to the last ack)", "s"),
               ("lpr_wall", "LPRng `lpr`: wall (to the last ack)", "s"),
               ("lpf_rss", "lpfilter `watch --once`: peak RSS", "B"),
               ("lpr_rss", "LPRng `lpr`: peak RSS", "B"),
               ("dir_rate", "lpfilter `print -P q@host`: size / (lpd's first byte to its"
                " queue empty)", "MBs"),
               ("dir_ratio", "sending rate, `print -P q@host` / `lpr`, per round", "x"),
               ("dir_rss", "lpfilter `print -P q@host`: peak RSS", "B"),
               ("one_rss", "lpfilter `watch --once`, one 1 KiB job: peak RSS", "B"),
               ("rss_growth", "peak RSS: big job − one 1 KiB job, same round", "B")]
SMALL_FIGURES = [("lpf_rate", "lpfilter `watch --once`: jobs / (start to lpd's queue empty)",
                  "rate"),
                 ("lpr_rate", "LPRng `lpr` loop: jobs / (first start to lpd's queue empty)",
                  "rate"),
                 ("ratio", "lpfilter rate / LPRng rate, per round", "x"),
                 ("lpf_wall", "lpfilter `watch --once`: wall (to the last ack)", "s"),
                 ("lpr_wall", "LPRng `lpr` loop: wall (to the last ack)", "s"),
                 ("lpf_rss", "lpfilter `watch --once`: peak RSS", "B"),
                 ("dir_rate", "lpfilter `print -P q@host` loop: jobs / (first start to lpd's"
                  " queue empty)", "rate"),
                 ("dir_ratio", "`print -P q@host` rate / `lpr` rate, per round", "x")]
#: (group, figure, target, limit, higher is better)
TARGETS = [("big", "ratio", "big job: lpfilter sending rate ≥ LPRng's", 1.0, True),
           ("small", "ratio", "{jobs} × 1 KiB: lpfilter rate ≥ LPRng's", 1.0, True),
           ("big", "rss_growth", "peak RSS flat: big job − 1 KiB job < 4 MiB", 4 * MiB, False),
           ("big", "dir_ratio", "big job: `print -P q@host` sending rate ≥ `lpr`'s", 1.0, True),
           ("small", "dir_ratio", "{jobs} × 1 KiB, a command each: `print -P q@host` ≥ `lpr`",
            1.0, True)]
UNITS = {("big", k): u for k, _, u in BIG_FIGURES} | {("small", k): u for k, _, u in SMALL_FIGURES}


class Sent(NamedTuple):
    """One timed run, seconds: command start to its end (``wall``), command start to lpd's
    queue empty (``whole``), lpd's first received byte to its queue empty (``sending``)."""
    wall: float
    whole: float
    sending: float
    rss: float


#: The names of the files lpd makes when a job starts to arrive (LPRng: temp files, hf).
JOB_FILES = ("temp", "hf", "cf", "df")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Lpd:
    """LPRng's lpd in its own mount namespace (as tests/lpdkit.py), stopped by pid.

    It always listens on TCP (``queue``). With ``unix_socket`` it also listens where
    Debian's lpd does for its local clients, a Unix socket (``{root}/lpd.sock`` here):
    ``lpr -P q`` run in its namespace (``nsenter``) then uses that socket, not TCP.
    """

    def __init__(self, root: Path, *, unix_socket: bool = False) -> None:
        self.root, self.proc = root, None
        self.unix_socket = f"{root}/lpd.sock" if unix_socket else "off"
        self.spool = root / "spool" / "q"
        for folder in (root / "etc", self.spool, root / "spool" / "check", root / "tmp"):
            folder.mkdir(parents=True)
        self.printed = root / "printed"
        self.printed.touch()
        (root / "lpd.perms").write_text("DEFAULT ACCEPT\n")
        (root / "printcap").write_text(PRINTCAP.format(root=root))
        for _attempt in range(3):
            self.port = free_port()
            (root / "etc" / "lpd.conf").write_text(
                CONF.format(root=root, port=self.port, unix_socket=self.unix_socket))
            if self._launch():
                return
        raise BenchError(f"LPRng's lpd did not listen on 127.0.0.1:\n{self.log()}")

    def _launch(self) -> bool:
        script = 'mount --bind "$1" /etc/lprng && exec "$2" -F'
        with (self.root / "lpd.log").open("ab") as log:
            self.proc = subprocess.Popen(
                ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                 str(self.root / "etc"), LPD], stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.proc.poll() is None:
            if any(c.laddr == ("127.0.0.1", self.port) and c.status == psutil.CONN_LISTEN
                   for p in self.processes() for c in _conns(p)):
                return True
            time.sleep(0.05)
        self.stop()
        return False

    @property
    def queue(self) -> str:
        return f"q@127.0.0.1%{self.port}"

    def log(self) -> str:
        return (self.root / "lpd.log").read_text(errors="replace")[-2000:]

    def processes(self) -> list[psutil.Process]:
        try:
            main = psutil.Process(self.proc.pid) if self.proc else None
            return [main, *main.children(recursive=True)] if main else []
        except psutil.NoSuchProcess:
            return []

    def nsenter(self) -> list[str]:
        """The prefix that runs a command in lpd's namespace (it reads our lpd.conf)."""
        return ["nsenter", "-t", str(self.proc.pid), "-m", f"--wd={self.root}"]

    def wait_printed(self, size: int, what: str) -> None:
        """Until queue ``check``'s printer file holds ``size`` bytes (at most 60 s)."""
        deadline = time.monotonic() + 60
        while (got := self.printed.stat().st_size) < size:
            if time.monotonic() > deadline:
                raise BenchError(f"{what}: lpd printed {got} of {size} bytes:\n{self.log()}")
            time.sleep(0.01)

    def jobs(self) -> list[str]:
        """The job files in lpd's spool: hold, control and data files."""
        return [n for n in os.listdir(self.spool) if n[:2] in ("hf", "cf", "df")]

    def drain(self, what: str) -> float:
        """When lpd's spool holds no job file any more (polled every 2 ms)."""
        deadline = time.monotonic() + TIMEOUT
        while self.jobs():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"{what}: lpd kept {len(self.jobs())} job files:\n{self.log()}")
            time.sleep(0.002)
        return time.perf_counter()

    def stop(self) -> None:
        """SIGTERM lpd and every process it started, by pid; SIGKILL after 10 s."""
        processes = self.processes()
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.terminate()
        _, alive = psutil.wait_procs(processes, timeout=10)
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(alive, timeout=10)
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=10)


def _conns(process: psutil.Process) -> list:  # type: ignore[type-arg]
    try:
        return process.net_connections("tcp")
    except psutil.NoSuchProcess:
        return []


class Bench:
    """The files, lpfilter's printcap and spool, the lpd, and the commands run against them."""

    def __init__(self, args: argparse.Namespace, root: Path, lpd: Lpd) -> None:
        self.args, self.root, self.lpd = args, root, lpd
        self.env, self.lpf = clean_env(root), lpfilter_command()
        self.live: subprocess.Popen[bytes] | None = None
        self.sd = root / "sd"
        for path in (self.sd, root / "sd-check", root / "in", root / "cwd"):
            path.mkdir()
        self.printcap = root / "printcap"
        # done_jobs: every ticket kept, so that send_lpfilter can see each job done
        # (the default, 1, prunes them as they finish)
        self.printcap.write_text(f"q:lp={lpd.queue}:sd={self.sd}:done_jobs#1000000\n"
                                 f"check:lp={lpd.queue.replace('q@', 'check@')}"
                                 f":sd={root / 'sd-check'}\n")
        self.big = root / "in" / "big"
        block = os.urandom(MiB)
        with open(self.big, "wb") as out:
            for _ in range(args.size // MiB):
                out.write(block)
            out.write(block[:args.size % MiB])
        self.small = [root / f"in/job{i:05d}" for i in range(args.jobs)]
        for i, path in enumerate(self.small):
            head = f"job {i}\n".encode()
            path.write_bytes(head + b"." * (SMALL - len(head) - 1) + b"\n")

    def run(self, argv: list[str]) -> tuple[float, float, float]:
        """(start, end, peak RSS in bytes) of a command run to its end under GNU time."""
        log, rss = self.root / "cmd.log", self.root / "cmd.rss"
        with open(log, "wb") as out:
            start = time.perf_counter()
            self.live = proc = subprocess.Popen(
                [TIME, "-f", "%M", "-o", rss, *argv], env=self.env, cwd=self.root / "cwd",
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
        end = reap_timed(proc, TIMEOUT, self.kill, argv, log)
        return start, end, int(rss.read_text().split()[-1]) * 1024.0

    def lpfilter(self, *args: object) -> tuple[float, float, float]:
        return self.run([*self.lpf, "--printcap", str(self.printcap), *map(str, args)])

    def spooled(self, files: Sequence[Path]) -> None:
        """Empty lpfilter's spool, then spool ``files`` with no watcher (untimed)."""
        shutil.rmtree(self.sd), self.sd.mkdir()
        self.lpfilter("print", "--no-wait", "-P", "q", *files)

    def send_lpfilter(self, files: Sequence[Path], what: str) -> Sent:
        """`watch --once` sending ``files``, spooled beforehand (untimed)."""
        self.spooled(files)
        settle_memory(sum(path.stat().st_size for path in files) * 2)
        first = FirstFile(self.lpd.spool, JOB_FILES).start()
        start, end, rss = self.lpfilter("watch", "--once", "-P", "q")
        drained = self.lpd.drain(what)
        tickets = spool_jobs(self.sd)
        if len(tickets) != len(files) or any(t["state"] != "done" for t in tickets):
            raise BenchError(f"{what}: {len(tickets)} tickets for {len(files)} jobs, not all done")
        return Sent(end - start, drained - start, drained - first.stop(), rss)

    def send_lpr(self, files: Sequence[Path], what: str) -> Sent:
        """One `lpr` per file, in a shell loop."""
        loop = 'q=$1; shift; for f do "$0" -P "$q" "$f" || exit 1; done'
        settle_memory(sum(path.stat().st_size for path in files) * 2)
        first = FirstFile(self.lpd.spool, JOB_FILES).start()
        start, end, rss = self.run([*self.lpd.nsenter(), "sh", "-c", loop, LPR, self.lpd.queue,
                                    *map(str, files)])
        drained = self.lpd.drain(what)
        return Sent(end - start, drained - start, drained - first.stop(), rss)

    def send_direct(self, files: Sequence[Path], what: str) -> Sent:
        """One `lpfilter print -P q@127.0.0.1%PORT` per file, in the same loop as `lpr`'s:
        no printcap, no spool (commands/remoteprint.py)."""
        loop = 'q=$1; shift; for f do "$0" print -P "$q" "$f" >/dev/null || exit 1; done'
        settle_memory(sum(path.stat().st_size for path in files) * 2)
        first = FirstFile(self.lpd.spool, JOB_FILES).start()
        if len(self.lpf) != 1:
            raise BenchError("the lpfilter script beside this interpreter is needed")
        start, end, rss = self.run(["sh", "-c", loop, self.lpf[0], self.lpd.queue,
                                    *map(str, files)])
        drained = self.lpd.drain(what)
        return Sent(end - start, drained - start, drained - first.stop(), rss)

    def kill(self) -> None:
        if self.live is not None and self.live.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.live.pid, 9)

    def close(self) -> None:
        self.kill()
        if self.live is not None and self.live.returncode is None:
            self.live.wait()


def check(b: Bench) -> None:
    """Every client's bytes reach lpd's printer intact: queue ``check`` prints to a file."""
    files = [b.big, *b.small[:20]]
    expected = b"".join(path.read_bytes() for path in files)
    b.lpfilter("print", "--no-wait", "-P", "check", *files)
    b.lpfilter("watch", "--once", "-P", "check")
    b.lpd.wait_printed(len(expected), "lpfilter to queue check")
    queue = b.lpd.queue.replace("q@", "check@")
    for path in files:
        b.run([*b.lpd.nsenter(), LPR, "-P", queue, str(path)])
    b.lpd.wait_printed(2 * len(expected), "lpr to queue check")
    for path in files:
        b.run([*b.lpf, "print", "-P", queue, str(path)])
    b.lpd.wait_printed(3 * len(expected), "print -P to queue check")
    if b.lpd.printed.read_bytes() != expected * 3:
        raise BenchError("lpd's printer file differs from the files sent (lpfilter, lpr, then"
                         " print -P)")
    b.lpd.printed.write_bytes(b"")


def one_round(b: Bench, lpr_first: bool) -> dict[str, dict[str, float]]:
    """The big job and the small jobs, by each client (order alternates with the round)."""
    got: dict[str, dict[str, float]] = {"big": {}, "small": {}}
    steps = [("lpf", b.send_lpfilter), ("lpr", b.send_lpr), ("dir", b.send_direct)]
    for group, files, amount in (("big", [b.big], b.args.size), ("small", b.small, len(b.small))):
        for who, send in steps[::-1] if lpr_first else steps:
            sent = send(files, f"{who} {group}")
            # A big job's rate is its sending rate, start-up aside (Python's 0.2 s against
            # a C program's 2 ms); small jobs are timed whole, start-ups included.
            got[group].update({f"{who}_wall": sent.wall, f"{who}_whole": amount / sent.whole,
                               f"{who}_rate": amount / (sent.sending if group == "big"
                                                        else sent.whole),
                               f"{who}_rss": sent.rss})
        got[group]["ratio"] = got[group]["lpf_rate"] / got[group]["lpr_rate"]
        got[group]["dir_ratio"] = got[group]["dir_rate"] / got[group]["lpr_rate"]
    got["big"]["one_rss"] = b.send_lpfilter(b.small[:1], "lpf one").rss
    got["big"]["rss_growth"] = got["big"]["lpf_rss"] - got["big"]["one_rss"]
    return got


def measure(args: argparse.Namespace, b: Bench) -> dict[str, dict[str, list[float]]]:
    say = progress(args.json)
    say("warm-up round, and a check that the bytes arrive intact")
    check(b)
    b.send_lpfilter(b.small[:20], "warm-up"), b.send_lpr(b.small[:20], "warm-up")
    b.send_direct(b.small[:20], "warm-up")
    b.send_lpfilter([b.big], "warm-up")  # also brings the big file into the page cache
    got: dict[str, dict[str, list[float]]] = {"big": {}, "small": {}}
    for number in range(args.runs):
        say(f"round {number + 1}/{args.runs}")
        for group, figures in one_round(b, number % 2 == 1).items():
            for key, value in figures.items():
                got[group].setdefault(key, []).append(value)
    return got


def cell(samples: list[float], unit: str) -> str:
    """``median (min–max)`` in MB/s, jobs/s, ×, s or MiB."""
    med, low, high = spread(samples)
    fmt = {"MBs": lambda v: f"{v / MB:,.0f}", "rate": lambda v: f"{v:,.0f}",
           "x": lambda v: f"{v:.2f}", "s": lambda v: f"{v:.2f}",
           "B": lambda v: f"{v / MiB:.1f}"}[unit]
    suffix = {"MBs": " MB/s", "rate": " jobs/s", "x": " ×", "s": " s", "B": " MiB"}[unit]
    text = f"{fmt(med)}{suffix}"
    return text if len(samples) == 1 else f"{text} ({fmt(low)}–{fmt(high)})"


def verdicts(got: dict[str, dict[str, list[float]]],
             args: argparse.Namespace) -> list[dict[str, object]]:
    out = []
    for group, key, target, limit, higher in TARGETS:
        median = statistics.median(got[group][key])
        out.append({"target": target.format(jobs=args.jobs), "group": group, "figure": key,
                    "median": median, "status": verdict(median, limit, higher)})
    return out


def print_report(got: dict[str, dict[str, list[float]]], info: dict[str, object],
                 args: argparse.Namespace) -> None:
    print_info(info)
    print(f"{args.runs} rounds after a warm-up, interleaved (lpr first in even rounds);"
          " median (min–max) over rounds; MB = 10^6 bytes\n")
    for group, figures, title in (("big", BIG_FIGURES, f"one {args.size / MiB:g} MiB job"),
                                  ("small", SMALL_FIGURES, f"{args.jobs} × 1 KiB jobs")):
        header("figure", title)
        for key, label, unit in figures:
            row(label, cell(got[group][key], unit))
        print()
    header("target", "result")
    for check in verdicts(got, args):
        unit = UNITS[(str(check["group"]), str(check["figure"]))]
        row(str(check["target"]), f"{check['status']}, {cell([float(check['median'])], unit)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="measured rounds (default 3)")
    parser.add_argument("--size", type=size_arg, default=2**30,
                        help="the big job: 1G, 64M, ... (default 1G)")
    parser.add_argument("--jobs", type=int, default=1000, help="1 KiB jobs (default 1000)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args(argv)
    if min(args.runs, args.jobs) < 1 or args.jobs < 20:
        parser.error("--runs must be at least 1, --jobs at least 20")
    missing = [p for p in (LPD, LPR, TIME) if not os.access(p, os.X_OK)]
    if missing or os.geteuid() != 0 or not shutil.which("unshare"):
        print(f"lpd_bench: needs root, LPRng and GNU time (missing: {missing or 'none'})",
              file=sys.stderr)
        return 2
    if (free := shutil.disk_usage("/tmp").free) < 4 * args.size + 256 * MiB:
        print(f"lpd_bench: /tmp has {free / MiB:,.0f} MiB free", file=sys.stderr)
        return 2
    load_before = os.getloadavg()[0]
    with scratch_dirs("lpfilter-lpd-bench-", "/tmp") as (root,):
        lpd = bench = None
        try:
            lpd = Lpd(root / "lpd")
            bench = Bench(args, root, lpd)
            got = measure(args, bench)
        except BenchError as exc:
            print(f"lpd_bench: cannot benchmark: {exc}", file=sys.stderr)
            return 2
        finally:
            if bench is not None:
                bench.close()
            if lpd is not None:
                lpd.stop()
    version = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "lprng"], text=True,
                             capture_output=True)
    info = {**machine_info(), "python": f"{platform.python_version()} ({sys.executable})",
            "lpfilter": lpfilter_info(),
            "LPRng": f"Debian package lprng {version.stdout.strip() or '?'}",
            "lpd": "LPRng lpd -F on 127.0.0.1, queue q printing to /dev/null, spool in /tmp"
                   f" ({fs_type('/tmp')})",
            "load average (1 min)": load_average(load_before)}
    if args.json:
        print(json.dumps({"info": info, "args": vars(args), "targets": verdicts(got, args),
                          "samples": got}, indent=2))
    else:
        print_report(got, info, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
