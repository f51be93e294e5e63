"""A small scripted FTP server for replies pyftpdlib and vsftpd will not give on demand:
``452``/``552`` to ``STOR`` (before or after the data) and a reply line that never ends.

A real TCP server on 127.0.0.1 port 0 in a thread, one control connection at a time,
passive mode only. It speaks just enough FTP for lpfilter's backend (USER, PASS, CWD, TYPE,
PASV, STOR, QUIT). Every socket has a timeout and the endless line stops after ``LIMIT``
bytes, so nothing here can run for ever; ``close()`` joins the thread."""
from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

#: The most an endless reply line may send before the server gives up on its client.
LIMIT = 64 << 20
CHUNK = 64 << 10


@dataclass
class Script:
    """What the server says. ``before_data``: the reply to STOR instead of ``150``;
    ``after_data``: the reply once the data connection is closed; ``endless``: after the
    data, a reply line without end (until the client hangs up or ``LIMIT``)."""

    before_data: str | None = None
    after_data: str = "226 Transfer complete."
    endless: bool = False
    #: Filled in by the server.
    received: list[bytes] = field(default_factory=list)
    endless_sent: int = 0
    client_hung_up: bool = False
    verbs: list[str] = field(default_factory=list)


class ScriptedFtp:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._listeners: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, name="scripted-ftp", daemon=True)
        self._thread.start()

    def lp(self) -> str:
        return f"ftp\\://127.0.0.1\\:{self.port}/PORT1"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self.listener.close()
        for listener in self._listeners:
            listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                with contextlib.suppress(OSError):
                    self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")

        def say(text: str) -> None:
            conn.sendall(text.encode() + b"\r\n")

        say("220 scripted FTP server ready")
        data_listener: socket.socket | None = None
        for _ in range(100):
            line = reader.readline(1024)
            if not line:
                return
            verb, _, _argument = line.decode("utf-8", "replace").strip().partition(" ")
            verb = verb.upper()
            self.script.verbs.append(verb)
            if verb == "USER":
                say("331 Password please.")
            elif verb == "PASS":
                say("230 Logged in.")
            elif verb in ("CWD", "TYPE"):
                say("250 OK." if verb == "CWD" else "200 Type set.")
            elif verb == "PASV":
                if data_listener is not None:
                    data_listener.close()
                data_listener = socket.create_server(("127.0.0.1", 0))
                self._listeners.append(data_listener)  # closed by close() at the latest
                data_listener.settimeout(10)
                port = data_listener.getsockname()[1]
                say(f"227 Entering Passive Mode (127,0,0,1,{port >> 8},{port & 255})")
            elif verb == "STOR" and data_listener is not None:
                with data_listener:
                    self._store(conn, data_listener, say)
                data_listener = None
            elif verb == "QUIT":
                say("221 Goodbye.")
                return
            else:
                say("502 Not here.")

    def _store(self, conn: socket.socket, listener: socket.socket,
               say: Callable[[str], None]) -> None:
        script = self.script
        if script.before_data is not None:
            say(script.before_data)
            return
        say("150 Ok to send data.")
        data, _ = listener.accept()
        with data:
            data.settimeout(10)
            parts = []
            while chunk := data.recv(CHUNK):
                parts.append(chunk)
        script.received.append(b"".join(parts))
        if not script.endless:
            say(script.after_data)
            return
        conn.sendall(b"226 ")
        try:
            while script.endless_sent < LIMIT and not self._stop.is_set():
                conn.sendall(b"x" * CHUNK)
                script.endless_sent += CHUNK
        except TimeoutError:
            pass  # the client stopped reading but kept the connection: not a hang-up
        except OSError:
            script.client_hung_up = True


@pytest.fixture
def scripted_ftp() -> Iterator[type[ScriptedFtp]]:
    """scripted_ftp(Script(...)) -> a started server; every one is closed after the test."""
    started: list[ScriptedFtp] = []

    def make(script: Script) -> ScriptedFtp:
        server = ScriptedFtp(script)
        started.append(server)
        return server

    yield make  # type: ignore[misc]
    for server in started:
        server.close()
