"""The Socket API backend (``lp=host%port``) against real loopback servers (127.0.0.1 and
::1, port 0): the failures of issue 4 through ``lpfilter print``, ``watch --once`` and
``cancel``, checked in the ticket, log, status file, accounting and the bytes received.
No DNS: a name that does not resolve is a syntactically invalid one. Bounded waits only."""
from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lpfilter.cli import main
from lpfilter.emulator.jetdirect import Behaviour, JobRecord, VirtualPrinter
from lpfilter.job import Job
from lpfilter.protocols import pjl
from lpfilter.spool.store import SpoolStore

#: Fast timings; lpfilter's own accounting line, which the tests read.
FAST = ("connect_interval#0:connect_timeout#2:stall_timeout#2:waitend_timeout#1"
        ":accounting_format=keyvalue")
PAPER_OUT = b'@PJL USTATUS DEVICE\r\nCODE=41000\r\nDISPLAY="Tray 1 empty"\r\n\x0c'
MakePrinter = Callable[..., VirtualPrinter]


class Queue:
    """Queue q: its printcap, spool directory (accounting on), records and timed commands."""

    def __init__(self, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.root, self.sd, self.capsys = root, root / "sd", capsys
        self.sd.mkdir()
        (self.sd / "acct").touch()

    def setup(self, lp: str, options: str = "") -> None:
        """Write the printcap: the fast timings, then ``options`` (later keys win)."""
        (self.root / "printcap").write_text(f"q:lp={lp}:sd={self.sd}:{FAST}:{options}\n")

    def run(self, *argv: str) -> tuple[int, float]:
        """``lpfilter argv``: (exit status, seconds it took)."""
        start = time.monotonic()
        rc = main(list(argv))
        self.capsys.readouterr()
        return rc, time.monotonic() - start

    def print(self, *data: bytes, args: tuple[str, ...] = ()) -> tuple[int, float]:
        """``lpfilter print -P q args`` of one file per ``data``."""
        for number, content in enumerate(data):
            (self.root / f"doc{number}").write_bytes(content)
        return self.run("print", "-P", "q", *args,
                        *(str(self.root / f"doc{n}") for n in range(len(data))))

    def job(self) -> Job:
        (ticket,) = SpoolStore(str(self.sd), "q").jobs()
        return ticket

    def has_data(self, job: Job) -> bool:
        return SpoolStore(str(self.sd), "q").has_data(job)

    def text(self, name: str) -> str:
        path = self.sd / name
        return path.read_text() if path.exists() else ""


class Server:
    """A plain TCP server on 127.0.0.1:0 in a thread: ``handler(conn, server)`` (default:
    read to EOF) per connection. It listens once ``ready()`` is true (refuses until then)."""

    def __init__(self, handler: Callable[[socket.socket, Server], None] | None = None, *,
                 rcvbuf: int | None = None, ready: Callable[[], bool] | None = None) -> None:
        self.handler, self.ready = handler or Server.read_to_eof, ready
        self.stop = threading.Event()
        self.received = bytearray()
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._run, name="test-server")

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        self.sock.close()

    def _run(self) -> None:
        while self.ready is not None and not self.ready():
            if self.stop.wait(0.02):
                return
        self.sock.listen(4)
        while not self.stop.is_set():
            if select.select([self.sock], [], [], 0.05)[0]:
                conn, _ = self.sock.accept()
                with conn:
                    self.handler(conn, self)

    @staticmethod
    def read_to_eof(conn: socket.socket, server: Server) -> None:
        """Store what the client sends until its EOF (each read bounded)."""
        conn.settimeout(10)
        try:
            while chunk := conn.recv(65536):
                server.received += chunk
        except OSError:
            pass


def never_reads(conn: socket.socket, server: Server) -> None:
    """Accepts and never recv()s: a zero window once the buffers are full."""
    server.stop.wait(30)


@pytest.fixture
def queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str]) -> Queue:
    monkeypatch.setenv("LPFILTER_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setenv("LPFILTER_PRINTCAP", str(tmp_path / "printcap"))
    return Queue(tmp_path, capsys)


@pytest.fixture
def printer(tmp_path: Path) -> Iterator[MakePrinter]:
    """printer(host, pagecount=, on_job=, **behaviour): a started emulator, stopped after."""
    started: list[VirtualPrinter] = []

    def make(host: str = "127.0.0.1", *, pagecount: int = 0,
             on_job: Callable[[JobRecord], None] | None = None,
             **behaviour: object) -> VirtualPrinter:
        emulator = VirtualPrinter(host, 0, tmp_path / "out", Behaviour(**behaviour),  # type: ignore[arg-type]
                                  pagecount=pagecount, on_job=on_job)
        started.append(emulator.start())
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


def lp_of(emulator: VirtualPrinter) -> str:
    host, port = emulator.address[:2]
    return f"[{host.replace(':', chr(92) + ':')}]%{port}" if ":" in host else f"{host}%{port}"


def stored(emulator: VirtualPrinter, number: int = 1) -> bytes:
    emulator.wait_for("close", count=number)
    path = emulator.records[number - 1].path
    assert path is not None
    return path.read_bytes()


def acct_fields(queue: Queue) -> list[dict[str, str]]:
    return [dict(word.split("=", 1) for word in line.split() if "=" in word)
            for line in queue.text("acct").splitlines()]


# --- connecting -------------------------------------------------------------------------
def test_refused_twice_then_accepted_shows_busy_and_prints(queue: Queue) -> None:
    """A port bound but not listening refuses; it listens once the log shows two refusals."""
    seen: list[str] = []

    def refused_twice() -> bool:
        if queue.text("log").count("connection refused") > len(seen):
            seen.append(queue.text("status"))
        return len(seen) >= 2

    with Server(ready=refused_twice) as server:
        queue.setup(f"127.0.0.1%{server.port}",
                    "connect_interval#1:max_connect_interval#1:send_try#5")
        rc, elapsed = queue.print(b"busy then fine\n")
    assert rc == 0 and elapsed < 15
    assert bytes(server.received) == b"busy then fine\n"
    job = queue.job()
    assert (job.state, job.attempts, job.delivery) == ("done", 3, "sent")
    # send_try is set: each refusal counts as an attempt (not so when it is unset).
    assert all(re.search(rf"127\.0\.0\.1%{server.port}: printer busy or switched off since"
                         r" \d\d:\d\d, next try in 1 s", status) for status in seen), seen
    log = queue.text("log")
    assert log.count("the printer is busy") == 2 and log.count("next try in 1 s") == 4, log
    assert "retrying" not in queue.text("status"), "stale after the job printed"


@pytest.mark.parametrize("host", ["no_such!host", "a..b", f"{'x' * 64}.example"])
def test_a_name_that_does_not_resolve_keeps_the_job_with_the_reason(queue: Queue,
                                                                    host: str) -> None:
    """A name the resolver can never take is said as such, never an internal error (an
    empty or too long label: the idna codec refused it, a UnicodeError)."""
    queue.setup(f"{host}%9100", "send_try#2")
    rc, elapsed = queue.print(b"kept\n")
    job = queue.job()
    assert rc == 6 and elapsed < 10
    assert (job.state, job.attempts, job.bytes_sent) == ("failed", 2, 0)
    assert host in job.last_error and queue.has_data(job)
    assert "internal error" not in job.last_error
    assert re.search(rf"{re.escape(host)}%9100: name does not resolve since \d\d:\d\d,"
                     r" next try in 0 s", queue.text("log"))
    assert queue.text("log").count("not a valid host name") == 2 and host in (
        queue.text("status"))
    assert acct_fields(queue)[0]["outcome"] == "failed"


def test_ipv6_loopback_with_escaped_colons(queue: Queue, printer: MakePrinter) -> None:
    try:
        emulator = printer("::1")
    except OSError as exc:
        pytest.fail(f"IPv6 loopback ::1 is not available here ({exc}): this test needs it")
    queue.setup(lp_of(emulator), "pjl:send_try#2")
    assert "\\:\\:1]%" in (queue.root / "printcap").read_text()
    rc, elapsed = queue.print(b"over six\x0c")
    assert rc == 0 and elapsed < 10
    assert queue.job().delivery == "confirmed" and b"over six\x0c" in stored(emulator)
    assert emulator.records[0].peer.startswith("[::1]:")


def test_connect_grace_pauses_between_connections(queue: Queue, printer: MakePrinter) -> None:
    emulator = printer()
    queue.setup(lp_of(emulator), "connect_grace#1:send_try#3")
    rc, elapsed = queue.print(b"one\n", b"two\n")
    assert rc == 0 and elapsed < 15
    opened, closed = emulator.wait_for("open", 2), emulator.wait_for("close", 2)
    assert opened[1].when - closed[0].when >= 1.0
    assert [stored(emulator, n) for n in (1, 2)] == [b"one\n", b"two\n"]


# --- sending ----------------------------------------------------------------------------
@pytest.mark.parametrize("timeout", ["stall_timeout#2", "stall_timeout#300:send_job_rw_timeout#2"])
def test_zero_window_large_job_stalls_and_stays_queued(queue: Queue, timeout: str) -> None:
    with Server(never_reads) as server:
        queue.setup(f"127.0.0.1%{server.port}", f"connect_interval#30:send_try#3:{timeout}")
        big = os.urandom(1 << 20) * 16
        rc, _ = queue.print(big, args=("--no-wait",))
        assert rc == 0
        rc, elapsed = queue.run("watch", "--once", "-P", "q")
    assert rc == 8 and elapsed < 12
    job = queue.job()
    assert job.state == "queued" and "took no data for 2 s" in job.last_error
    assert job.possible_duplicate and 0 < job.bytes_sent < len(big) and queue.has_data(job)


def test_zero_window_small_job_is_not_done(queue: Queue) -> None:
    """All bytes leave into the socket buffers, the printer takes only a few: TIOCOUTQ."""
    data = os.urandom(50_000)
    with Server(never_reads, rcvbuf=4096) as server:
        queue.setup(f"127.0.0.1%{server.port}", "send_try#1")
        rc, elapsed = queue.print(data)
    job = queue.job()
    assert rc == 6 and elapsed < 12
    assert job.state == "failed" and queue.has_data(job)
    assert re.search(r"did not take the last \d+ of 50000 bytes|\d+ bytes of the job are still"
                     " waiting", job.last_error), job.last_error


def test_reset_after_bytes_requeues_then_prints_as_possible_duplicate(
        queue: Queue, printer: MakePrinter) -> None:
    def heal(record: JobRecord) -> None:
        emulator.behaviour.reset_after = None

    emulator = printer(reset_after=1000, on_job=heal)
    data = os.urandom(1 << 20).replace(b"\x1b", b"E")
    queue.setup(lp_of(emulator), "pjl:send_try#3:connect_interval#1")
    rc, elapsed = queue.print(data)
    assert rc == 0 and elapsed < 15
    job = queue.job()
    assert (job.state, job.attempts, job.possible_duplicate) == ("done", 2, True)
    assert len(stored(emulator, 1)) == 1000 and data in stored(emulator, 2)
    assert emulator.records[0].ended == "reset after 1000 bytes"
    assert "queued" in queue.text("log") and "(possible duplicate)" in queue.text("log")
    (line,) = acct_fields(queue)
    assert (line["outcome"], line["duplicate"], line["attempts"]) == ("done", "yes", "2")


def test_a_printer_that_resets_after_taking_everything_is_not_said_to_have_taken_less(
        queue: Queue, printer: MakePrinter) -> None:
    """The printer reads the whole job, then resets instead of closing: the job is not
    done (nothing confirmed it), but the reason no longer says the printer did not take
    the whole job; it says that is not known."""
    emulator = printer(reset_after=5000)
    queue.setup(lp_of(emulator), "send_try#1")
    rc, _elapsed = queue.print(b"r" * 5000)
    job = queue.job()
    assert rc == 6 and job.state == "failed", job
    assert stored(emulator, 1) == b"r" * 5000
    # (the reset may meet the last write, which says how far the send got, or the wait
    # for the printer's close, which says the printer may have it; never that it took less)
    assert "reset the connection" in job.last_error, job.last_error
    assert "before it took the whole job" not in job.last_error, job.last_error
    assert ("instead of closing it, so whether it took the whole job is not known (it may"
            " have printed it)" in job.last_error or "after 5000 bytes" in job.last_error)


@pytest.mark.parametrize(("option", "size"), [
    ("close_after", 100), ("close_after", 4 << 20), ("reset_after", 100)])
def test_accepted_and_dropped_at_once_is_not_done(queue: Queue, printer: MakePrinter,
                                                  option: str, size: int) -> None:
    """CUPS and LPRng mark such a job done with zero bytes delivered."""
    emulator = printer(**{option: 0})
    queue.setup(lp_of(emulator), "send_try#1")
    rc, elapsed = queue.print(b"z" * size)
    job = queue.job()
    assert rc == 6 and elapsed < 10
    assert job.state == "failed" and job.delivery == "" and queue.has_data(job), job
    assert stored(emulator) == b""
    assert acct_fields(queue)[0]["outcome"] == "failed"


def test_pjl_job_name_injection_is_sanitised(queue: Queue, printer: MakePrinter) -> None:
    emulator = printer()
    queue.setup(lp_of(emulator), "pjl:sync")
    rc, elapsed = queue.print(b"payload\n", args=("-J", 'x"\r\n@PJL SET COPIES=99'))
    assert rc == 0 and elapsed < 8
    lines = [line.replace(pjl.UEL, b"") for line in re.split(rb"\r?\n", stored(emulator))]
    assert not [line for line in lines if line.upper().startswith(b"@PJL SET")]
    names = [line for line in lines if line.startswith((b"@PJL JOB ", b"@PJL EOJ "))]
    assert len(names) == 2
    for line in names:
        assert re.fullmatch(rb'@PJL (JOB|EOJ) NAME="[\x20-\x21\x23-\x7e]{1,64}"', line), line
    assert not [e for e in emulator.events("pjl") if "SET" in e.detail.split()[:2]]
    assert emulator.records[0].names[0].endswith("x___@PJL SET COPIES=99")


def test_a_printer_that_closes_its_side_early_but_reads_on(queue: Queue) -> None:
    """Its FIN comes before it has read the job: done once it took every byte, and the
    wait for that must not spin on the readable (EOF) socket."""
    def half_closes_then_reads_slowly(conn: socket.socket, server: Server) -> None:
        conn.settimeout(10)
        server.received += conn.recv(4096)
        time.sleep(0.3)  # the client has sent everything into its buffers by now
        conn.shutdown(socket.SHUT_WR)
        while chunk := conn.recv(4096):
            server.received += chunk
            time.sleep(0.05)

    with Server(half_closes_then_reads_slowly, rcvbuf=4096) as server:
        queue.setup(f"127.0.0.1%{server.port}", "waitend=eof:send_try#1")
        cpu = time.process_time()
        rc, elapsed = queue.print(b"y" * 100_000)
        cpu = time.process_time() - cpu
    assert rc == 0 and elapsed < 10 and len(server.received) == 100_000
    assert (queue.job().state, queue.job().delivery) == ("done", "sent")
    assert cpu < 0.5 * elapsed, f"busy loop: {cpu:.2f} s of CPU in {elapsed:.2f} s"


# --- waiting for completion -----------------------------------------------------------------
@pytest.mark.parametrize("options", ["waitend=eof", "pjl:waitend=eof"])
def test_a_printer_closing_at_once_on_half_close_is_done(queue: Queue, printer: MakePrinter,
                                                         options: str) -> None:
    emulator = printer(close_on_half_close=True, end_delay=0.5)
    data = b"half closed\x0c" * 1000
    queue.setup(lp_of(emulator), options)
    rc, elapsed = queue.print(data)
    assert rc == 0 and elapsed < 8
    job = queue.job()
    assert (job.state, job.delivery) == ("done", "sent")
    assert data in stored(emulator)
    assert emulator.records[0].ended == "closed at the client's half-close"


@pytest.mark.parametrize(("options", "garbage", "note"), [
    ("pjl", False, "no confirmation within 1 s of silence"),
    ("pjl:send_job_rw_timeout#3", True, "no confirmation before the overall time limit")])
def test_no_end_falls_back_to_silence_sent_not_confirmed(
        queue: Queue, printer: MakePrinter, options: str, garbage: bool, note: str) -> None:
    """A printer chattering garbage is never silent: the overall bound ends the wait."""
    emulator = printer(no_end=True, garbage=garbage, garbage_limit=1 << 30)
    queue.setup(lp_of(emulator), options)
    rc, elapsed = queue.print(b"never confirmed\x0c")
    assert rc == 0 and elapsed < 10
    job = queue.job()
    assert (job.state, job.delivery, job.pages) == ("done", "sent", None)
    assert note in queue.text("log")
    assert acct_fields(queue)[0]["delivery"] == "sent"


@pytest.mark.parametrize(("behaviour", "options", "pages"), [
    ({"pages": 3}, "pjl", 3),
    ({"pagecount": 1000, "pages": 4, "no_end": True}, "pjl:waitend=echo:pagecount", 4)])
def test_pages_reach_the_ticket_and_accounting(queue: Queue, printer: MakePrinter,
                                               behaviour: dict[str, int], options: str,
                                               pages: int) -> None:
    """PAGES= of USTATUS JOB END; else (no END) the INFO PAGECOUNT difference."""
    emulator = printer(**behaviour)
    queue.setup(lp_of(emulator), options)
    rc, elapsed = queue.print(b"some pages")
    assert rc == 0 and elapsed < 8
    job = queue.job()
    assert (job.state, job.delivery, job.pages) == ("done", "confirmed", pages)
    assert acct_fields(queue)[0]["pages"] == str(pages)
    queries = [e.detail for e in emulator.events("pjl")].count("@PJL INFO PAGECOUNT")
    assert (queries, emulator.pagecount) == ((2, 1004) if "pagecount" in options else (0, 3))


# --- the back channel ---------------------------------------------------------------------
def test_status_words_are_shown_and_logged_once(queue: Queue) -> None:
    """The same status three times during the job: in the ps file, logged once."""
    words, shown = "paper out or wrong paper (Tray 1 empty)", []

    def paper_out(conn: socket.socket, server: Server) -> None:
        server.received += conn.recv(65536)
        for _ in range(3):
            conn.sendall(PAPER_OUT)
            time.sleep(0.05)
        deadline = time.monotonic() + 5  # the ps file while the job is still on
        while words not in queue.text("status") and time.monotonic() < deadline:
            time.sleep(0.02)
        shown.append(queue.text("status"))
        server.read_to_eof(conn, server)

    with Server(paper_out) as server:
        queue.setup(f"127.0.0.1%{server.port}", "waitend=eof")
        rc, elapsed = queue.print(b"x" * 100_000)
    assert rc == 0 and elapsed < 10 and len(server.received) == 100_000
    assert words in shown[0]
    assert queue.text("log").count(words) == 1, queue.text("log")


def test_garbage_on_the_back_channel_does_not_stop_the_job(queue: Queue,
                                                           printer: MakePrinter) -> None:
    emulator = printer(garbage=True, garbage_limit=1 << 30, end_delay=0.5)
    data = b"under a flood\x0c" * 50_000
    queue.setup(lp_of(emulator), "pjl")
    tracemalloc.start()
    try:
        rc, elapsed = queue.print(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rc == 0 and elapsed < 15 and peak < 16 << 20, peak  # > 32 MiB of garbage flows
    job = queue.job()
    assert (job.state, job.delivery, job.pages) == ("done", "confirmed", 50_000)
    assert data in stored(emulator)


GARBAGE = {"random": os.urandom(10 << 20).translate(bytes.maketrans(b"\x0c", b"\x0b")),
           "pjl-like": ((b"@PJL INFO " + bytes(range(0x20, 0x7f)) * 40 + b"%%[ no end ")
                        * 2800)[:10 << 20]}


@pytest.mark.parametrize("chunk", [1, 4093, 1 << 20])
@pytest.mark.parametrize("kind", list(GARBAGE))
def test_reply_parser_memory_is_bounded_under_garbage(chunk: int, kind: str) -> None:
    """10 MiB without a form feed (the first 40 kB a byte at a time): the buffer stays
    within MAX_REPLY and a real reply after it still parses."""
    parser = pjl.ReplyParser()
    garbage = GARBAGE[kind][:40_000] if chunk == 1 else GARBAGE[kind]
    for at in range(0, len(garbage), chunk):
        assert [r for r in parser.feed(garbage[at:at + chunk]) if r.kind != "ps"] == []
        assert len(parser._buffer) <= pjl.MAX_REPLY  # noqa: SLF001
    replies = parser.feed(b"\x0c" + PAPER_OUT)
    assert [r.words() for r in replies if r.kind == "device"] == [
        "paper out or wrong paper (Tray 1 empty)"]


# --- cancel ------------------------------------------------------------------------------------
def test_cancel_during_a_stalled_send_stops_it(queue: Queue, tmp_path: Path) -> None:
    """``print`` in a process, stalled by a printer that never reads; cancel from here."""
    path = tmp_path / "big"
    path.write_bytes(os.urandom(1 << 20) * 16)
    store = SpoolStore(str(queue.sd), "q")  # read(), not jobs(): that races the writer
    with Server(never_reads) as server:
        queue.setup(f"127.0.0.1%{server.port}", "stall_timeout#60:send_try#1")
        with subprocess.Popen([sys.executable, "-m", "lpfilter", "print", "-P", "q", str(path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
            try:
                deadline = time.monotonic() + 10
                while not getattr(store.read("000001"), "send_started", False):
                    assert time.monotonic() < deadline and proc.poll() is None, "no send"
                    time.sleep(0.05)
                time.sleep(0.5)  # the socket buffers fill up: the send stalls
                start = time.monotonic()
                assert queue.run("cancel", "-P", "q", "1")[0] == 0
                _, err = proc.communicate(timeout=5)
                stopped = time.monotonic() - start
            finally:
                proc.kill()
    assert stopped < 3 and proc.returncode == 6, (stopped, err)
    job = queue.job()
    assert job.state == "cancelled" and not queue.has_data(job)
    assert "cancelled while printing" in queue.text("log")
    assert acct_fields(queue)[0]["outcome"] == "cancelled"
