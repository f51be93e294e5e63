"""A scripted LPD server: the receive-job side of RFC 1179 (shared/reference/lpd-protocol.md
§2-§3) on 127.0.0.1 port 0, in a thread, that misbehaves on request and records what it got.
Used through tests/lpdkit.py's ``scripted_lpd`` fixture; its docstring says how."""
from __future__ import annotations

import select
import socket
import threading
from dataclasses import dataclass, field
from typing import BinaryIO

#: What the server does, by ``mode``. "nack-*" answer ``code`` (1, 2 or 3, LPRng's
#: ACK_STOP_Q, ACK_RETRY, ACK_FAIL) followed by a text line, as LPRng's lpd does, at one ack
#: point, then close:
MODES = {
    "accept": "ack every step with \\0",
    "nack-request": "refuse the \\x02queue request line",
    "nack-control": "refuse the control file's subcommand line (\\x02count name)",
    "nack-control-content": "refuse after the control file's content and \\0",
    "nack-data": "take the control file, refuse the data file's subcommand line",
    "nack-data-content": "refuse after the data file's content and \\0",
    "close-before-final-ack": "close instead of the ack after a data file's content and \\0",
    "close-first-before-final-ack": "the first connection as close-before-final-ack, every"
                                    " later one as accept",
    "stall": "accept the connection, never read from it",
    "hold-final-ack": "take the files, never answer the data file's content (until stopped)",
    "close-between-jobs": "ack the first control file's content, then close (kept connection)",
    "close-before-second-final-ack": "close instead of the ack after the second control"
                                     " file's content and \\0",
}
#: LPRng's words for each refusal (lpd_rcvjob.c), sent after the code when ``text`` is None.
TEXTS = {
    "nack-request": "spool queue for '{queue}' does not exist on server scripted",
    "nack-control": "bad control line",
    "nack-control-content": "bad control file",
    "nack-data": "file too large",
    "nack-data-content": "file transfer failed",
}
LINE_MAX = 512  # LPRng's SMALLBUFFER: longer protocol lines are refused
FILE_MAX = 64 << 20  # a count above this is answered with 2 (too large)
READ_TIMEOUT = 10.0  # seconds per read; a silent client is dropped


@dataclass
class File:
    """A file the client announced: \\x02 control or \\x03 data, name and count as sent."""

    kind: str
    name: str
    count: int
    data: bytes = b""
    complete: bool = False  # content, then the trailing \\0, all arrived


@dataclass
class Connection:
    request: bytes = b""  # the first line, without its LF
    peer_port: int = 0  # the client's source port
    files: list[File] = field(default_factory=list)


class Dropped(Exception):
    """The client closed, timed out or broke the protocol: end this connection."""


class ScriptedLpd:
    """Start with ``start()``; ``address``/``port`` to connect; ``connections`` records each
    client; ``stop()`` closes everything and joins the thread (bounded)."""

    def __init__(self, mode: str = "accept", code: int = 1, text: str | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {sorted(MODES)}")
        self.mode, self.code, self.text = mode, code, text
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address: tuple[str, int] = self.listener.getsockname()[:2]
        self.connections: list[Connection] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="scripted-lpd", daemon=True)
        self._client: socket.socket | None = None
        self.controls = 0  # control files received whole, over all connections

    @property
    def port(self) -> int:
        return self.address[1]

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        client = self._client
        if client is not None:  # wakes a read blocked in the server's thread
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(READ_TIMEOUT + 5)
        self.listener.close()
        assert not self.thread.is_alive(), "the scripted LPD server did not stop"

    def _serve(self) -> None:
        while not self.stopping.is_set():
            ready, _, _ = select.select([self.listener], [], [], 0.1)
            if not ready:
                continue
            client, peer = self.listener.accept()
            self._client = client
            record = Connection(peer_port=peer[1])
            self.connections.append(record)
            with client:
                if self.mode == "stall":
                    self.stopping.wait()
                    return
                try:
                    self._job(client, record)
                except (Dropped, OSError):
                    pass
            self._client = None

    def _refuse(self, client: socket.socket, step: str, queue: str) -> bool:
        """Send the refusal if ``step`` is this server's; True when it did."""
        if self.mode != step:
            return False
        text = self.text if self.text is not None else TEXTS[step].format(queue=queue)
        client.sendall(bytes([self.code]) + text.encode() + b"\n")
        return True

    def _job(self, client: socket.socket, record: Connection) -> None:
        client.settimeout(READ_TIMEOUT)
        reader: BinaryIO = client.makefile("rb")
        record.request = _line(reader)
        if record.request[:1] != b"\x02":
            raise Dropped("only the receive-job request is scripted")
        queue = record.request[1:].decode(errors="replace").strip()
        if self._refuse(client, "nack-request", queue):
            return
        client.sendall(b"\0")
        while True:
            line = _line(reader, eof_ok=True)
            if not line:
                return
            if line == b"\x01":  # abort: nothing is kept by this server anyway
                continue
            kind = {b"\x02": "control", b"\x03": "data"}.get(line[:1])
            count_text, _, name = line[1:].decode(errors="replace").partition(" ")
            if kind is None or not count_text.isdigit():
                client.sendall(b"\x01bad subcommand line\n")
                return
            entry = File(kind, name, int(count_text))
            record.files.append(entry)
            if not self._file(client, reader, entry, queue):
                return

    def _file(self, client: socket.socket, reader: BinaryIO, entry: File, queue: str) -> bool:
        """One file's two ack points; False when the connection is to end."""
        if self._refuse(client, f"nack-{entry.kind}", queue):
            return False
        if entry.count > FILE_MAX:
            client.sendall(b"\x02file too large\n")
            return False
        client.sendall(b"\0")
        entry.data = _exactly(reader, entry.count)
        if _exactly(reader, 1) != b"\0":
            raise Dropped("no \\0 after the file")
        entry.complete = True
        if self._refuse(client, f"nack-{entry.kind}-content", queue):
            return False
        if entry.kind == "data" and self.mode == "hold-final-ack":
            self.stopping.wait()
            return False
        if entry.kind == "data" and (self.mode == "close-before-final-ack" or (
                self.mode == "close-first-before-final-ack" and len(self.connections) == 1)):
            return False
        if entry.kind == "control":
            self.controls += 1
            if self.mode == "close-before-second-final-ack" and self.controls == 2:
                return False
        client.sendall(b"\0")
        return not (entry.kind == "control" and self.mode == "close-between-jobs"
                    and self.controls == 1)


def _line(reader: BinaryIO, eof_ok: bool = False) -> bytes:
    """One LF-ended line (without the LF), at most LINE_MAX bytes; b"" at EOF if allowed."""
    line: bytes = reader.readline(LINE_MAX + 1)
    if not line and eof_ok:
        return b""
    if not line.endswith(b"\n"):
        raise Dropped(f"line cut short or too long: {line[:40]!r}")
    return line[:-1]


def _exactly(reader: BinaryIO, count: int) -> bytes:
    data: bytes = reader.read(count)
    if len(data) != count:
        raise Dropped(f"{len(data)} of {count} bytes before the client closed")
    return data


class Relay:
    """A TCP relay on 127.0.0.1 port 0 to ``target`` that counts the connections it takes:
    how many connections a client opened to a real server. One connection at a time, both
    directions copied until either side closes; ``stop()`` joins the thread (bounded)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.accepted = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="lpd-relay", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(READ_TIMEOUT + 5)
        self.listener.close()
        assert not self.thread.is_alive(), "the relay did not stop"

    def _serve(self) -> None:
        while not self.stopping.is_set():
            ready, _, _ = select.select([self.listener], [], [], 0.1)
            if not ready:
                continue
            client, _ = self.listener.accept()
            self.accepted += 1
            with client, socket.create_connection(self.target, timeout=READ_TIMEOUT) as server:
                self._copy(client, server)

    def _copy(self, client: socket.socket, server: socket.socket) -> None:
        peers = {client: server, server: client}
        while not self.stopping.is_set():
            ready, _, _ = select.select(list(peers), [], [], 0.1)
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                peers[sock].sendall(data)
