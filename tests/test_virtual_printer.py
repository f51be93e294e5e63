"""The virtual JetDirect printer: real TCP on 127.0.0.1 (port 0), the printer in a thread,
plain socket clients for each behaviour, then the Socket API backend end to end through
``lpfilter print`` and the ``lpfilter virtual-printer`` command as a process."""
from __future__ import annotations

import dataclasses
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lpfilter.cli import main
from lpfilter.emulator.jetdirect import Behaviour, VirtualPrinter
from lpfilter.protocols import pjl
from lpfilter.protocols.pjlstream import Piece, PjlScanner
from lpfilter.spool.store import SpoolStore

UEL = pjl.UEL
MakePrinter = Callable[..., VirtualPrinter]
_BEHAVIOUR = {f.name for f in dataclasses.fields(Behaviour)}


@pytest.fixture
def make_printer(tmp_path: Path) -> Iterator[MakePrinter]:
    """make_printer(**behaviour and VirtualPrinter options): started; stopped at the end."""
    started: list[VirtualPrinter] = []

    def make(**options: object) -> VirtualPrinter:
        behaviour = Behaviour(**{k: options.pop(k) for k in list(options)  # type: ignore[arg-type]
                                 if k in _BEHAVIOUR})
        printer = VirtualPrinter("127.0.0.1", 0, tmp_path / "out", behaviour,
                                 **options)  # type: ignore[arg-type]
        started.append(printer.start())
        return printer

    yield make
    for printer in started:
        printer.stop()


def connect(printer: VirtualPrinter, timeout: float = 5.0) -> socket.socket:
    assert printer.wait_listening()
    opened = len(printer.events("open"))
    sock = socket.create_connection(printer.address, timeout=timeout)
    try:
        printer.wait_for("open", count=opened + 1)
    except BaseException:
        sock.close()
        raise
    return sock


def read_to_eof(sock: socket.socket) -> bytes:
    """Everything the printer sends until it closes (the socket's timeout bounds each read)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def exchange(printer: VirtualPrinter, data: bytes) -> list[pjl.Reply]:
    """Send, half-close, read to EOF: the replies, parsed as the backend parses them."""
    with connect(printer) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        return pjl.ReplyParser().feed(read_to_eof(sock))


def stored(printer: VirtualPrinter, number: int = 1) -> bytes:
    printer.wait_for("close", count=number)
    path = printer.records[number - 1].path
    assert path is not None
    return path.read_bytes()


def job(name: str, data: bytes, **start: object) -> bytes:
    return pjl.job_start(name, **start) + data + pjl.job_end(name)  # type: ignore[arg-type]


# --- the PJL scanner (pure) -----------------------------------------------------------
STREAM = (b"%!PS\x0c" + UEL + b"@PJL\r\n@PJL JOB NAME=\"a\"\n@PJL ENTER LANGUAGE=PCL\r\n"
          b"\x1bE\x0cpage\x0c" + UEL + b"@PJL EOJ\r\n" + UEL + b"@PJ" + b"x" * 5000 + b"\n"
          + UEL + b"@PJL ECHO z\r\n\r\nplain\x0c" + UEL[:4])


def _merged(pieces: list[Piece]) -> list[Piece]:
    """Adjacent data pieces as one (how a stream was cut into reads must not matter)."""
    out: list[Piece] = []
    for piece in pieces:
        if out and piece.kind == out[-1].kind == "data":
            last = out.pop()
            piece = Piece("data", "", last.size + piece.size, last.form_feeds + piece.form_feeds)
        out.append(piece)
    return out


@pytest.mark.parametrize("size", [1, 2, 3, 7, 9, 64, len(STREAM)])
def test_scanner_is_independent_of_read_sizes(size: int) -> None:
    scanner = PjlScanner()
    pieces = [p for at in range(0, len(STREAM), size) for p in scanner.feed(STREAM[at:at + size])]
    assert _merged(pieces) == [
        Piece("data", "", 5, 1), Piece("pjl", "@PJL"), Piece("pjl", '@PJL JOB NAME="a"'),
        Piece("pjl", "@PJL ENTER LANGUAGE=PCL"), Piece("data", "", 8, 2),
        Piece("pjl", "@PJL EOJ"), Piece("data", "", 5004, 0), Piece("pjl", "@PJL ECHO z"),
        Piece("data", "", 8, 1)]
    assert scanner.in_pjl is False  # and the UEL prefix at the end is carried, not data


def test_scanner_drops_an_endless_line_and_keeps_memory_bounded() -> None:
    scanner = PjlScanner()
    pieces = scanner.feed(UEL + b"@PJL " + b"y" * 10000 + b"\x0c\n")
    assert [p.kind for p in pieces] == ["overlong", "data"]
    assert pieces[1].form_feeds == 1 and pieces[0].size + pieces[1].size == 10007


# --- plain socket clients ---------------------------------------------------------------
def test_plain_job_is_stored_byte_exact_and_the_printer_closes_after_eof(
        make_printer: MakePrinter) -> None:
    printer = make_printer()
    data = random.Random(4).randbytes(3 << 20).replace(b"\x1b", b"E")
    assert exchange(printer, data) == []
    assert stored(printer) == data
    record = printer.records[0]
    assert (record.size, record.pages, record.ended) == (
        len(data), max(1, data.count(b"\x0c")), "closed after the client's EOF")
    assert record.path == printer.output / "job-0001.prn"  # type: ignore[operator]


def test_pjl_queries_are_answered_in_order(make_printer: MakePrinter) -> None:
    printer = make_printer(pagecount=41)
    replies = exchange(printer, pjl.echo("cookie-1") + pjl.info("PAGECOUNT")
                       + pjl.info("STATUS") + pjl.info("ID") + pjl.info("CONFIG")
                       + job("j", b"one\x0ctwo\x0c") + pjl.info("pagecount"))
    assert [(r.kind, r.value) for r in replies] == [
        ("echo", "cookie-1"), ("pagecount", ""), ("status", ""),
        ("id", "lpfilter virtual printer"), ("other", ""), ("job", "START"), ("job", "END"),
        ("pagecount", "")]
    assert [replies[1].pages, replies[-1].pages, printer.pagecount] == [41, 43, 43]
    assert replies[2].code == 10001 and replies[2].words() == "ready (Ready)"
    assert replies[4].text == '@PJL INFO CONFIG\r\n"?"'
    assert printer.events("pjl")[0].detail == "@PJL"


@pytest.mark.parametrize(("data", "options", "pages"), [
    (b"a\x0cb\x0cc\x0c", {}, 3), (b"no form feed", {}, 1), (b"", {}, 0),
    (b"a\x0cb\x0c", {"pages": 7}, 7)])
def test_ustatus_job_start_and_end_carry_the_name_and_pages(
        make_printer: MakePrinter, data: bytes, options: dict[str, int], pages: int) -> None:
    printer = make_printer(**options)
    replies = exchange(printer, job('lpf-1 "x"\r\n', data, enter="pcl") + job("other", b"z"))
    ends = [(r.value, r.fields["NAME"], r.pages) for r in replies if r.kind == "job"]
    assert ends == [("START", '"lpf-1 _x___"', None), ("END", '"lpf-1 _x___"', pages),
                    ("START", '"other"', None), ("END", '"other"', options.get("pages", 1))]
    assert printer.records[0].names == ["lpf-1 _x___", "other"]


def test_no_unsolicited_status_unless_asked(make_printer: MakePrinter) -> None:
    printer = make_printer()
    replies = exchange(printer, job("quiet", b"data", ustatus=False)
                       + UEL + b"@PJL JOB NAME=\"late\"\r\n@PJL USTATUS DEVICE=ON\r\n"
                       + b"@PJL USTATUS JOB = ON\r\nx" + UEL + b"@PJL EOJ\r\n@PJL USTATUSOFF\r\n"
                       + job("off", b"y", ustatus=False))
    assert [(r.kind, r.value or r.code, r.fields.get("NAME")) for r in replies] == [
        ("job", "START", '"late"'), ("job", "END", '"late"'), ("device", 10001, None)]


def test_a_second_connection_is_refused_while_the_printer_is_busy(
        make_printer: MakePrinter) -> None:
    printer = make_printer()
    with connect(printer) as first:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(printer.address, timeout=5).close()
        first.sendall(b"first")
    assert stored(printer) == b"first"
    assert exchange(printer, b"second") == [] and stored(printer, 2) == b"second"


def test_refuse_keeps_the_port_closed_for_n_windows(make_printer: MakePrinter) -> None:
    printer = make_printer(refuse_window=0.4)
    printer.refuse(2)
    start = time.monotonic()
    refused = 0
    while True:
        try:
            sock = socket.create_connection(printer.address, timeout=5)
        except ConnectionRefusedError:
            refused += 1
            time.sleep(0.1)
            continue
        sock.close()
        break
    assert refused >= 3 and 0.7 < time.monotonic() - start < 5


def test_reset_after_bytes(make_printer: MakePrinter) -> None:
    printer = make_printer(reset_after=1000)
    data = os.urandom(4 << 20)
    with connect(printer) as sock, pytest.raises((ConnectionResetError, BrokenPipeError)):
        sock.sendall(data)
        read_to_eof(sock)
    assert stored(printer) == data[:1000]
    assert printer.records[0].ended == "reset after 1000 bytes"


@pytest.mark.parametrize("option", ["reset_after", "close_after"])
def test_accept_and_drop_at_once(make_printer: MakePrinter, option: str) -> None:
    printer = make_printer(**{option: 0})
    try:
        with connect(printer) as sock:
            printer.wait_for("close")
            assert sock.recv(10) == b""  # FIN
        assert option == "close_after"
    except ConnectionResetError:  # RST, seen by connect() or recv()
        assert option == "reset_after"
    assert stored(printer) == b""


def test_stall_accepts_but_never_reads(make_printer: MakePrinter) -> None:
    printer = make_printer(stall=True)
    with connect(printer, timeout=0.5) as sock:
        with pytest.raises(TimeoutError):
            sock.sendall(b"x" * (64 << 20))
        with pytest.raises(ConnectionRefusedError):  # still busy with the stalled client
            socket.create_connection(printer.address, timeout=5).close()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert stored(printer) == b""
    assert printer.records[0].ended == "the client closed or reset the connection"
    printer.behaviour.stall = False
    assert exchange(printer, b"next") == [] and stored(printer, 2) == b"next"  # free again


def test_no_end_sends_start_only(make_printer: MakePrinter) -> None:
    printer = make_printer(no_end=True)
    replies = exchange(printer, job("j", b"data") + pjl.echo("after"))
    assert [(r.kind, r.value) for r in replies] == [("job", "START"), ("echo", "after")]


@pytest.mark.parametrize("close_on_half_close", [False, True])
def test_half_close_with_the_end_still_pending(make_printer: MakePrinter,
                                               close_on_half_close: bool) -> None:
    """END comes 0.5 s after EOJ; a printer that closes on half-close drops it (cups#2325)."""
    printer = make_printer(end_delay=0.5, close_on_half_close=close_on_half_close)
    start = time.monotonic()
    replies = exchange(printer, job("j", b"data"))
    assert ("END" in [r.value for r in replies]) == (not close_on_half_close)
    assert (time.monotonic() - start > 0.45) == (not close_on_half_close)
    assert bool(printer.events("dropped")) == close_on_half_close


def test_slow_reads_at_the_given_rate(make_printer: MakePrinter) -> None:
    printer = make_printer(slow=50_000)
    data = os.urandom(40_000)
    assert exchange(printer, data) == []
    opened, eof = printer.events("open")[0].when, printer.wait_for("eof")[0].when
    assert 0.6 < eof - opened < 3 and stored(printer) == data


def test_garbage_on_the_back_channel_is_bounded_and_replies_still_parse(
        make_printer: MakePrinter) -> None:
    printer = make_printer(garbage=True, garbage_limit=100_000)
    with connect(printer, timeout=2) as sock:
        sock.sendall(pjl.echo("still-here"))
        received = b""
        while len(received) < 100_000 + len(b"@PJL ECHO still-here\r\n\x0c"):
            received += sock.recv(65536)
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):  # nothing more: the garbage has a limit
            sock.recv(1)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(5)
        assert read_to_eof(sock) == b""
    assert received.count(b"\x0c") == 1 and received.count(b"@") == 1
    assert [(r.kind, r.value) for r in pjl.ReplyParser().feed(received)] == [
        ("echo", "still-here")]


def test_idle_connections_are_closed(make_printer: MakePrinter) -> None:
    printer = make_printer(idle_timeout=0.3)
    with connect(printer) as sock:
        assert read_to_eof(sock) == b""
    assert printer.records[0].ended == "idle for 0.3 s"


def test_serve_ends_after_the_given_number_of_jobs(make_printer: MakePrinter) -> None:
    printer = make_printer(jobs=2)
    for n in (1, 2):
        assert exchange(printer, b"job %d" % n) == []
    thread = printer._thread  # noqa: SLF001
    assert thread is not None
    thread.join(5)
    assert not thread.is_alive() and printer.jobs_done == 2


def test_numbering_continues_after_existing_jobs_and_remote_hosts_need_a_flag(
        tmp_path: Path) -> None:
    (tmp_path / "job-0041.prn").write_bytes(b"old")
    with VirtualPrinter(port=0, output=tmp_path) as printer:
        exchange(printer, b"new")
        assert stored(printer) == b"new" and printer.records[0].number == 42
    with pytest.raises(ValueError, match="not a loopback address"):
        VirtualPrinter("0.0.0.0", 0).open()


def test_ipv6_loopback(tmp_path: Path) -> None:
    try:
        printer = VirtualPrinter("::1", 0, tmp_path).start()
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        assert [r.value for r in exchange(printer, pjl.echo("six"))] == ["six"]
        assert printer.records[0].peer.startswith("[::1]:")
    finally:
        printer.stop()


# --- end to end: the Socket API backend through lpfilter print ------------------------
@pytest.fixture
def print_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str]]:
    """print_queue(printer, options, data) -> (exit status, stderr) for queue q."""
    monkeypatch.setenv("LPFILTER_LOCK_DIR", str(tmp_path / "locks"))
    (tmp_path / "sd").mkdir()

    def run(printer: VirtualPrinter, options: str, data: bytes) -> tuple[int, str]:
        host, port = printer.address
        (tmp_path / "printcap").write_text(f"q:lp={host}%{port}:sd={tmp_path / 'sd'}"
                                           f":{options}\n")
        monkeypatch.setenv("LPFILTER_PRINTCAP", str(tmp_path / "printcap"))
        (tmp_path / "doc").write_bytes(data)
        rc = main(["print", "-P", "q", str(tmp_path / "doc")])
        return rc, capsys.readouterr().err

    return run


@pytest.mark.parametrize(("options", "delivery", "pages"), [
    ("pjl:sync:pagecount", "confirmed", 6000),
    ("pjl:waitend=echo:pjl_enter=pcl", "confirmed", 6000),
    ("pjl:half_close@", "confirmed", 6000), ("waitend=eof", "sent", None)])
def test_print_through_the_backend(make_printer: MakePrinter, tmp_path: Path,
                                   print_queue: Callable[..., tuple[int, str]], options: str,
                                   delivery: str, pages: int | None) -> None:
    printer = make_printer(pagecount=1000)
    data = b"page one\x0cpage two\x0c" * 3000
    rc, err = print_queue(printer, options, data)
    assert (rc, err) == (0, "")
    (ticket,) = SpoolStore(str(tmp_path / "sd"), "q").jobs()
    assert (ticket.state, ticket.delivery, ticket.pages) == ("done", delivery, pages)
    raw = stored(printer)
    if "pjl" in options:
        prologue = raw.index(b"@PJL USTATUS JOB=ON\r\n") + len(b"@PJL USTATUS JOB=ON\r\n")
        if "pjl_enter" in options:
            prologue += len(b"@PJL ENTER LANGUAGE=PCL\r\n")
        assert raw[prologue:prologue + len(data)] == data
        assert raw[prologue + len(data):].startswith(UEL + b"@PJL\r\n@PJL EOJ NAME=\"q-")
        assert printer.records[0].names == [f"q-{ticket.id} doc"]
    else:
        assert raw == data
    assert printer.records[0].pages == 6000
    assert printer.records[0].ended == "closed after the client's EOF"


def test_print_after_the_printer_refused_twice(make_printer: MakePrinter, tmp_path: Path,
                                               print_queue: Callable[..., tuple[int, str]]
                                               ) -> None:
    printer = make_printer(refuse_window=1.0)
    printer.refuse(2)
    rc, err = print_queue(printer, "pjl:connect_interval#1:send_try#5", b"hello\n")
    assert (rc, err) == (0, "")
    log = (tmp_path / "sd" / "log").read_text()
    assert log.count("connection refused: the printer is busy") == 2, log
    assert stored(printer).count(b"hello\n") == 1


def test_a_reset_before_the_printer_read_everything_is_not_done(
        make_printer: MakePrinter, tmp_path: Path,
        print_queue: Callable[..., tuple[int, str]]) -> None:
    """The printer resets inside the EOJ, so after the client's last write, every time."""
    data = b"a small job: all of it fits in the socket buffers\n"
    total = len(pjl.job_start("q-000001 doc") + data + pjl.job_end("q-000001 doc"))
    printer = make_printer(reset_after=total - 5)
    print_queue(printer, "pjl:send_try#1", data)
    assert len(stored(printer)) == total - 5
    (ticket,) = SpoolStore(str(tmp_path / "sd"), "q").jobs()
    assert ticket.state != "done", ticket.last_error


# --- the command ----------------------------------------------------------------------
def test_command_prints_its_port_serves_jobs_and_exits(tmp_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-m", "lpfilter", "virtual-printer", "--port", "0",
                           "--jobs", "1", "--output", str(tmp_path)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            words = proc.stdout.readline().split()
            assert words[:3] == ["listening", "on", "127.0.0.1"]
            with socket.create_connection(("127.0.0.1", int(words[3])), timeout=5) as sock:
                sock.sendall(job("cmd", b"printed\x0c"))
                sock.shutdown(socket.SHUT_WR)
                replies = pjl.ReplyParser().feed(read_to_eof(sock))
            out, err = proc.communicate(timeout=10)
        finally:
            proc.kill()
    assert (proc.returncode, err) == (0, "")
    assert [r.value for r in replies] == ["START", "END"]
    assert out == (f"job 1 (cmd): {len(job('cmd', b'printed'))+1} bytes, 1 pages ->"
                   f" {tmp_path}/job-0001.prn; closed after the client's EOF\n")
    assert (tmp_path / "job-0001.prn").read_bytes() == job("cmd", b"printed\x0c")


def test_command_stops_on_sigterm(tmp_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-m", "lpfilter", "virtual-printer", "--port", "0",
                           "--refuse", "1"], stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline().startswith("listening")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            proc.kill()


def test_command_refuses_a_remote_host(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["virtual-printer", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert capsys.readouterr().err == ("lpfilter: 0.0.0.0 is not a loopback address: give"
                                       " --allow-remote to listen there\n")


@pytest.mark.parametrize("kind", [[], ["--ftp", "--allow-remote"]])
@pytest.mark.parametrize("host", ["a..b", f"{'x' * 64}.example"])
def test_command_says_a_host_no_lookup_takes_is_no_host(
        host: str, kind: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """The idna codec's UnicodeError (a ValueError) was read as "not a loopback address"
    and told to give --allow-remote, which could not help (the socket printer, and the
    FTP server, which takes only a loopback address without it, alike)."""
    assert main(["virtual-printer", *kind, "--host", host, "--port", "0"]) == 2
    assert capsys.readouterr().err == (f"lpfilter: cannot listen on {host} port 0: not a valid"
                                       " host name or address (give an address, such as"
                                       " 127.0.0.1 or ::1)\n")


def test_the_signal_handlers_stop_takes_no_lock_and_serve_ends_within_a_tick() -> None:
    """SIGTERM's handler runs in the serving thread, which may be inside ``Event.wait``
    holding the event's lock: ``stop()`` (``Event.set``) then waited for that lock forever
    (a whole-suite run once saw ``virtual-printer --refuse 1`` ignore SIGTERM). The command
    installs ``stop_soon``, a plain flag: called with the lock held it returns, and
    ``serve()`` (here refusing, in its wait) ends within a tick."""
    printer = VirtualPrinter("127.0.0.1", 0)
    try:
        printer.refuse(1)
        with printer._stop._cond:  # noqa: SLF001 - what Event.wait holds at moments
            printer.stop_soon()
        started = time.monotonic()
        printer.serve()
        assert time.monotonic() - started < 5.0
        assert printer.stopping()
    finally:
        printer.close()
