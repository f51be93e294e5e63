"""A JetDirect (port 9100) printer emulator, to test a printcap or the Socket API backend
without paper.

Like an internal print server it takes one connection at a time and refuses others at the
TCP level (its listening socket is closed while a job runs), stores every byte it receives,
answers PJL on the same connection, and closes after the client's EOF once its replies are
out. It misbehaves on request as real printers do (printer-protocols.md §1.1, §6). One
thread driven by poll(2): ``start()`` runs it in a thread for tests.

Refusing: the kernel answers a connection to a port nobody listens on with a reset
(ECONNREFUSED, what a busy print server gives) without telling any program, so the printer
cannot count refused attempts. ``refuse(n)`` therefore keeps the port closed for ``n``
windows of ``refuse_window`` seconds: a client trying once per window is refused ``n``
times. Between windows the port stays bound (not listening), so no other program takes it.
"""
from __future__ import annotations

import os
import re
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from lpfilter.emulator.connection import Connection
from lpfilter.emulator.shared import TICK, Behaviour, Event, JobRecord, is_loopback

__all__ = ["Behaviour", "Event", "JobRecord", "VirtualPrinter", "is_loopback"]

_JOB_FILE = re.compile(r"^job-(\d+)\.prn$")


class VirtualPrinter:
    """The emulator. ``open()`` binds (port 0 picks a free port, see ``address``);
    ``serve()`` takes connections until ``stop()`` or ``jobs`` connections."""

    def __init__(self, host: str = "127.0.0.1", port: int = 9100,
                 output: str | os.PathLike[str] | None = None,
                 behaviour: Behaviour | None = None, *, jobs: int | None = None,
                 pagecount: int = 0, idle_timeout: float = 90.0, refuse_window: float = 1.0,
                 allow_remote: bool = False, model: str = "lpfilter virtual printer",
                 on_job: Callable[[JobRecord], None] | None = None) -> None:
        self.host, self.port = host, port
        self.output = Path(output) if output is not None else None
        self.behaviour = behaviour or Behaviour()
        self.jobs, self.idle_timeout, self.refuse_window = jobs, idle_timeout, refuse_window
        self.allow_remote, self.model, self.on_job = allow_remote, model, on_job
        self.pagecount = pagecount
        self.records: deque[JobRecord] = deque(maxlen=1000)
        self.jobs_done = 0
        self._events: deque[Event] = deque(maxlen=10000)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._signalled = False  # (stop_soon)
        self._sock: socket.socket | None = None
        self._listening = False
        self._address: tuple[object, ...] = ()
        self._refuse_until = 0.0
        self._next_number = 1
        self._thread: threading.Thread | None = None

    # --- life cycle -------------------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        return str(self._address[0]), int(self._address[1])  # type: ignore[call-overload]

    def open(self) -> None:
        """Bind and listen (unless refusing); a non-loopback host needs ``allow_remote``."""
        if self._sock is not None:
            return
        family, _, _, _, address = socket.getaddrinfo(self.host, self.port,
                                                      type=socket.SOCK_STREAM)[0]
        if not self.allow_remote and not is_loopback(str(address[0])):
            raise ValueError(f"{self.host} is not a loopback address")
        self._family = family
        self._sock = self._bind(address)
        self._address = self._sock.getsockname()
        if self.output is not None:
            self.output.mkdir(parents=True, exist_ok=True)
            numbers = [int(m.group(1)) for m in map(_JOB_FILE.match, os.listdir(self.output))
                       if m]
            self._next_number = max(numbers, default=0) + 1
        if time.monotonic() >= self._refuse_until:
            self._set_listening(True)

    def start(self) -> VirtualPrinter:
        """Open and serve in a thread (tests); ``stop()`` ends it."""
        self.open()
        self._thread = threading.Thread(target=self.serve, daemon=True,
                                        name=f"virtual-printer-{self.address[1]}")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask ``serve()`` to end from another thread; joins the serving thread if any.
        Not from a signal handler: ``stop_soon``."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)
            if not self._thread.is_alive():
                self.close()

    def stop_soon(self) -> None:
        """Ask ``serve()`` to end from a signal handler: a plain flag its loop reads every
        tick. (``Event.set`` takes the lock that ``Event.wait`` holds at moments in the
        serving thread; a handler run in that thread while it holds it never got it.)"""
        self._signalled = True

    def stopping(self) -> bool:
        """Has ``stop()`` or ``stop_soon()`` been asked?"""
        return self._signalled or self._stop.is_set()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock, self._listening = None, False

    def __enter__(self) -> VirtualPrinter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def refuse(self, count: int) -> None:
        """Refuse connections (ECONNREFUSED) for ``count`` windows of ``refuse_window`` s.

        Returns once the port is closed, so a connection made next is refused; the windows
        count from then (a serving thread slow to close it must not eat into them)."""
        span = count * self.refuse_window
        self._refuse_until = time.monotonic() + span
        self.note(0, "refusing", f"{span:g} s")
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            with self._cond:
                self._cond.wait_for(lambda: not self._listening or not thread.is_alive(), 5.0)
        elif thread is None:
            self._set_listening(False)
        self._refuse_until = time.monotonic() + span

    def serve(self) -> None:
        """Take connections one at a time until ``stop()`` or ``jobs`` connections."""
        self.open()
        while not self.stopping() and (self.jobs is None or self.jobs_done < self.jobs):
            if time.monotonic() < self._refuse_until:
                self._set_listening(False)
                self._stop.wait(TICK)
                continue
            self._set_listening(True)
            assert self._sock is not None
            poller = select.poll()
            poller.register(self._sock, select.POLLIN)
            if not poller.poll(TICK * 1000):
                continue
            try:
                conn, peer = self._sock.accept()
            except (BlockingIOError, ConnectionAbortedError):
                continue
            self._set_listening(False)  # busy: others are refused, as by a print server
            self._serve_connection(conn, peer)

    # --- the listening socket ---------------------------------------------------------
    def _bind(self, address: tuple[object, ...]) -> socket.socket:
        for delay in (0.01, 0.1, 0.5, 1, 2, 0):  # a client's ephemeral port may hold it
            sock = socket.socket(self._family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setblocking(False)
                sock.bind(address)
                return sock
            except OSError:
                sock.close()
                if not delay:
                    raise
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _set_listening(self, on: bool) -> None:
        """Listen, or close the listener and keep the port bound (connections refused)."""
        if on == self._listening or self._sock is None:
            return
        if on:
            rate = self.behaviour.slow
            if self.behaviour.stall or rate:  # small window: the client feels it at once
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                                      max(4096, min(rate or 0, 65536)))
            self._sock.listen(4)
        else:
            self._sock.close()
            self._sock = self._bind(self._address)
        self._listening = on
        self.note(0, "listening" if on else "closed", "%s %s" % self.address)

    # --- connections ------------------------------------------------------------------
    def _serve_connection(self, conn: socket.socket, peer: tuple[object, ...]) -> None:
        number, self._next_number = self._next_number, self._next_number + 1
        path = self.output / f"job-{number:04d}.prn" if self.output is not None else None
        host = f"[{peer[0]}]" if ":" in str(peer[0]) else peer[0]
        record = JobRecord(number, f"{host}:{peer[1]}", path)
        self.note(number, "open", record.peer)
        with conn:  # recorded before the close, so a client seeing EOF sees the record
            if path is None:
                record.ended = Connection(self, conn, None, record).run()
            else:
                with open(path, "wb") as sink:
                    record.ended = Connection(self, conn, sink, record).run()
            with self._cond:
                self.records.append(record)
                self.jobs_done += 1
            self.note(number, "close", f"{record.size} bytes, {record.pages} pages:"
                                       f" {record.ended}")
        if self.on_job is not None:
            self.on_job(record)

    def note(self, job: int, kind: str, detail: str = "") -> None:
        with self._cond:
            self._events.append(Event(time.monotonic(), job, kind, detail))
            self._cond.notify_all()

    def events(self, kind: str | None = None) -> list[Event]:
        with self._cond:
            return [e for e in self._events if kind is None or e.kind == kind]

    def wait_listening(self, timeout: float = 10.0) -> bool:
        """Wait until the printer takes connections (after a job it re-opens its port)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._listening, timeout)

    def wait_for(self, kind: str, count: int = 1, timeout: float = 10.0) -> list[Event]:
        """The events of ``kind`` once there are ``count``; TimeoutError after ``timeout``."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.events(kind)) >= count, timeout):
                raise TimeoutError(f"virtual printer: fewer than {count} {kind!r} events"
                                   f" after {timeout:g} s: {list(self._events)[-5:]}")
            return self.events(kind)
