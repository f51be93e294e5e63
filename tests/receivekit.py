"""A small real LPD receiving server for tests of ``receive_job``: a thread accepting on
127.0.0.1 port 0 that reads each connection's request line with ``Wire``, acknowledges it
and hands the connection to ``receive_job`` (what the daemon's connection handler does), and
a raw client that speaks the subcommands byte by byte."""
from __future__ import annotations

import contextlib
import os
import queue
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lpfilter import printcap
from lpfilter.job import Job
from lpfilter.printcap import Entry
from lpfilter.protocols import lpd
from lpfilter.server.peer import Peer
from lpfilter.server.receive import receive_job
from lpfilter.server.spoolcheck import SpoolChecks
from lpfilter.server.wire import ClientError, Wire
from lpfilter.spool import notes
from lpfilter.spool.jobindex import JobIndex, replay
from lpfilter.spool.journalformat import Kind, decode, first_lsn
from lpfilter.spool.store import SpoolStore

#: Every wait of a test: far above what any step needs, so never a timed assertion.
WAIT = 20.0


@dataclass
class Outcome:
    """What one connection came to: the jobs committed, or the client fault raised."""

    jobs: list[Job] = field(default_factory=list)
    error: BaseException | None = None


class Receiver:
    """The receiving server: queue ``q`` in ``sd``, one connection at a time."""

    def __init__(self, root: Path, options: str = "", *, local_user: str | None = None,
                 sd: Path | None = None) -> None:
        self.sd = sd or root / "sd-received"
        self.sd.mkdir(exist_ok=True)
        path = root / "printcap-received"
        path.write_text(f"q:sd={self.sd}:lp=/dev/null{':' + options if options else ''}\n")
        self.entry: Entry = printcap.load([str(path)]).lookup("q")
        self.store = SpoolStore(str(self.sd), "q")
        self.store.ensure("watch")
        self.local_user = local_user
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.outcomes: queue.Queue[Outcome] = queue.Queue()
        #: Every job as ``receive_job`` reported it committed (before its final ack).
        self.committed: list[Job] = []
        #: The spool's checks, shared by the connections as a daemon's are.
        self.checks = SpoolChecks()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stop.is_set():
            try:
                sock, (address, port, *_) = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            peer = (Peer("", uid=os.getuid(), user=self.local_user) if self.local_user
                    else Peer(address, port))
            with sock:
                self.outcomes.put(self._one(sock, peer))

    def _one(self, sock: socket.socket, peer: Peer) -> Outcome:
        wire = Wire(sock, idle_timeout=WAIT, stop=self.stop)
        outcome = Outcome()
        try:
            line = wire.line(lpd.MAX_LINE - 1)
            assert line is not None and lpd.parse_request(line).queue == "q"
            wire.send(b"\0")
            outcome.jobs = receive_job(wire, self.entry, self.store, peer,
                                       committed=self.committed.append,
                                       checks=self.checks)
        except ClientError as exc:
            outcome.error = exc
        except BaseException as exc:  # noqa: BLE001 - the test sees any other, and fails
            outcome.error = exc
        finally:
            wire.close()
        return outcome

    def outcome(self) -> Outcome:
        """The next connection's outcome (a bounded wait)."""
        return self.outcomes.get(timeout=WAIT)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=WAIT)
        self.listener.close()
        self.store.close()

    # --- what is on disk ----------------------------------------------------------------
    def jobs(self) -> list[Job]:
        return self.store.jobs()

    def data(self, job: Job) -> bytes:
        """The job's bytes as spooled: its data file, or the journal's (a small job)."""
        fd = self.store.open_data(job.id)
        assert isinstance(fd, int), fd
        with os.fdopen(fd, "rb") as handle:
            return handle.read()

    def staged(self) -> list[str]:
        """Files left in the staging folder (there must be none after any connection)."""
        return sorted(os.listdir(self.store.tmp_dir))

    def files(self) -> list[str]:
        """Every file in the jobs folder (data and tickets)."""
        return sorted(os.listdir(self.store.jobs_dir))


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    server = Receiver(tmp_path)
    try:
        yield server
    finally:
        server.close()


class Client:
    """One raw LPD connection to the receiver (a blocking socket with a timeout)."""

    def __init__(self, port: int, queue_name: str = "q") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.sock.sendall(lpd.receive_job(queue_name))
        assert self.ack() == b"\0"

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def ack(self) -> bytes:
        """One acknowledgement octet and the reason line after a non-zero one (b"" at EOF)."""
        try:
            first = self.sock.recv(1)
        except ConnectionResetError:  # the server closed with bytes of ours unread
            return b""
        if first in (b"", b"\0"):
            return first
        rest = b""
        with contextlib.suppress(OSError):
            while not rest.endswith(b"\n") and len(rest) < 4096:
                more = self.sock.recv(1)
                if not more:
                    break
                rest += more
        return first + rest

    def file(self, code: lpd.Subcommand, name: str, data: bytes) -> bytes:
        """A whole file: the subcommand, its bytes and NUL; the last acknowledgement (or
        the first, if that was a refusal)."""
        self.send(b"%c%d %s\n" % (code, len(data), name.encode()))
        first = self.ack()
        if first != b"\0":
            return first
        self.send(data + b"\0")
        return self.ack()

    def control(self, name: str, data: bytes) -> bytes:
        return self.file(lpd.Subcommand.CONTROL_FILE, name, data)

    def data(self, name: str, data: bytes) -> bytes:
        return self.file(lpd.Subcommand.DATA_FILE, name, data)

    def close(self) -> None:
        self.sock.close()

    def finish(self) -> bytes:
        """Half-close, then whatever the server still says before it closes."""
        self.sock.shutdown(socket.SHUT_WR)
        rest = b""
        while len(rest) < 65536:
            more = self.sock.recv(4096)
            if not more:
                break
            rest += more
        self.sock.close()
        return rest


def control_file(number: int = 1, host: str = "client", user: str = "alice",
                 files: tuple[tuple[str, str], ...] = (("f", "dfA"),), **lines: str) -> bytes:
    """A control file as LPRng writes it: H P (J ...) then the print lines of each data
    file (``dfA`` becomes ``dfA001client``), then U lines."""
    text = f"H{host}\nP{user}\n" + "".join(f"{k}{v}\n" for k, v in lines.items())
    names = [f"{df}{number:03d}{host}" for _, df in files]
    text += "".join(f"{fmt}{name}\n" for (fmt, _), name in zip(files, names))
    text += "".join(f"U{name}\n" for name in dict.fromkeys(names))
    return text.encode()


def note_records(store: SpoolStore) -> list[tuple[str, notes.Noted, str]]:
    """The notes in the queue's journal file, in order (a compaction's one a line in a
    record): (key, note, form)."""
    data = Path(store.journal_path).read_bytes()
    records, _ = decode(data, first_lsn(data))
    return [notes.parse(line) for record in records if record.kind == Kind.NOTE
            for line in record.payload.split(b"\n")]


def restarted(store: SpoolStore) -> JobIndex:
    """The queue as a restart (or a crash now) reads its journal file."""
    return replay(Path(store.journal_path).read_bytes(), "q")
