#!/usr/bin/env python3
"""An ordinary user's commands through the print server (issue 16, round 18).

A user who may not write a queue's spool (root's) prints, asks for status and cancels
through the daemon's Unix socket (commands/daemonclient.py, daemonprint.py): the job
goes as LPD's receive-job, and the print asks the queue's status for the job's id.

Run as root. It makes a user (useradd, removed at the end), starts ``lpfilter watch``
(queue q, root's spool, printing to a loopback sink; the local socket only), and times
in interleaved rounds, each command in a fresh process:

* the floor: the user's ``python3 -S -I -c pass``;
* the user's ``print --no-wait -P q FILE``, ``status -P q`` and ``cancel -P q N`` (N the
  job that round's print queued: cancel tells it is done, or cancels it);
* root's own ``print --no-wait -P q FILE`` (the spool's owner spools it directly, the
  daemon prints it), the same interpreter, for comparison.

Every command runs with the system's ``/usr/bin/python3 -S -I`` and the package on
``sys.path``, as tests/localkit.py runs them: a venv's interpreter may live where other
users cannot enter (here under /root). Own cost = a command's median wall time minus
the floor's. ``--before DIR``: the same with the lpfilter package in DIR (``git archive
REV lpfilter | tar -x -C DIR``; its own daemon, the same dependencies), interleaved.
``--kept N``: the queue keeps N finished jobs (``done_jobs#N``), printed by root before
the rounds: what a busy queue's ``status`` carries, and the user's ``print`` asked for.

A benchmark, not a test: it prints Markdown and exits 0 (2 if it could not run).
"""
from __future__ import annotations

import argparse
import compileall
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from benchkit import (BenchError, header, load_average, machine_info, print_info, row,
                      scratch_dirs, spread, stop_process)
from lpd_server_bench import Sink

SYSTEM_PYTHON = "/usr/bin/python3"
#: The user's ``lpfilter``: the console script's own steps (lpfilter.__main__), the
#: package first on the path, no .pth files, nothing of the environment's.
BOOT = ("import sys; sys.path[:0] = {path!r}; sys.argv[0] = 'lpfilter'; "
        "from lpfilter.__main__ import main; sys.exit(main())")
VARIANTS = ("floor", "print", "status", "cancel", "root print")


def _site_of(module: str) -> str:
    """The directory that holds ``module`` for this interpreter."""
    return str(Path(str(__import__(module).__file__)).resolve().parent.parent)


@contextlib.contextmanager
def made_user() -> Iterator[str]:
    """A login of its own group, no home, removed however the run ends."""
    name = f"lpfb{secrets.token_hex(3)}"
    subprocess.run(["useradd", "--no-create-home", "--user-group", "--shell",
                    "/usr/sbin/nologin", name], check=True, timeout=60, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False, timeout=60, capture_output=True)


class Site:
    """One package's daemon, queue and documents, and the commands timed against it."""

    def __init__(self, root: Path, package: str, user: str, kept: int = 0) -> None:
        self.root, self.user = root, user
        root.mkdir(mode=0o755)
        root.chmod(0o755)  # (the user enters it: its home, the socket, the document)
        self.sink = Sink()
        self.sd = root / "sd"
        self.sd.mkdir(mode=0o755)  # root's: the user may read, not write
        self.printcap = root / "printcap"
        self.printcap.write_text(f"q:lp=127.0.0.1%{self.sink.port}:sd={self.sd}"
                                 f":done_jobs#{max(kept, 1)}\n")
        self.printcap.chmod(0o644)
        self.doc = root / "doc.txt"
        self.doc.write_bytes(b"a small job of the user's, one line of text\n" * 23)
        self.doc.chmod(0o644)
        home = root / "home"
        home.mkdir()
        shutil.chown(home, user, user)
        (root / "run").mkdir(mode=0o711)  # (as lpfilter makes /run/lpfilter)
        self.socket = root / "run" / "lpfilter.sock"
        path = [package, _site_of("pyparsing"), _site_of("psutil")]
        self.boot = BOOT.format(path=list(dict.fromkeys(path)))
        self.env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(home),
                    "LPFILTER_PRINTCAP": str(self.printcap), "LPFILTER_SOCKET": str(self.socket)}
        #: Root's (the daemon's and root's own print): its lock directory here too.
        self.root_env = {**self.env, "HOME": str(root), "LPFILTER_LOCK_DIR": str(root / "lk")}
        self.daemon = self._start()
        self.last = ""
        if kept:
            self._fill(kept)

    def _fill(self, count: int) -> None:
        """``count`` jobs printed by root, in one command; back when the printer has them."""
        argv = [SYSTEM_PYTHON, "-S", "-I", "-c", self.boot, "print", "--no-wait", "-P", "q",
                *[str(self.doc)] * count]
        done = subprocess.run(argv, env=self.root_env, capture_output=True, timeout=600)
        if done.returncode != 0:
            raise BenchError(f"print of {count} jobs: {done.stderr[-500:]!r}")
        size = count * self.doc.stat().st_size
        self.sink.wait(size, f"{count} jobs kept", lambda: self.daemon.poll() is None)

    def _start(self) -> subprocess.Popen[bytes]:
        """``lpfilter watch`` as root, waiting until its socket answers."""
        argv = [SYSTEM_PYTHON, "-S", "-I", "-c", self.boot, "watch", "-P", "q"]
        with (self.root / "watch.log").open("ab") as log:
            proc = subprocess.Popen(argv, env=self.root_env,
                                    stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while not self.socket.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_process(proc)
                raise BenchError(f"lpfilter watch did not start:\n"
                                 f"{(self.root / 'watch.log').read_text()[-800:]}")
            time.sleep(0.05)
        return proc

    def argv(self, variant: str) -> list[str]:
        as_user = ["setpriv", f"--reuid={self.user}", f"--regid={self.user}",
                   "--init-groups", "--"]
        run = [SYSTEM_PYTHON, "-S", "-I", "-c"]
        if variant == "floor":
            return [*as_user, *run, "pass"]
        if variant == "root print":
            return [*run, self.boot, "print", "--no-wait", "-P", "q", str(self.doc)]
        words = {"print": ["print", "--no-wait", "-P", "q", str(self.doc)],
                 "status": ["status", "-P", "q"],
                 "cancel": ["cancel", "-P", "q", self.last.rpartition("-")[2] or "1"]}
        return [*as_user, *run, self.boot, *words[variant]]

    def time(self, variant: str) -> float:
        """Wall seconds of one command; its output checked."""
        start = time.perf_counter()
        env = self.root_env if variant == "root print" else self.env
        done = subprocess.run(self.argv(variant), env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        took = time.perf_counter() - start
        out = done.stdout.strip()
        fine = {"floor": out == "", "print": out.startswith("q-"),
                "root print": out.startswith("q-"), "status": "Queue q" in out,
                "cancel": out.endswith(("already done", "cancelled"))}[variant]
        if done.returncode != 0 or not fine:
            raise BenchError(f"{variant} (exit {done.returncode}): {out[-300:]}"
                             f" {done.stderr[-500:]}")
        if variant == "print":
            self.last = out
        return took

    def close(self) -> None:
        stop_process(self.daemon)  # (watch stops its own children)
        self.sink.close()


def measure(sites: dict[str, Site], runs: int) -> dict[str, dict[str, list[float]]]:
    """``runs`` rounds; each round every site's variants once, the sites' order alternating."""
    times: dict[str, dict[str, list[float]]] = {name: {v: [] for v in VARIANTS} for name in sites}
    names = list(sites)
    for round_ in range(runs + 1):  # the first: a warm-up (parse caches, page cache)
        for name in names if round_ % 2 else names[::-1]:
            for variant in VARIANTS:
                took = sites[name].time(variant)
                if round_:
                    times[name][variant].append(took * 1e3)
    return times


def report(times: dict[str, dict[str, list[float]]], runs: int, load: float,
           kept: int) -> None:
    print_info({**machine_info(), "python": subprocess.run(
        [SYSTEM_PYTHON, "-V"], capture_output=True, text=True).stdout.strip(),
        "rounds": runs, "finished jobs kept before": kept, "load": load_average(load)})
    print()
    names = list(times)
    header("command (ms)", *(f"{n}: median (min–max)" for n in names),
           *(f"{n}: own cost" for n in names))
    for variant in VARIANTS:
        cells, own = [], []
        for name in names:
            mid, low, high = spread(times[name][variant])
            floor = spread(times[name]["floor"])[0]
            cells.append(f"{mid:.1f} ({low:.1f}–{high:.1f})")
            own.append("—" if variant == "floor" else f"{mid - floor:.1f}")
        row(f"`{variant}`", *cells, *own)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="rounds (default 20)")
    parser.add_argument("--kept", type=int, default=0, metavar="N",
                        help="finished jobs the queue keeps (done_jobs#N), printed first")
    parser.add_argument("--before", metavar="DIR",
                        help="also time the lpfilter package in DIR (a git archive)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("user_commands_bench: run it as root (it makes a user)", file=sys.stderr)
        return 2
    packages = {"now": _site_of("lpfilter")}
    if args.before:
        packages["before"] = str(Path(args.before).resolve())
        compileall.compile_dir(packages["before"], quiet=1)  # the user may not write .pyc
    load = os.getloadavg()[0]
    try:
        with made_user() as user, scratch_dirs("user-commands-", tempfile.gettempdir()) as [tmp]:
            tmp.chmod(0o755)  # (the user enters it: its home, the socket, the document)
            sites: dict[str, Site] = {}
            try:
                for name, package in packages.items():
                    sites[name] = Site(tmp / name, package, user, args.kept)
                times = measure(sites, args.runs)
            finally:
                for site in sites.values():
                    site.close()
    except BenchError as exc:
        print(f"user_commands_bench: cannot benchmark: {exc}", file=sys.stderr)
        return 2
    report(times, args.runs, load, args.kept)
    return 0


if __name__ == "__main__":
    sys.exit(main())
