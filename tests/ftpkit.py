"""Helpers for the FTP backend tests: a queue run through ``lpfilter.cli.main`` in this
process, the JetDirect FTP emulator (pyftpdlib, 127.0.0.1 port 0, in a thread) with a
record of logins and commands, ``lp=ftp://`` values, and a child process that holds FTP
session slots. Every wait is bounded; everything started is closed by its fixture."""
from __future__ import annotations

import contextlib
import faulthandler
import os
import select
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from spoolkit import wait_until  # noqa: F401 - the FTP tests import it from here

from lpfilter.cli import main
from lpfilter.emulator.ftp import FtpBehaviour, VirtualFtpPrinter
from lpfilter.job import Job
from lpfilter.spool.store import SpoolStore

#: Short pauses and timeouts: a retry after 1 s, a dead server noticed within seconds.
FAST = ("accounting_format=keyvalue:connect_interval#1:max_connect_interval#1"
        ":connect_timeout#3:stall_timeout#5:send_try#3")


@pytest.fixture(autouse=True)
def hang_guard() -> Iterator[None]:
    """A test that hangs (an lpfilter wait that never ends) is ended after 120 s with every
    thread's traceback, instead of holding the run forever."""
    faulthandler.dump_traceback_later(120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@dataclass
class Seen:
    """What the server saw, recorded from its own thread: logins, logouts, commands."""

    logins: list[str] = field(default_factory=list)
    logouts: list[str] = field(default_factory=list)
    commands: list[tuple[str, str]] = field(default_factory=list)

    def verbs(self) -> list[str]:
        return [verb for verb, _ in list(self.commands)]


def record(printer: VirtualFtpPrinter) -> Seen:
    """Instrument this server's own handler class (a per-server subclass) to record what
    clients do; the server's behaviour is unchanged."""
    seen = Seen()
    cls = printer.server.handler
    login, logout, pre = cls.on_login, cls.on_logout, cls.pre_process_command

    def on_login(self: Any, username: str) -> None:
        seen.logins.append(username)
        login(self, username)

    def on_logout(self: Any, username: str) -> None:
        seen.logouts.append(username)
        logout(self, username)

    def pre_process_command(self: Any, line: str, cmd: str, arg: str) -> None:
        seen.commands.append((cmd, arg))
        pre(self, line, cmd, arg)

    cls.on_login, cls.on_logout = on_login, on_logout
    cls.pre_process_command = pre_process_command
    cls.auth_failed_timeout = 0.2  # pyftpdlib waits 3 s before a 530; keep the suite quick
    return seen


@dataclass
class Server:
    printer: VirtualFtpPrinter
    seen: Seen
    out: Path

    @property
    def port(self) -> int:
        return self.printer.address[1]

    def lp(self, path: str = "PORT1", user: str | None = None, password: str | None = None,
           *, escaped: bool = True) -> str:
        """``lp=`` for this server, colons escaped as a printcap needs (or not)."""
        colon = "\\:" if escaped else ":"
        auth = ""
        if user is not None:
            auth = user + (f"{colon}{password}" if password is not None else "") + "@"
        host, port = self.printer.address
        if ":" in host:  # IPv6: brackets, and every colon escaped too
            host = "[" + host.replace(":", colon) + "]"
        return f"ftp{colon}//{auth}{host}{colon}{port}/{path}"

    def complete(self) -> list[Any]:
        """The files received whole so far."""
        return [job for job in list(self.printer.jobs) if job.complete]

    def files(self, count: int) -> list[Any]:
        """The files received whole, once ``count`` files were recorded: the server
        records a file just after its 226 reply, so a client may be a moment ahead."""
        wait_until(lambda: len(self.printer.jobs) >= count, what=f"{count} files")
        return self.complete()


MakeServer = Callable[..., Server]


@pytest.fixture
def ftp_server(tmp_path: Path) -> Iterator[MakeServer]:
    """ftp_server(host=127.0.0.1, output=True, sessions=3, idle_timeout=900, password=None,
    **behaviour):
    a started emulator; every one is closed (thread joined) after the test."""
    started: list[VirtualFtpPrinter] = []

    def make(*, host: str = "127.0.0.1", output: bool = True, sessions: int = 3,
             idle_timeout: float = 900.0, password: str | None = None,
             **behaviour: Any) -> Server:
        out = tmp_path / f"ftp-out{len(started)}"
        printer = VirtualFtpPrinter(host, 0, str(out) if output else None,
                                    FtpBehaviour(**behaviour), sessions=sessions,
                                    idle_timeout=idle_timeout, password=password)
        seen = record(printer)
        started.append(printer.start())
        return Server(printer, seen, out)

    yield make
    for printer in started:
        printer.close()


@dataclass
class Run:
    rc: int
    out: str
    err: str


class FtpQueue:
    """Queue q in ``root``: printcap, spool directory (accounting on), lock directory, and
    ``lpfilter`` commands run in this process with an environment of their own."""

    def __init__(self, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.root, self.capsys = root, capsys
        self.sd = root / "sd"
        self.sd.mkdir(mode=0o700)
        (self.sd / "acct").touch()
        self.lock_dir = root / "locks"
        self.printcap = root / "printcap"
        self.env = {"HOME": str(root), "LPFILTER_LOCK_DIR": str(self.lock_dir),
                    "LPFILTER_PRINTCAP": str(self.printcap), "PATH": os.environ["PATH"]}

    def setup(self, lp: str, options: str = "") -> None:
        """The printcap: q with ``lp``, the fast timings, then ``options`` (later wins)."""
        self.printcap.write_text(f"q:lp={lp}:sd={self.sd}:{FAST}:{options}\n")

    def run(self, *argv: str) -> Run:
        self.capsys.readouterr()
        rc = main(list(argv), self.env)
        captured = self.capsys.readouterr()
        return Run(rc, captured.out, captured.err)

    def file(self, data: bytes, name: str = "doc") -> Path:
        path = self.root / name
        path.write_bytes(data)
        return path

    def print(self, *data: bytes, opts: tuple[str, ...] = (),
              args: tuple[str, ...] = ()) -> Run:
        """``lpfilter opts print args -P q`` of one file per ``data``."""
        paths = [str(self.file(content, f"doc{n}")) for n, content in enumerate(data)]
        return self.run(*opts, "print", *args, "-P", "q", *paths)

    def jobs(self) -> list[Job]:
        return SpoolStore(str(self.sd), "q").jobs()

    def job(self) -> Job:
        (ticket,) = self.jobs()
        return ticket

    def text(self, name: str) -> str:
        path = self.sd / name
        return path.read_text(errors="replace") if path.exists() else ""

    def every_file(self) -> str:
        """The bytes of every file lpfilter wrote in the spool and lock directories."""
        parts = []
        for base in (self.sd, self.lock_dir):
            for path in sorted(base.rglob("*")) if base.exists() else []:
                if path.is_file() and not path.name.endswith(".data"):
                    parts.append(f"== {path}\n{path.read_text(errors='replace')}")
        return "\n".join(parts)


@pytest.fixture
def ftp_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
              capsys: pytest.CaptureFixture[str]) -> FtpQueue:
    """The process environment matches the queue's (the backend reads $HOME and $NETRC
    from os.environ): no real ~/.netrc is ever read."""
    queue = FtpQueue(tmp_path, capsys)
    for key, value in queue.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("NETRC", raising=False)
    return queue


# --- a child process holding FTP session slots ----------------------------------------
HOLDER = r"""
import sys
from lpfilter.locks import ProcessLock
locks = [ProcessLock(path, "test: a busy FTP session") for path in sys.argv[1:]]
assert all(lock.acquire() for lock in locks)
print("held", flush=True)
for line in sys.stdin:
    locks[int(line)].release()
    print("released", int(line), flush=True)
"""


class SlotHolder:
    """A separate process holding the given slot lock files until told to let one go."""

    def __init__(self, paths: list[str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, *paths],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.line() == "held"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def line(self, timeout: float = 10.0) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, "the slot holder said nothing"
        return self.proc.stdout.readline().strip()

    def release(self, index: int) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{index}\n")
        self.proc.stdin.flush()
        assert self.line() == f"released {index}"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@contextlib.contextmanager
def holding(paths: list[str]) -> Iterator[SlotHolder]:
    holder = SlotHolder(paths)
    try:
        yield holder
    finally:
        holder.close()
