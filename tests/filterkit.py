"""Helpers for the ``lpfilter filter`` tests: the installed program run the way LPRng's lpd
runs a filter (lprng-filters.md §2-§4): the recorded argument vector, lpd's environment
(PRINTER, USER, ..., PRINTCAP_ENTRY in lpd's text form), cwd = the spool directory, and

* as ``lp=|program``: one end of a socketpair as fds 0, 1 and 2; the job is written, the
  socket half-closed, status lines read back until EOF, then the exit code collected;
* as ``if=``: the spool file as a seekable stdin, stdout a socket (or a file), stderr a pipe.

Printers are the JetDirect emulator on 127.0.0.1 port 0 in a thread. Every wait is
bounded; every socket, file, thread and process is closed or reaped."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lpfilter.emulator.jetdirect import Behaviour, VirtualPrinter

LPFILTER = str(Path(sys.executable).with_name("lpfilter"))
UEL = b"\x1b%-12345X"
#: Short timings so a failure shows in seconds, not minutes.
FAST = {"connect_timeout": "2", "stall_timeout": "5", "waitend_timeout": "3"}
#: The lab's job: lpr -Pq1 -J MyJob -C Z -T title1 -w 100 -i 4 -Z opt1=a,opt2=b job1.txt
JOB = {"A": "root@localhost+507", "C": "Z", "D": "2026-11-21-04:12:41.392", "H": "localhost",
       "I": "4", "J": "MyJob", "L": "root", "N": "/tmp/lpdlab/job1.txt", "P": "q1",
       "Q": "q1", "S": "Test queue one", "T": "title1", "W": "100", "Z": "opt1=a,opt2=b",
       "a": "acct", "b": "18", "e": "dfA507localhost", "f": "/tmp/lpdlab/job1.txt",
       "h": "localhost", "i": "4", "j": "507", "l": "66", "n": "root", "s": "status",
       "t": "2026-11-21-04:12:41.000", "w": "80", "x": "0", "y": "0"}
#: Letters lpd leaves out for an lp=| program (and the OF filter): -F -N -e -f.
PER_FILE = "FNef"
MakePrinter = Callable[..., VirtualPrinter]


def pjl_job(name: str, data: bytes) -> bytes:
    """What a PJL printer must receive for ``data`` named ``name`` (written out by hand:
    printer-protocols.md §2, not lpfilter's own functions)."""
    return (UEL + b"@PJL\r\n@PJL JOB NAME=\"" + name.encode() + b"\"\r\n@PJL USTATUS JOB=ON\r\n"
            + data + UEL + b"@PJL\r\n@PJL EOJ NAME=\"" + name.encode() + b"\"\r\n" + UEL)


@dataclass
class Lpd:
    """One queue q1 as LPRng's lpd would hand it to a filter."""

    root: Path
    spool: Path = field(init=False)
    home: Path = field(init=False)
    locks: Path = field(init=False)

    def __post_init__(self) -> None:
        self.spool = self.root / "spool" / "q1"
        self.spool.mkdir(parents=True)
        self.home = self.root / "home"
        self.home.mkdir()
        self.locks = self.root / "locks"

    def argv(self, destination: str | None = None, *, lp_pipe: bool = True,
             **values: str) -> list[str]:
        """The recorded option list (``filter_options``: upper case first, then lower,
        then the bare accounting file), with ``values`` replacing the lab's; a value of ""
        is dropped, as lpd drops it."""
        merged = {**JOB, "d": str(self.spool), **values}
        letters = sorted((k for k in merged if not (lp_pipe and k in PER_FILE)),
                         key=lambda k: (k.islower(), k))
        argv = [f"-{k}{merged[k]}" for k in letters if merged[k]]
        accounting = [merged["a"]] if merged.get("a") else []
        return ([destination] if destination else []) + argv + accounting

    def entry(self, lp: str, *flags: str, **options: str) -> str:
        """PRINTCAP_ENTRY as lpd sets it: names, then `` :key=value`` lines (sorted)."""
        keys = {"cm": "Test queue one", "lp": lp, "sd": str(self.spool), **FAST, **options}
        lines = [f" :{k}={v}" for k, v in keys.items()] + [f" :{flag}" for flag in flags]
        return "q1|queue1\n" + "".join(f"{line}\n" for line in sorted(lines))

    def env(self, entry: str | None, **extra: str) -> dict[str, str]:
        """Exactly the variables lpd gives a filter (§4), plus LPFILTER_LOCK_DIR."""
        hold = "".join(f"{k}={JOB[k]}\n" for k in "ACDHJLNPQ") + (
            "datafiles=dfA507localhost\nhf_name=hfA507\nnumber=507\npriority=Z\nsize=18\n")
        env = {"PRINTER": "q1", "USER": "root", "LOGNAME": "root", "HOME": str(self.home),
               "LOGDIR": str(self.home), "PATH": "/bin:/usr/bin:/usr/local/bin",
               "SHELL": "/bin/sh", "IFS": " \t", "SPOOL_DIR": str(self.spool), "HF": hold,
               "DATAFILES": "dfA507localhost ", "LPFILTER_LOCK_DIR": str(self.locks)}
        if entry is not None:
            env["PRINTCAP_ENTRY"] = entry
        env.update(extra)
        return env

    def acct(self) -> Path:
        return self.spool / "acct"


@dataclass
class Run:
    rc: int
    #: What the program wrote back (status lines), decoded.
    text: str
    seconds: float

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def has(self, words: str) -> bool:
        return any(words in line for line in self.lines)


def read_to_eof(sock: socket.socket, timeout: float = 20.0) -> bytes:
    """Everything until EOF, within ``timeout`` s (a reset after the data counts as EOF)."""
    deadline = time.monotonic() + timeout
    got = bytearray()
    for _ in range(100_000):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no EOF within {timeout:g} s; got {bytes(got)!r}")
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        got += chunk
    return bytes(got)


def reap(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """The exit status within ``timeout`` s; a program still running then is killed."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        raise AssertionError(f"lpfilter filter still running after {timeout:g} s") from None


def stop(proc: subprocess.Popen[bytes]) -> None:
    """A program a failed test left running is killed and reaped."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def lp_pipe(lpd: Lpd, argv: list[str], env: dict[str, str], data: bytes, *,
            timeout: float = 20.0,
            during: Callable[[subprocess.Popen[bytes]], None] | None = None,
            eof_first: bool = True) -> Run:
    """Run ``lpfilter filter argv`` as an lp=| device: the job written on the socket,
    half-closed, status read until EOF, exit status collected. ``during(proc)`` runs after
    the half-close (with ``eof_first=False``: before it, lpd still writing), before the
    status is read."""
    ours, theirs = socket.socketpair()
    start = time.monotonic()
    try:
        proc = subprocess.Popen([LPFILTER, "filter", *argv], stdin=theirs, stdout=theirs,
                                stderr=theirs, env=env, cwd=lpd.spool)
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    with ours, contextlib.ExitStack() as cleanup:
        cleanup.callback(stop, proc)
        ours.settimeout(timeout)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            ours.sendall(data)  # lpd's writes; a program that left early does not read
        if during is not None and not eof_first:
            during(proc)
        with contextlib.suppress(OSError):
            ours.shutdown(socket.SHUT_WR)
        if during is not None and eof_first:
            during(proc)
        back = read_to_eof(ours, timeout)
        rc = reap(proc, timeout)
    return Run(rc, back.decode("utf-8", "replace"), time.monotonic() - start)


def data_filter(lpd: Lpd, argv: list[str], env: dict[str, str], data: bytes,
                stdout: int, *, timeout: float = 20.0) -> Run:
    """Run ``lpfilter filter argv`` as an if= filter: stdin the spooled data file (a
    seekable regular file), stdout the given descriptor, stderr a pipe read by "lpd"."""
    spooled = lpd.spool / "dfA507localhost"
    spooled.write_bytes(data)
    start = time.monotonic()
    with open(spooled, "rb") as stdin:
        done = subprocess.run([LPFILTER, "filter", *argv], stdin=stdin, stdout=stdout,
                              stderr=subprocess.PIPE, env=env, cwd=lpd.spool, timeout=timeout,
                              check=False)
    return Run(done.returncode, done.stderr.decode("utf-8", "replace"),
               time.monotonic() - start)


def stored(printer: VirtualPrinter, number: int = 1) -> bytes:
    """The bytes of the printer's ``number``-th connection, once it has closed."""
    printer.wait_for("close", count=number)
    path = printer.records[number - 1].path
    assert path is not None
    return path.read_bytes()


def dest(printer: VirtualPrinter) -> str:
    host, port = printer.address
    return f"{host}%{port}"


@pytest.fixture
def lpd(tmp_path: Path) -> Lpd:
    if not os.access(LPFILTER, os.X_OK):
        pytest.fail(f"the installed lpfilter program is missing: {LPFILTER}")
    return Lpd(tmp_path)


@pytest.fixture
def printer(tmp_path: Path) -> Iterator[MakePrinter]:
    """printer(host="127.0.0.1", **behaviour): a started JetDirect emulator, stopped after
    the test."""
    started: list[VirtualPrinter] = []

    def make(host: str = "127.0.0.1", **behaviour: object) -> VirtualPrinter:
        emulator = VirtualPrinter(host, 0, tmp_path / f"out{len(started)}",
                                  Behaviour(**behaviour))  # type: ignore[arg-type]
        started.append(emulator.start())
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


#: An OF filter (LPRng's suspend protocol): copies its input, stopping itself (SIGSTOP) at
#: each \031\001 until lpd continues it. Options: upper-case what it copies (so its share
#: of the output shows), log start (with its -F), stop, continue and end to a file, write
#: its pid to a file, and clear its parent-death signal (as the kernel does for one that
#: changes its user, or a set-user-ID program: stopped, it outlives a SIGKILLed watcher).
OF_FILTER = r'''#!{python} -IS
import ctypes, os, signal, sys
LOG, PID, UPPER, ORPHAN = {log!r}, {pid!r}, {upper!r}, {orphan!r}
def note(word):
    if LOG:
        with open(LOG, "a") as handle:
            handle.write(word + "\n")
def out(data):
    os.write(1, data.upper() if UPPER else data)
if ORPHAN:
    ctypes.CDLL(None).prctl(1, 0, 0, 0, 0)
if PID:
    with open(PID, "w") as handle:
        handle.write(str(os.getpid()))
if LOG:
    signal.signal(signal.SIGCONT, lambda *_: note("continued"))
note("started " + " ".join(a for a in sys.argv[1:] if a.startswith("-F")))
held = b""
while True:
    chunk = os.read(0, 4096)
    if not chunk:
        break
    held += chunk
    while b"\031\001" in held:
        before, _, held = held.partition(b"\031\001")
        out(before)
        note("stopping")
        os.kill(os.getpid(), signal.SIGSTOP)
    keep = 1 if held.endswith(b"\031") else 0
    out(held[:len(held) - keep])
    held = held[len(held) - keep:]
out(held)
note("ended")
'''


def of_filter(where: Path, *, log: Path | None = None, pid: Path | None = None,
              upper: bool = False, orphan: bool = False) -> Path:
    """``OF_FILTER`` as the executable ``where/of.py``, with its options."""
    path = where / "of.py"
    path.write_text(OF_FILTER.format(python=sys.executable, log=str(log or ""),
                                     pid=str(pid or ""), upper=upper, orphan=orphan))
    path.chmod(0o755)
    return path
