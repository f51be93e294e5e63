"""Helpers for tests of ordinary users printing through the daemon's Unix socket: a test
user made with ``useradd`` (removed afterwards), lpfilter run as that user, a world of
root's spool directories the user cannot write, and a small real server thread serving
the Unix socket with the server's own functions (``local``, ``receive``)."""
from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lpfilter import printcap
from lpfilter.errors import NoSuchPrinter
from lpfilter.printcap import Entry
from lpfilter.protocols.lpd import MAX_LINE
from lpfilter.server.local import local_peer, open_local_socket, serve_local_request
from lpfilter.server.receive import receive_job
from lpfilter.server.wire import ClientError, Wire
from lpfilter.spool.store import SpoolStore

#: The venv's site-packages: the installed lpfilter (and pyparsing, psutil) for a python
#: the test user may run (the venv's interpreter lives under /root, closed to others).
SITE = next(p for p in sys.path if p.endswith("site-packages") and sys.prefix in p)
SYSTEM_PYTHON = "/usr/bin/python3"
#: ``python -S -I -c BOOT ARGS``: the installed lpfilter's command line, nothing else on
#: the path (no system dist-packages, no PYTHONPATH).
BOOT = ("import site, sys; site.addsitedir(%r); from lpfilter.cli import main;"
        " sys.exit(main(sys.argv[1:]))" % SITE)


def need_root(what: str) -> None:
    """Skip (with the reason) when not root; under CI that is a failure, never a skip."""
    if os.getuid() == 0:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} needs root, and CI must run it")
    pytest.skip(f"{what} needs root (useradd, and a spool the user cannot write)")


@dataclass
class LocalUser:
    """A login made for one test: its name and uid."""

    name: str
    uid: int

    def run(self, *argv: str, env: dict[str, str], stdin: bytes | None = None,
            cwd: str = "/") -> subprocess.CompletedProcess[str]:
        """The installed ``lpfilter`` as this user (setpriv, with the user's groups)."""
        return self.python("-c", BOOT, *argv, env=env, stdin=stdin, cwd=cwd)

    def python(self, *argv: str, env: dict[str, str], stdin: bytes | None = None,
               cwd: str = "/") -> subprocess.CompletedProcess[str]:
        if not os.path.exists(SYSTEM_PYTHON):
            pytest.fail(f"{SYSTEM_PYTHON} is needed to run lpfilter as the test user")
        command = ["setpriv", f"--reuid={self.name}", f"--regid={self.name}",
                   "--init-groups", "--", SYSTEM_PYTHON, "-S", "-I", *argv]
        done = subprocess.run(command, env=env, cwd=cwd, timeout=120, capture_output=True,
                              input=stdin if stdin is not None else b"", check=False)
        return subprocess.CompletedProcess(done.args, done.returncode,
                                           done.stdout.decode(errors="replace"),
                                           done.stderr.decode(errors="replace"))


@contextlib.contextmanager
def made_user() -> Iterator[LocalUser]:
    """A new user (its own group, no home), removed again however the test ends."""
    need_root("a test as an ordinary user")
    name = f"lpft{secrets.token_hex(3)}"
    subprocess.run(["useradd", "--no-create-home", "--user-group", "--shell",
                    "/usr/sbin/nologin", name], check=True, timeout=60, capture_output=True)
    try:
        yield LocalUser(name, pwd.getpwnam(name).pw_uid)
    finally:
        subprocess.run(["userdel", name], check=False, timeout=60, capture_output=True)


class World:
    """Queue q: a spool of root's (0700) the user cannot write; a printcap, a document and
    a run directory (0700, as lpfilter makes its lock directory) for the socket."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.chmod(0o755)
        self.sd = root / "sd"
        self.sd.mkdir(mode=0o700)
        self.run = root / "run"
        self.run.mkdir(mode=0o700)
        self.socket = self.run / "lpfilter.sock"
        self.printcap = root / "printcap"
        self.printcap.write_text(f"q:sd={self.sd}:lp=/dev/null:mc#5\n")
        self.printcap.chmod(0o644)
        self.doc = root / "doc.txt"
        self.doc.write_text("a page of the user\n")
        self.doc.chmod(0o644)

    def env(self, **extra: str) -> dict[str, str]:
        """The user's environment: this printcap and socket, no cache, no lock dir of root's."""
        return {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8",
                "LPFILTER_PRINTCAP": str(self.printcap), "LPFILTER_NO_CACHE": "1",
                "LPFILTER_SOCKET": str(self.socket), **extra}

    def store(self) -> SpoolStore:
        return SpoolStore(str(self.sd), "q")


@contextlib.contextmanager
def world() -> Iterator[World]:
    made = World(Path(tempfile.mkdtemp(prefix="lpfilter-local-")))
    try:
        yield made
    finally:
        shutil.rmtree(made.root)


class PrintcapQueues:
    """The Queues a daemon serves: every queue of one printcap."""

    def __init__(self, path: Path) -> None:
        self.printcap = printcap.load([str(path)])
        self.woken: list[str] = []

    def find(self, name: str) -> tuple[Entry, SpoolStore] | None:
        try:
            entry = self.printcap.lookup(name)
        except NoSuchPrinter:
            return None
        store = SpoolStore(entry.string("sd") or "", entry.name)
        store.ensure("watch")
        return entry, store

    def wake(self, name: str) -> None:
        self.woken.append(name)

    def names(self) -> list[str]:
        return self.printcap.queue_names()


@dataclass
class LocalServer:
    """A thread serving the Unix socket one connection at a time with the server's own
    functions: receive-job (``\\2``) and lpfilter's local request; what the stand-in
    dispatcher met is kept in ``faults``."""

    path: Path
    queues: PrintcapQueues
    stop: threading.Event = field(default_factory=threading.Event)
    faults: list[str] = field(default_factory=list)

    def serve(self, listener: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            while not self.stop.is_set():
                if not selector.select(0.1):
                    continue
                conn, _ = listener.accept()
                with conn:
                    self.one(conn)

    def one(self, conn: socket.socket) -> None:
        peer = local_peer(conn)
        wire = Wire(conn, idle_timeout=10.0, stop=self.stop)
        try:
            line = wire.line(MAX_LINE)
            if line and line[0] == 2:
                found = self.queues.find(line[1:].decode())
                assert found is not None
                wire.send(b"\0")
                receive_job(wire, found[0], found[1], peer)
            elif line:
                serve_local_request(wire, line, peer, self.queues)
        except ClientError as exc:
            self.faults.append(str(exc))
        finally:
            wire.close()


@contextlib.contextmanager
def local_server(made: World) -> Iterator[LocalServer]:
    """The server thread on ``made.socket``, stopped and joined at the end."""
    listener = open_local_socket(str(made.socket))
    server = LocalServer(made.socket, PrintcapQueues(made.printcap))
    thread = threading.Thread(target=server.serve, args=(listener,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        thread.join(10)
        listener.close()
        assert not thread.is_alive()
