#!/usr/bin/env python3
"""LPD server benchmark: jobs sent over LPD to lpfilter's daemon and to LPRng's own lpd,
received and printed to a socket printer on loopback, side by side.

Run it as root with the interpreter lpfilter is installed in; see bench/README.md. LPRng's
lpd runs as in lpd_bench.py (a private mount namespace, our /etc/lprng bound over), its
queue `q` printing to a socket printer (`lp=127.0.0.1%PORT`); lpfilter runs `watch
--listen 127.0.0.1:PORT` with a queue `q` printing to a socket printer of its own. The
printers are sinks in this process: each reads every connection to its end and counts the
bytes. With `--before PYTHON`, a second lpfilter daemon (the lpfilter installed for that
interpreter: an older commit) is measured in the same rounds, for a before/after.

Small jobs (--jobs × 1 KiB, each file different), sent two ways:
  lpr  one LPRng `lpr -P q@127.0.0.1%PORT FILE` per job from a shell loop, as users and
       ERP batches do (lpr runs in lpd's namespace: its lpd.conf has `originate_port=`
       empty);
  py   a Python client: --clients processes, each sending its share of the jobs, one
       connection per job, control file first, as fast as the answers come (the
       server's own ceiling, without lpr's start-up).
A run ends when the server's printer has every byte of every job (and, untimed, the
server's spool holds no job data). The figure is jobs / (first send to last byte
printed). The daemon's CPU time for the run (utime + stime of it and its children, from
/proc/PID/stat; for LPRng, of lpd and every process it started) is the less noisy figure
on a shared machine: it is given per 1000 jobs. With --size, one big job sent with lpr
first (size / (lpr's start to printed)). Rounds alternate the servers' order.

A missed target prints MISS and still exits 0: this is a benchmark, not a test. Exit
status 2 means it could not run (LPRng missing, not root, a command failed).
"""
from __future__ import annotations

import argparse
import json
import os
import selectors
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil
from benchkit import (BenchError, clean_env, header, load_average, lpfilter_command, lpfilter_info,
                      machine_info, print_info, progress, row, rss_sampler, scratch_dirs,
                      settle_memory, settle_page_cache, spool_jobs, spread, verdict)
from lpd_bench import LPD, LPR, PRINTCAP, Lpd, free_port

MB, MiB = 1e6, 2**20
SMALL = 1024
TIMEOUT = 900.0
TICKS = os.sysconf("SC_CLK_TCK")
#: The Python client: argv port, tag, first job, count; one connection per job. The
#: host is localhost (LPRng's lpd looks the H line's name up: an unknown one waits for
#: DNS), job numbers differ between the processes (first..first+count, below 1000), and
#: the tag makes each round's data new (else lpfilter rightly drops a resend).
CLIENT = r"""
import socket, sys
port, tag, first, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
host = b"localhost"
for n in range(first, first + count):
    number = n % 1000
    data = f"{tag} job {n}\n".encode().ljust(1023, b".") + b"\n"
    control = (f"Hlocalhost\nProot\nJ{tag}-{n}\nldfA{number:03d}localhost\nN{tag}-{n}\n"
               f"UdfA{number:03d}localhost\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        for out in (b"\x02q\n", b"\x02%d cfA%03d%s\n" % (len(control), number, host),
                    control + b"\0", b"\x03%d dfA%03d%s\n" % (len(data), number, host),
                    data + b"\0"):
            s.sendall(out)
            if s.recv(1) != b"\0":
                sys.exit(f"job {n}: refused after {out[:30]!r}")
"""


class Sink:
    """A socket printer: reads every connection to its end, counting the bytes."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = int(self.sock.getsockname()[1])
        self.bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.sock, selectors.EVENT_READ)
        buffer = bytearray(1 << 20)
        while not self._stop.is_set():
            for key, _ in selector.select(0.2):
                if key.fileobj is self.sock:
                    conn, _ = self.sock.accept()
                    selector.register(conn, selectors.EVENT_READ)
                    continue
                conn = key.fileobj  # type: ignore[assignment]
                try:
                    got = conn.recv_into(buffer)
                except OSError:
                    got = 0
                if got:
                    self.bytes += got
                else:
                    selector.unregister(conn)
                    conn.close()
        selector.close()

    def wait(self, size: int, what: str, alive: Callable[[], bool]) -> float:
        """When ``size`` bytes have arrived since the last ``reset`` (polled every 2 ms)."""
        deadline = time.monotonic() + TIMEOUT
        while self.bytes < size:
            if not alive() or time.monotonic() > deadline:
                raise BenchError(f"{what}: the printer got {self.bytes} of {size} bytes")
            time.sleep(0.002)
        return time.perf_counter()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def cpu_seconds(pids: Sequence[int]) -> float:
    """utime + stime + cutime + cstime of the processes (gone ones count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15])  # fields 14-17 of proc(5)
    return total / TICKS


class Daemon:
    """`lpfilter watch --listen` (of ``command``) on a free loopback port, printing to a
    Sink; stopped by pid."""

    def __init__(self, root: Path, command: list[str], name: str) -> None:
        root.mkdir()
        self.name, self.sink = name, Sink()
        self.sd = root / "sd"
        self.sd.mkdir()
        self.printcap = root / "printcap"
        self.printcap.write_text(f"q:lp=127.0.0.1%{self.sink.port}:sd={self.sd}\n")
        self.log = root / "watch.log"
        self.port = free_port()
        argv = [*command, "--printcap", str(self.printcap), "watch", "--listen",
                f"127.0.0.1:{self.port}"]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, env=clean_env(root), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        process = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + 20
        while not any(c.laddr == ("127.0.0.1", self.port) and c.status == psutil.CONN_LISTEN
                      for c in process.net_connections("tcp")):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BenchError(f"lpfilter watch did not listen:\n{self.log.read_text()}")
            time.sleep(0.05)

    @property
    def queue(self) -> str:
        return f"q@127.0.0.1%{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def sample(self) -> Callable[[], int]:
        """Start sampling the RSS every 10 ms; the returned call stops and gives the peak."""
        return rss_sampler(psutil.Process(self.proc.pid))

    def cpu(self) -> float:
        return cpu_seconds([self.proc.pid])

    def idle_cpu(self, seconds: float) -> float:
        """CPU seconds the daemon used while nothing happened for ``seconds``."""
        before = self.cpu()
        time.sleep(seconds)
        return self.cpu() - before

    def drain(self, what: str) -> None:
        """Untimed: until no job is waiting or being sent and no job data file is left
        (a small job's bytes are in the journal); every job recorded is done."""
        jobs = self.sd / ".lpfilter" / "jobs"
        deadline = time.monotonic() + TIMEOUT
        while any(n.endswith(".data") for n in os.listdir(jobs)) or any(
                job["state"] in ("queued", "active") for job in spool_jobs(self.sd)):
            if not self.alive() or time.monotonic() > deadline:
                raise BenchError(f"{what}: lpfilter kept job data:\n"
                                 f"{self.log.read_text()[-2000:]}")
            time.sleep(0.01)
        for job in spool_jobs(self.sd):
            if job["state"] != "done":
                raise BenchError(f"{what}: job {job['id']} ended {job['state']}:"
                                 f" {str(job.get('last_error'))[:300]}")

    def stop(self) -> None:
        self.sink.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class Lprng(Lpd):
    """LPRng's lpd, its queue q printing to a Sink (lpd_bench.Lpd prints to /dev/null)."""

    def __init__(self, root: Path) -> None:
        self.name, self.sink = "lprng", Sink()
        super().__init__(root)

    def _launch(self) -> bool:
        text = PRINTCAP.format(root=self.root)
        (self.root / "printcap").write_text(
            text.replace("lp=/dev/null", f"lp=127.0.0.1%{self.sink.port}", 1))
        return super()._launch()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def sample(self) -> Callable[[], int]:
        return lambda: 0  # lpd forks per job: its peak RSS is not one process's

    def cpu(self) -> float:
        return cpu_seconds([p.pid for p in self.processes()])

    def stop(self) -> None:
        self.sink.close()
        super().stop()


Server = Daemon | Lprng


def lpr_loop(lpd: Lpd, queue: str, files: Sequence[Path]) -> None:
    """One `lpr -P queue FILE` per file, in lpd's namespace."""
    loop = 'q=$1; shift; for f do "$0" -P "$q" "$f" || exit 1; done'
    done = subprocess.run([*lpd.nsenter(), "sh", "-c", loop, LPR, queue, *map(str, files)],
                          capture_output=True, timeout=TIMEOUT, check=False)
    if done.returncode != 0:
        raise BenchError(f"lpr to {queue}: exit status {done.returncode}: "
                         f"{done.stderr.decode(errors='replace')[-1000:]}")


def py_clients(port: int, jobs: int, clients: int, tag: str) -> None:
    """``clients`` processes of CLIENT, each sending its share of ``jobs``."""
    share = -(-jobs // clients)
    procs = [subprocess.Popen([sys.executable, "-c", CLIENT, str(port), f"{tag}{n}",
                               str(n * share), str(min(share, jobs - n * share))],
                              stderr=subprocess.PIPE)
             for n in range(clients) if n * share < jobs]
    failed = [p.communicate(timeout=TIMEOUT)[1] for p in procs]
    if any(p.returncode for p in procs):
        raise BenchError(f"the Python client failed: {b''.join(failed)[-1000:]!r}")


def timed(server: Server, send: Callable[[], None], size: int, count: int,
          what: str) -> tuple[float, float, int]:
    """(rate, CPU seconds, peak RSS) of one run: memory and the page cache settled first,
    then ``send``, to the last byte at the printer."""
    settle_memory(size * 2)
    settle_page_cache(Path("/tmp"), size + (64 << 20))
    server.sink.bytes = 0
    cpu, peak = server.cpu(), server.sample()
    start = time.perf_counter()
    send()
    end = server.sink.wait(size, what, server.alive)
    used, rss = server.cpu() - cpu, peak()
    server.drain(what)
    return count / (end - start), used, rss


def sender(lpd: Lprng, server: Server, way: str, files: list[Path], args: argparse.Namespace,
           number: int) -> Callable[[], None]:
    """What sends ``files`` to ``server`` the ``way`` asked (lpr or py)."""
    if way == "lpr":
        return lambda: lpr_loop(lpd, server.queue, files)
    tag = f"r{number}{server.name[:3]}"
    return lambda: py_clients(server.port, len(files), args.clients, tag)


def one_round(lpd: Lprng, servers: list[Server], args: argparse.Namespace, big: Path | None,
              small: list[Path], number: int) -> dict[str, float]:
    """Every server, every way of sending; the servers' order turns with the round."""
    got: dict[str, float] = {}
    turn = number % len(servers)
    for server in servers[turn:] + servers[:turn]:
        if big is not None:
            size = big.stat().st_size
            rate, cpu, rss = timed(server, sender(lpd, server, "lpr", [big], args, number),
                                   size, size, f"{server.name} big")
            got[f"big_{server.name}"], got[f"bigcpu_{server.name}"] = rate, cpu / size * 2**30
            got[f"bigrss_{server.name}"] = rss
        for way in args.ways:
            rate, cpu, rss = timed(server, sender(lpd, server, way, small, args, number),
                                   len(small) * SMALL, len(small), f"{server.name} {way}")
            got[f"{way}_{server.name}"] = rate
            got[f"{way}cpu_{server.name}"] = cpu / len(small) * 1000
            got[f"{way}rss_{server.name}"] = rss
    return got


LABELS = {"lpf": "lpfilter", "before": "lpfilter before (--before)", "lprng": "LPRng lpd"}
WAYS = {"big": "one big job by lpr: size / (lpr's start to printed)",
        "lpr": "`lpr` per job: jobs / (first start to last byte printed)",
        "py": "Python client: jobs / (first send to last byte printed)"}


def cell(samples: list[float], unit: str) -> str:
    med, low, high = spread(samples)
    fmt = {"MBs": lambda v: f"{v / MB:,.0f} MB/s", "rate": lambda v: f"{v:,.0f} jobs/s",
           "cpu": lambda v: f"{v:.2f} s", "s": lambda v: f"{v:.3f} s",
           "B": lambda v: f"{v / MiB:.1f} MiB"}[unit]
    return fmt(med) if len(samples) == 1 else f"{fmt(med)} ({fmt(low)}–{fmt(high)})"


def report(got: dict[str, list[float]], names: list[str], args: argparse.Namespace,
           idle: float) -> None:
    print(f"{args.runs} rounds after a warm-up, servers' order turning; median (min–max)\n")
    header("figure", *[LABELS[n] for n in names])
    for way in (["big"] if args.size else []) + args.ways:
        unit = "MBs" if way == "big" else "rate"
        row(WAYS[way], *[cell(got[f"{way}_{n}"], unit) for n in names])
        per = "GiB" if way == "big" else "1000 jobs"
        row(f"… the server's CPU per {per}", *[cell(got[f"{way}cpu_{n}"], "cpu")
                                                for n in names])
        row("… lpfilter's peak RSS", *[cell(got[f"{way}rss_{n}"], "B") if n != "lprng"
                                       else "–" for n in names])
    print()
    header("target", "result")
    for target, result in verdicts(got, idle):
        row(target, result)


def verdicts(got: dict[str, list[float]], idle: float) -> list[tuple[str, str]]:
    found = []
    if "lpr_lpf" in got:
        rate = spread(got["lpr_lpf"])[0]
        found.append(("1000 × 1 KiB from LPRng's lpr, received and printed: ≥ 500 jobs/s",
                      f"{verdict(rate, 500, True)}, {rate:,.0f} jobs/s"))
        ratio = rate / spread(got["lpr_lprng"])[0]
        found.append(("the same: lpfilter ≥ LPRng's lpd",
                      f"{verdict(ratio, 1.0, True)}, {ratio:.2f} ×"))
    small_rss = got.get("lprrss_lpf") or got.get("pyrss_lpf")
    if "bigrss_lpf" in got and small_rss:
        growth = spread(got["bigrss_lpf"])[0] - spread(small_rss)[0]
        found.append(("memory flat: big-job peak − small-jobs peak < 4 MiB",
                      f"{verdict(growth, 4 * MiB)}, {growth / MiB:.1f} MiB"))
    found.append(("idle daemon: CPU over 5 s < 0.05 s", f"{verdict(idle, 0.05)}, {idle:.3f} s"))
    return found


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="measured rounds (default 3)")
    parser.add_argument("--jobs", type=int, default=1000, help="1 KiB jobs (default 1000)")
    parser.add_argument("--size", type=int, default=0, metavar="MIB",
                        help="also one big job of this many MiB, sent by lpr (default 0: none)")
    parser.add_argument("--ways", default="lpr,py", help="lpr, py or both (default lpr,py)")
    parser.add_argument("--clients", type=int, default=4,
                        help="processes of the Python client (default 4)")
    parser.add_argument("--before", metavar="PYTHON",
                        help="also an lpfilter daemon run by this interpreter (an older"
                             " install), for a before/after in the same rounds")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args(argv)
    args.ways = [w for w in args.ways.split(",") if w]
    if min(args.runs, args.jobs, args.clients) < 1 or set(args.ways) - {"lpr", "py"}:
        parser.error("--runs, --jobs and --clients must be at least 1; --ways lpr,py")
    return args


def command_of(python: str) -> list[str]:
    script = Path(python).parent / "lpfilter"
    return [str(script)] if os.access(script, os.X_OK) else [python, "-m", "lpfilter"]


def measure(args: argparse.Namespace, root: Path,
            say: Callable[[str], None]) -> tuple[dict[str, list[float]], list[str], float]:
    servers: list[Server] = []
    try:
        lpd = Lprng(root / "lpd")
        servers.append(lpd)
        servers.insert(0, Daemon(root / "lpf", lpfilter_command(), "lpf"))
        if args.before:
            servers.insert(1, Daemon(root / "before", command_of(args.before), "before"))
        big = None
        if args.size:
            big = root / "big"
            block = os.urandom(MiB)
            with open(big, "wb") as out:
                for _ in range(args.size):
                    out.write(block)
        small = [root / f"job{i:05d}" for i in range(args.jobs)]
        for i, path in enumerate(small):
            path.write_bytes(f"job {i}\n".encode().ljust(SMALL - 1, b".") + b"\n")
        say("idle daemon: 5 s")
        idle = servers[0].idle_cpu(5.0)  # type: ignore[union-attr]
        say("warm-up round")
        one_round(lpd, servers, args, None, small[:20], 99)
        got: dict[str, list[float]] = {}
        for number in range(args.runs):
            say(f"round {number + 1}/{args.runs}")
            for key, value in one_round(lpd, servers, args, big, small, number).items():
                got.setdefault(key, []).append(value)
        return got, [s.name for s in servers], idle
    finally:
        for server in servers:
            server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    missing = [p for p in (LPD, LPR) if not os.access(p, os.X_OK)]
    if missing or os.geteuid() != 0 or not shutil.which("unshare"):
        print(f"lpd_server_bench: needs root and LPRng (missing: {missing or 'none'})",
              file=sys.stderr)
        return 2
    say, load_before = progress(args.json), os.getloadavg()[0]
    with scratch_dirs("lpfilter-lpd-server-bench-", "/tmp") as (root,):
        try:
            got, names, idle = measure(args, root, say)
        except BenchError as exc:
            print(f"lpd_server_bench: cannot benchmark: {exc}", file=sys.stderr)
            return 2
    info = {**machine_info(), "lpfilter": lpfilter_info(), "before": args.before or "-",
            "servers": "lpfilter watch --listen 127.0.0.1 and LPRng lpd -F, each printing to"
                       " a socket printer on loopback (a sink here), spools on /tmp",
            "load average (1 min)": load_average(load_before)}
    if args.json:
        print(json.dumps({"info": info, "args": vars(args), "samples": got, "idle_cpu": idle,
                          "targets": verdicts(got, idle)}, indent=2))
        return 0
    print_info(info)
    report(got, names, args, idle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
