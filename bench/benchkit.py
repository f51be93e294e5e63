"""Helpers the bench/*_bench.py scripts share, so each is written once.

The scripts are run as ``python bench/NAME_bench.py``, which puts bench/ on sys.path and
makes ``import benchkit`` work. Only what is the same in every caller lives here: each
script still measures, formats its cells and judges its targets in its own way.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil


class BenchError(Exception):
    """The benchmark itself cannot run; never raised for a missed target."""


def clean_env(tmp: Path, locks: bool = True) -> dict[str, str]:
    """The user's environment, writing .pyc files, with no printer settings and a cache
    home inside ``tmp``; with ``locks``, the lock directory is inside ``tmp`` too."""
    drop = ("PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME", "PYTHONTRACEMALLOC",
            "PYTHONDEVMODE", "LPFILTER_PRINTCAP", "LPFILTER_CACHE_DIR", "LPFILTER_NO_CACHE",
            "PRINTER", "LPDEST", *(("LPFILTER_LOCK_DIR",) if locks else ()))
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["XDG_CACHE_HOME"] = str(tmp / "xdg-cache")
    if locks:
        env["LPFILTER_LOCK_DIR"] = str(tmp / "lk")
    return env


def stop_process(proc: subprocess.Popen[bytes], wait: float = 30.0) -> None:
    """SIGTERM (an orderly stop), and SIGKILL if it lingers past ``wait`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def spool_jobs(sd: Path) -> list[dict[str, Any]]:
    """Every job a queue's spool records, as ticket fields: from its journal (issue 16),
    else from the ticket files an older version wrote (a ``--before`` package)."""
    journal = sd / ".lpfilter" / "journal"
    if journal.exists():
        from lpfilter.spool.jobindex import replay_file
        return list(replay_file(str(journal)).values())
    return [json.loads(p.read_text()) for p in (sd / ".lpfilter" / "jobs").glob("*.job")]


def lpfilter_command() -> list[str]:
    """The ``lpfilter`` script beside this interpreter, else ``python -m lpfilter``."""
    script = Path(sys.executable).parent / "lpfilter"
    return [str(script)] if os.access(script, os.X_OK) else [sys.executable, "-m", "lpfilter"]


def add_options(parser: argparse.ArgumentParser,
                options: Sequence[tuple[str, type, object, str]]) -> None:
    """An option per ``(flag, type, default, help)``."""
    for flag, kind, default, text in options:
        parser.add_argument(flag, type=kind, default=default, help=f"{text} (default {default})",
                            metavar={int: "N", float: "S", str: "DIR"}[kind])


def progress(quiet: bool) -> Callable[[str], None]:
    """Prints a progress line to stderr, or nothing when ``quiet`` (--json)."""
    return (lambda text: None) if quiet else (lambda text: print(text, file=sys.stderr))


def spread(samples: Sequence[float]) -> tuple[float, float, float]:
    """(median, min, max) of the samples."""
    return statistics.median(samples), min(samples), max(samples)


def verdict(median: float, limit: float, higher: bool = False, judged: bool = True) -> str:
    """PASS or MISS for a median against its limit; N/A when not ``judged`` here."""
    ok = median >= limit if higher else median < limit
    return "N/A" if not judged else "PASS" if ok else "MISS"


def row(*cells: str) -> None:
    """One row of a Markdown table."""
    print("| " + " | ".join(cells) + " |")


def header(*cells: str) -> None:
    """A Markdown table's header row and its separator."""
    row(*cells), row(*["---"] * len(cells))


def print_info(info: dict[str, object]) -> None:
    for key, value in info.items():
        print(f"{key}: {value}")


def machine_info() -> dict[str, str]:
    """The first lines of every report: today's date and the machine."""
    return {"date": datetime.date.today().isoformat(),
            "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.platform()}"}


def lpfilter_info() -> str:
    """The command timed, and where this interpreter imports the lpfilter package from."""
    import lpfilter
    return f"{' '.join(lpfilter_command())}, package from {Path(lpfilter.__file__).parent.parent}"


def load_average(before: float) -> str:
    """The 1-minute load average before the run (``os.getloadavg()[0]``) and now."""
    return f"{before:.2f} before, {os.getloadavg()[0]:.2f} after"


def size_arg(text: str) -> int:
    """``1G``, ``64M``, ``512K`` or a number of MiB, in bytes (for ``--size``)."""
    match = re.fullmatch(r"(\d+)([KMG]?)i?B?", text.strip(), re.I)
    if not match or int(match[1]) < 1:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    return int(match[1]) * {"K": 2**10, "M": 2**20, "G": 2**30, "": 2**20}[match[2].upper()]


def fs_type(path: str) -> str:
    """The file system type under ``path`` (ext4, tmpfs...), for the report."""
    done = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-T", path], capture_output=True,
                          text=True)
    return (done.stdout.split() or ["?"])[0]


@contextlib.contextmanager
def scratch_dirs(prefix: str, *bases: str) -> Iterator[list[Path]]:
    """A temporary directory under each of ``bases``, removed afterwards whatever happens
    (SIGTERM too: it becomes SystemExit, so the cleanup still runs)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    roots: list[Path] = []
    try:
        for base in bases:
            roots.append(Path(tempfile.mkdtemp(prefix=prefix, dir=base)))
        yield roots
    finally:
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)


def reap_timed(proc: subprocess.Popen[bytes], timeout: float, kill: Callable[[], None],
               argv: Sequence[object], output: Path) -> float:
    """Wait for ``proc`` (``kill()`` after ``timeout`` seconds) and return when it ended;
    a non-zero exit status is a BenchError with the command and the end of its output."""
    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        _, status = os.waitpid(proc.pid, 0)
    finally:
        timer.cancel()
    end = time.perf_counter()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(map(str, argv))[:300]}: exit status {proc.returncode}\n"
                         + output.read_text(errors="replace")[-2000:])
    return end


def settle_memory(size: int) -> None:
    """Touch ``size`` bytes of fresh memory and free them again, so that the next timed run
    gets pages the machine already backs. On a virtual machine that reports free pages to
    its host (virtio-balloon free page reporting, seen on the benchmark machine), the first
    write to a page given back costs a fault in the host: a run that happens to follow a
    large free (an untimed step that deleted a big file) then pays for memory, not for the
    program measured. Called before every timed run of every program, it evens that out.
    Capped at half the memory available, and touches one byte a page."""
    import mmap  # only the benchmarks that move large files need it

    available = int(next((line.split()[1] for line in Path("/proc/meminfo").read_text()
                          .splitlines() if line.startswith("MemAvailable:")), "0")) * 1024
    size = min(size, available // 2) // mmap.PAGESIZE * mmap.PAGESIZE
    if size <= 0:
        return
    with mmap.mmap(-1, size) as area:
        for offset in range(0, size, mmap.PAGESIZE):
            area[offset] = 1


def settle_page_cache(folder: Path, size: int) -> None:
    """Write ``size`` bytes to a file in ``folder`` and delete it, just before a timed run
    of a program that writes that much to the same file system. ``settle_memory`` touches
    anonymous memory; a server writing a big file gets page-cache pages, and on the
    benchmark machine a page the host has taken back costs the first write to it a fault
    in the host: perf showed 90 % of a receiving daemon's time in
    ``copy_folio_from_iter_atomic`` (9.7 s of system time for 1 GiB, against 0.5 s when
    the pages had just been used). Pages just freed are the ones the next writer gets,
    so whichever program runs next starts from used pages, as on a machine in service."""
    chunk = b"\0" * (1 << 20)
    path = folder / "settle-page-cache"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(-(-size // len(chunk))):
            os.write(fd, chunk)
    finally:
        os.close(fd)
        path.unlink()


class FirstFile:
    """When the first new file whose name starts with one of ``prefixes`` appeared in
    ``folder``: polled every millisecond by a thread, between ``start()`` and ``stop()``.
    It tells when a server began to receive, for a client that cannot say so itself."""

    def __init__(self, folder: Path, prefixes: tuple[str, ...]) -> None:
        self.folder, self.prefixes = folder, prefixes
        self.seen: float | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> FirstFile:
        before = set(os.listdir(self.folder))
        self.seen, self._done = None, threading.Event()
        self._thread = threading.Thread(target=self._poll, args=(before,), daemon=True)
        self._thread.start()
        return self

    def _poll(self, before: set[str]) -> None:
        while not self._done.is_set():
            if any(name.startswith(self.prefixes) and name not in before
                   for name in os.listdir(self.folder)):
                self.seen = time.perf_counter()
                return
            self._done.wait(0.001)

    def stop(self) -> float:
        """The time (perf_counter) of the first new file; BenchError if none appeared."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.seen is None:
            raise BenchError(f"no new file appeared in {self.folder}")
        return self.seen


def tree_rss(root: psutil.Process) -> int:
    """RSS of a process and its children (a child that ends meanwhile counts nothing)."""
    total = 0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += process.memory_info().rss
    return total


def rss_sampler(process: psutil.Process, *, tree: bool = False) -> Callable[[], int]:
    """Sample the RSS of ``process`` (with ``tree``, of it and its children) every 10 ms in
    a thread; the returned call stops the sampling and gives the peak. The sampling ends
    by itself, its peak kept, when the process has ended."""
    peak, done = [0], threading.Event()

    def run() -> None:
        while not done.is_set():
            try:
                peak[0] = max(peak[0], tree_rss(process) if tree
                              else process.memory_info().rss)
            except psutil.NoSuchProcess:
                return
            done.wait(0.01)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def stop() -> int:
        done.set()
        thread.join(timeout=10)
        return peak[0]
    return stop
