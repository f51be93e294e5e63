"""A JetDirect FTP print server emulator (``lpfilter virtual-printer --ftp``), on pyftpdlib.

Behaves as printer-protocols.md §4 describes an HP JetDirect: any user name and any
password are accepted (unless ``password`` is set, as an admin password would be); one
directory per port (``PORT1``..``PORT3``) besides the top; at most ``sessions`` control
connections, a further one is told ``421`` and closed; a control connection idle for
``idle_timeout`` seconds is cut with ``421``. Received files are counted and, with an
output directory, kept there; without one they are discarded. Misbehaviours for tests and
trials: no passive mode (``500`` to PASV/EPSV), a data connection dropped after N bytes.

pyftpdlib is an optional dependency (``pip install 'lpfilter[ftp]'``); importing this
module without it raises ImportError, which the command turns into a clear message.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass

from pyftpdlib.authorizers import AuthenticationFailed, DummyAuthorizer
from pyftpdlib.handlers import DTPHandler, FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

from lpfilter.emulator.shared import is_loopback

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

TICK = 0.1
PORT_DIRECTORIES = ("PORT1", "PORT2", "PORT3")


@dataclass(frozen=True, slots=True)
class FtpJob:
    """One received file."""

    number: int
    directory: str
    name: str
    size: int
    complete: bool
    path: str | None


@dataclass(slots=True)
class FtpBehaviour:
    """How the emulated server deviates from a healthy JetDirect."""

    passive: bool = True
    #: Close the data connection (and the session) after this many bytes of a file.
    drop_after: int | None = None
    #: Receive at most this many bytes per second (pyftpdlib's throttling).
    slow: int | None = None


class _AnyUser(DummyAuthorizer):
    """JetDirect's rule: every user name logs in; passwords are ignored unless one is set."""

    def __init__(self, home: str, password: str | None) -> None:
        super().__init__()
        self.home = home
        self.password = password

    def validate_authentication(self, username: str, password: str, handler: Any) -> None:
        if self.password is not None and password != self.password:
            raise AuthenticationFailed("Login incorrect.")

    def has_user(self, username: str) -> bool:
        return True

    def get_home_dir(self, username: str) -> str:
        return self.home

    def get_perms(self, username: str) -> str:
        return "elw"

    def has_perm(self, username: str, perm: str, path: str | None = None) -> bool:
        return perm in "elw"

    def get_msg_login(self, username: str) -> str:
        return "Logged in."

    def get_msg_quit(self, username: str) -> str:
        return "Goodbye."


class _Handler(FTPHandler):
    """A control connection; ``printer`` (set on the per-server subclass) keeps the count."""

    printer: VirtualFtpPrinter
    banner = "JetDirect FTP Server (lpfilter virtual printer) ready"

    def handle(self) -> None:
        if not self.printer.enter(self):
            self.respond("421 Service not available, too many sessions.")
            self.close_when_done()
            return
        super().handle()

    def close(self) -> None:
        self.printer.leave(self)
        super().close()

    def ftp_STOR(self, file: str, mode: str = "w") -> str | None:  # noqa: N802 - pyftpdlib's name
        self._lpf_file = file
        return super().ftp_STOR(file, mode)  # type: ignore[no-any-return]

    def on_file_received(self, file: str) -> None:
        self.printer.received(self, self.data_channel.get_transmitted_bytes(), True)

    def on_incomplete_file_received(self, file: str) -> None:
        self.printer.received(self, self.data_channel.get_transmitted_bytes(), False)


class _Dropper(DTPHandler):
    """A data channel that hangs up after ``drop_after`` bytes, as a dying server does."""

    drop_after = 0

    def handle_read(self) -> None:
        super().handle_read()
        if self.tot_bytes_received >= self.drop_after:
            self.cmd_channel.close()
            self.close()

    handle_read_event = handle_read  # pyftpdlib calls this name, not handle_read


class VirtualFtpPrinter:
    """The server; ``start()`` runs it in a thread, ``serve()`` in the caller's."""

    def __init__(self, host: str = "127.0.0.1", port: int = 2121, output: str | None = None,
                 behaviour: FtpBehaviour | None = None, *, sessions: int = 3,
                 idle_timeout: float = 900.0, password: str | None = None,
                 allow_remote: bool = False,
                 on_job: Callable[[FtpJob], None] | None = None) -> None:
        if not allow_remote and not is_loopback(host):
            raise ValueError(f"{host} is not a loopback address")
        self.behaviour = behaviour or FtpBehaviour()
        self.sessions = sessions
        self.on_job = on_job
        self.jobs: list[FtpJob] = []
        self.peak_sessions = 0
        self.refused_sessions = 0
        self._active: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._scratch = None if output else tempfile.mkdtemp(prefix="lpfilter-ftp-")
        self.root = os.path.realpath(output or self._scratch or ".")
        self.keep = output is not None
        for name in PORT_DIRECTORIES:
            os.makedirs(os.path.join(self.root, name), exist_ok=True)
        handler = self._handler_class(idle_timeout, password)
        # Its own event loop: pyftpdlib's default one is shared by the whole process, and
        # closing one server would close every other.
        self.server = FTPServer((host, port), handler, ioloop=IOLoop())

    def _handler_class(self, idle_timeout: float, password: str | None) -> type[_Handler]:
        """pyftpdlib is configured by class attributes: one subclass per server."""
        attributes: dict[str, Any] = {
            "printer": self, "authorizer": _AnyUser(self.root, password),
            "timeout": idle_timeout or None, "use_sendfile": False,
            "permit_foreign_addresses": False}
        if not self.behaviour.passive:
            attributes["proto_cmds"] = {name: info for name, info in _Handler.proto_cmds.items()
                                        if name not in ("PASV", "EPSV")}
        if self.behaviour.drop_after is not None:
            attributes["dtp_handler"] = type("Dropper", (_Dropper,),
                                             {"drop_after": self.behaviour.drop_after})
        elif self.behaviour.slow:
            from pyftpdlib.handlers import ThrottledDTPHandler
            attributes["dtp_handler"] = type("Slow", (ThrottledDTPHandler,),
                                             {"read_limit": self.behaviour.slow})
        return type("JetDirectFtpHandler", (_Handler,), attributes)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.address[:2]
        return host, port

    # --- sessions and files (called from the server's thread) ---------------------------
    def enter(self, handler: _Handler) -> bool:
        with self._lock:
            if len(self._active) >= self.sessions:
                self.refused_sessions += 1
                return False
            self._active.add(id(handler))
            self.peak_sessions = max(self.peak_sessions, len(self._active))
            return True

    def leave(self, handler: _Handler) -> None:
        with self._lock:
            self._active.discard(id(handler))

    @property
    def active_sessions(self) -> int:
        with self._lock:
            return len(self._active)

    def received(self, handler: _Handler, size: int, complete: bool) -> None:
        path = getattr(handler, "_lpf_file", "")
        directory = os.path.relpath(os.path.dirname(path), self.root) if path else "."
        with self._lock:
            job = FtpJob(len(self.jobs) + 1, directory, os.path.basename(path), size,
                         complete, path if self.keep else None)
            self.jobs.append(job)
        if not self.keep and path:
            try:
                os.unlink(path)
            except OSError:
                pass
        if self.on_job is not None:
            self.on_job(job)

    # --- running ---------------------------------------------------------------------
    def serve(self, until: Callable[[], bool] | None = None) -> None:
        """Run until ``stop()`` (or ``until()`` is true)."""
        loop = self.server.ioloop
        while not self._stop.is_set() and not (until and until()):
            # One poll at a time (serve_forever would log "starting" on every call).
            loop.loop(TICK, blocking=False)

    def start(self) -> VirtualFtpPrinter:
        self._thread = threading.Thread(target=self.serve, name="virtual-ftp", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def close(self) -> None:
        self.stop()
        self.server.close_all()
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def __enter__(self) -> VirtualFtpPrinter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

