"""Helpers for tests that run lpfilter as real processes: printcaps, spool directories,
backend programs, bounded waits, and clean-up of every process a test started."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from lpfilter.locks import current_holder
from lpfilter.spool.jobindex import replay_file
from lpfilter.spool.journalformat import Kind, encode, first_lsn
from lpfilter.spool.store import SpoolStore
from lpfilter.spool.watcher import Watcher

T = TypeVar("T")

#: The recording backend program: the job on stdin goes to OUT/QUEUE-JOB.out, and one line
#: "queue job ppid start end name" to OUT/log. Flag files next to it change its behaviour:
#: OUT/hang (read a little, say so in OUT/QUEUE-JOB.ready, sleep), OUT/slow (sleep first).
RECORDER = r'''#!{python} -IS
import os, sys, time
OUT, PIDS = {out!r}, {pids!r}
queue, job = os.environ.get("PRINTER", "?"), os.environ["LPFILTER_JOB"]
name = os.environ.get("LPFILTER_JOB_NAME", "")
open(os.path.join(PIDS, str(os.getpid())), "w").close()
start = time.time()
if os.path.exists(os.path.join(OUT, "hang")):
    sys.stdin.buffer.read(4096)
    with open(os.path.join(OUT, f"{{queue}}-{{job}}.ready"), "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(60)
    sys.exit(0)
marker = os.path.join(OUT, "busy")
try:
    os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
except FileExistsError:
    open(os.path.join(OUT, "overlap"), "a").write(f"{{queue}} {{job}}\n")
    marker = None
data = sys.stdin.buffer.read()
time.sleep({delay})
if os.path.exists(os.path.join(OUT, "slow")):
    time.sleep(1.5)
# whole or not at all: a test reading the .out file must never see it half written
with open(os.path.join(OUT, f".{{queue}}-{{job}}.tmp"), "wb") as handle:
    handle.write(data)
os.rename(handle.name, os.path.join(OUT, f"{{queue}}-{{job}}.out"))
end = time.time()
if marker:
    os.unlink(marker)
with open(os.path.join(OUT, "log"), "a") as handle:
    handle.write(f"{{queue}} {{job}} {{os.getppid()}} {{start:.6f}} {{end:.6f}} {{name}}\n")
'''


def wait_until(predicate: Callable[[], T], timeout: float = 20.0, interval: float = 0.05,
               what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Proc:
    """A started lpfilter process whose output goes to files."""

    popen: subprocess.Popen[bytes]
    out: Path
    err: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait(self, timeout: float = 20.0) -> int:
        return self.popen.wait(timeout=timeout)

    def signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait for the exit status."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")


@dataclass
class Kit:
    """One test's lpfilter world under ``root``: printcap, locks, queues, programs."""

    root: Path
    queues: dict[str, str] = field(default_factory=dict)
    spools: dict[str, Path] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.printcap = self.root / "printcap"
        self.lock_dir = self.root / "locks"
        self.out = self.root / "out"
        self.pids = self.root / "pids"
        for path in (self.lock_dir, self.out, self.pids):
            path.mkdir(mode=0o700)
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("PRINTER", "LPDEST", "PYTHONSTARTUP")}
        self.env.update(LPFILTER_PRINTCAP=str(self.printcap),
                        LPFILTER_LOCK_DIR=str(self.lock_dir))

    # --- configuration ----------------------------------------------------------------
    def queue(self, name: str, lp: str, *, accounting: bool = True, write: bool = True,
              parent: Path | None = None, **options: object) -> Path:
        """Add a queue (spool dir mode 0700 in ``parent``, default root; instant retries);
        returns its spool directory. An ``lp=|`` program runs as ``user`` (``root`` unless
        given; None: the printcap says none, so daemon) since the kit's programs and files
        are in root's 0700 pytest directory, where a root watcher's daemon cannot reach."""
        if lp.startswith("|"):
            options.setdefault("user", "root")
        options = {k: v for k, v in options.items() if v is not None}
        sd = (parent or self.root) / f"spool-{name}"
        sd.mkdir(mode=0o700, exist_ok=True)
        self.spools[name] = sd
        if accounting:
            (sd / "acct").touch()
        # The tests read lpfilter's own key=value accounting lines (accounting()).
        opts = {"connect_interval": 0, "max_connect_interval": 0, "done_jobs": 100000,
                **({"accounting_format": "keyvalue"} if accounting else {}), **options}
        parts = [name, f"sd={sd}", f"lp={lp}"]
        for key, value in opts.items():
            if value is True:
                parts.append(key)
            elif value is False:
                parts.append(f"{key}@")
            elif isinstance(value, int):
                parts.append(f"{key}#{value}")
            else:
                parts.append(f"{key}={value}")
        self.queues[name] = ":".join(parts)
        if write:
            self.write_printcap()
        return sd

    def write_printcap(self) -> None:
        text = "".join(line + "\n" for line in self.queues.values())
        tmp = self.printcap.with_suffix(".new")
        tmp.write_text(text)
        os.replace(tmp, self.printcap)

    def program(self, name: str, text: str) -> Path:
        """An executable backend program (its text starts with #!)."""
        path = self.root / name
        path.write_text(text)
        path.chmod(0o755)
        return path

    def recorder(self, delay: float = 0.0) -> str:
        """The recording program (see RECORDER) as an lp= value."""
        path = self.program("recorder.py", RECORDER.format(
            python=sys.executable, out=str(self.out), pids=str(self.pids), delay=delay))
        return f"|{path}"

    # --- processes --------------------------------------------------------------------
    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "lpfilter", *args]

    def run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run an lpfilter command to its end (bounded)."""
        return subprocess.run(self.argv(*args), env=self.env, cwd=self.root, text=True,
                              capture_output=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL)

    def start(self, *args: str) -> Proc:
        """Start an lpfilter command in the background; the fixture kills it if still up."""
        return self.spawn(self.argv(*args))

    def spawn(self, argv: list[str]) -> Proc:
        """Start any process in the background, output to files; killed at clean-up."""
        n = len(self.procs)
        out, err = self.root / f"proc{n}.out", self.root / f"proc{n}.err"
        with open(out, "wb") as o, open(err, "wb") as e:
            popen = subprocess.Popen(argv, env=self.env, cwd=self.root,
                                     stdin=subprocess.DEVNULL, stdout=o, stderr=e)
        proc = Proc(popen, out, err)
        self.procs.append(proc)
        return proc

    def cleanup(self) -> None:
        """Kill every process this test started (lpfilter and backend programs), by pid."""
        for proc in self.procs:
            if proc.popen.poll() is None:
                proc.popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=10)
        for entry in self.pids.iterdir():
            with contextlib.suppress(psutil.Error, ValueError):
                process = psutil.Process(int(entry.name))
                if any(str(self.root) in part for part in process.cmdline()):
                    process.kill()

    # --- what is on disk --------------------------------------------------------------
    def tickets(self, queue: str) -> dict[str, dict[str, Any]]:
        """Every job of a queue as its journal says (a ticket's fields), by job id."""
        path = self.sd(queue) / ".lpfilter" / "journal"
        try:
            return replay_file(str(path))
        except FileNotFoundError:
            return {}

    def ticket(self, queue: str, job: str) -> dict[str, Any]:
        return self.tickets(queue)[job]

    def states(self, queue: str) -> dict[str, str]:
        return {i: t["state"] for i, t in self.tickets(queue).items()}

    def sd(self, queue: str) -> Path:
        return self.spools[queue]

    def accounting(self, queue: str) -> list[dict[str, str]]:
        """The accounting lines of a queue, as key=value dicts (the date fields dropped)."""
        lines = (self.sd(queue) / "acct").read_text().splitlines()
        return [dict(w.split("=", 1) for w in line.split() if "=" in w) for line in lines]

    def log_lines(self) -> list[list[str]]:
        """The recorder's log: [queue, job, ppid, start, end, name] per finished job."""
        path = self.out / "log"
        return [line.split(" ", 5) for line in path.read_text().splitlines()] if (
            path.exists()) else []

    def output(self, queue: str, job: str) -> bytes | None:
        path = self.out / f"{queue}-{job}.out"
        return path.read_bytes() if path.exists() else None


def wait_served(kit: Kit, queue: str, proc: Proc) -> None:
    """Wait until ``proc`` holds the queue's lock (it serves the queue)."""
    lock = str(kit.sd(queue) / ".lpfilter" / "queue.lock")

    def served() -> bool:
        if proc.popen.poll() is not None:
            raise AssertionError(f"pid {proc.pid} exited {proc.popen.returncode}:"
                                 f" {proc.stderr()}")
        holder = current_holder(lock)
        return holder is not None and holder.pid == proc.pid

    wait_until(served, what=f"pid {proc.pid} to serve {queue}")


def all_done(kit: Kit, queue: str, ids: list[str]) -> bool:
    """Are all these jobs of the queue done?"""
    states = kit.states(queue)
    return all(states.get(i) == "done" for i in ids)


def write_files(directory: Path, count: int, prefix: str = "f", size: int = 0) -> list[Path]:
    """``count`` small files to print, each with its own one-line content (padded to
    ``size`` bytes: past jobdata.INLINE_MAX, each job gets a data file of its own)."""
    directory.mkdir(exist_ok=True)
    paths = [directory / f"{prefix}{n:04d}.txt" for n in range(count)]
    for n, path in enumerate(paths):
        line = f"{prefix} job {n} {os.urandom(6).hex()}\n"
        path.write_text(line + "." * (size - len(line) - 1) + "\n" if size > len(line) else line)
    return paths


def spooled_data(sd: Path, job_id: str, queue: str = "q") -> bytes | None:
    """A job's bytes as spooled (its data file, or the journal's copy for a small job
    ``print`` spooled), None when the spool keeps none."""
    store = SpoolStore(str(sd), queue)
    try:
        fd = store.open_data(job_id) if store.read(job_id) is not None else None
    finally:
        store.close()
    if not isinstance(fd, int):
        return None
    try:
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read()
    finally:
        os.close(fd)


def gone(pid: int) -> bool:
    """Has the process ended (a zombie counts)?"""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def job_ids(stdout: str, queue: str) -> list[str]:
    """The job ids ``lpfilter print`` printed (``Q-NNNNNN`` lines)."""
    ids = [line.removeprefix(f"{queue}-") for line in stdout.split()]
    assert ids and all(i.isdigit() for i in ids), stdout
    return ids


@contextlib.contextmanager
def kit_at(root: Path) -> Iterator[Kit]:
    """A Kit whose processes are all ended when the block exits."""
    kit = Kit(root)
    try:
        yield kit
    finally:
        kit.cleanup()


@contextlib.contextmanager
def open_kit(prefix: str) -> Iterator[Kit]:
    """A Kit in a new temporary root other users may enter (mode 0755; pytest's tmp_path is
    root's 0700), for tests that run commands as an ordinary user; removed afterwards."""
    import shutil
    import tempfile
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    try:
        with kit_at(root) as made:
            yield made
    finally:
        shutil.rmtree(root)


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[Kit]:
    """A Kit under tmp_path; every process it started is ended afterwards."""
    with kit_at(tmp_path) as spool_kit:
        yield spool_kit


@pytest.fixture
def in_process_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Queue q (``lp=/dev/null``) for ``main(argv)`` called in the test's own process:
    its printcap and lock directory in the environment. Returns its spool directory."""
    sd = tmp_path / "sd"
    sd.mkdir(mode=0o700)
    printcap = tmp_path / "printcap"
    printcap.write_text(f"q:lp=/dev/null:sd={sd}\n")
    monkeypatch.setenv("LPFILTER_PRINTCAP", str(printcap))
    monkeypatch.setenv("LPFILTER_LOCK_DIR", str(tmp_path / "locks"))
    return sd


def retire_stopped_worker(watcher: Watcher, name: str, why: str) -> None:
    """Wake queue ``name``'s worker in an in-process daemon, wait until it stops on an error
    (``why``, for the message), then do what the daemon's loop does with it (bounded)."""
    served = watcher.served[name]
    served.worker.wake()
    wait_until(lambda: served.error is not None, what=f"the worker to stop on {why}")
    assert served.thread is not None
    served.thread.join(20)
    watcher._retire_stopped()


@pytest.fixture
def fast_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on tmpfs where there is one (fsync costs nothing), else under tmp_path."""
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK | os.X_OK):
        with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="lpfilter-test-") as path:
            yield Path(path)
    else:
        yield tmp_path


# --- forging the journal, as a spool's owner can ------------------------------------------
def journal_path(sd: Path) -> Path:
    return sd / ".lpfilter" / "journal"


def forge_record(sd: Path, kind: int, payload: bytes) -> None:
    """A well-framed record appended to a queue's journal (its owner may write anything
    there): what root's watcher must take as untrusted input."""
    path = journal_path(sd)
    data = path.read_bytes() if path.exists() else b""
    with open(path, "ab") as handle:
        handle.write(encode(first_lsn(data) + len(data), kind, payload))


def forge_job(sd: Path, fields: dict[str, Any]) -> None:
    """A JOB record of the owner's making (a ticket's fields, as ``Kit.tickets`` gives)."""
    forge_record(sd, Kind.JOB, json.dumps(fields).encode())
