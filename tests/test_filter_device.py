"""``lpfilter filter DESTINATION`` as LPRng's output device (``:lp=|/.../lpfilter filter
HOST%PORT:``), run as lpd runs it: the installed program, one socketpair end as fds 0-2,
the recorded lp-pipe argv and lpd's environment, cwd the spool directory; the printer is
the JetDirect emulator on 127.0.0.1. Checked: the bytes at the printer, the status lines
written back on the socket, the exit code (lprng-filters.md §5), the spool left clean."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from filterkit import LPFILTER, Lpd, MakePrinter, dest, lp_pipe, lpd, pjl_job, printer, stored  # noqa: F401
from ftpkit import hang_guard  # noqa: F401

#: Every byte value but ESC and FF (no PJL of its own), then two form feeds: 2 pages.
BINARY = (bytes(range(256)).replace(b"\x1b", b"E").replace(b"\x0c", b"F") * 40
          + b"\x0c" + b"second page\r\n\x0c")


def device_entry(lpd: Lpd, destination: str, *flags: str, **options: str) -> str:
    return lpd.entry(f"|{LPFILTER} filter {destination}", *flags, **options)


def spool_is_clean(lpd: Lpd) -> bool:
    """lpfilter's private copy of the job is gone (only lpd's files may remain)."""
    return not [name for name in os.listdir(lpd.spool) if name.startswith(".lpfilter")]


# --- success --------------------------------------------------------------------------
def test_job_reaches_the_printer_with_pjl_and_nothing_else(lpd: Lpd,
                                                           printer: MakePrinter) -> None:
    """lpd frames the job (ld, tr, ff): lpfilter adds only the PJL job around it."""
    emulator = printer()
    where = dest(emulator)
    entry = device_entry(lpd, where, "pjl", ld="LDMARK", tr="TRMARK", ff="FFMARK")
    run = lp_pipe(lpd, lpd.argv(where), lpd.env(entry), BINARY)
    assert run.rc == 0, run.text
    assert stored(emulator) == pjl_job("q1-507 MyJob", BINARY)
    assert run.lines == ["job q1-507 MyJob start", "job q1-507 MyJob end, 2 pages",
                         "job confirmed by printer, 2 pages"]
    assert len(emulator.records) == 1 and emulator.records[0].names == ["q1-507 MyJob"]
    assert spool_is_clean(lpd) and run.seconds < 10


def test_job_without_pjl_arrives_byte_for_byte(lpd: Lpd, printer: MakePrinter) -> None:
    emulator = printer()
    where = dest(emulator)
    data = os.urandom(1 << 20)
    run = lp_pipe(lpd, lpd.argv(where), lpd.env(device_entry(lpd, where)), data)
    assert run.rc == 0, run.text
    assert stored(emulator) == data
    assert run.lines == [f"job sent to {where}, {len(data)} bytes"]
    assert spool_is_clean(lpd)


@pytest.mark.parametrize("form", ["{host}%{port}", "socket://{host}:{port}",
                                  "socket\\://{host}\\:{port}"])
def test_destination_forms(lpd: Lpd, printer: MakePrinter, form: str) -> None:
    """host%port and socket:// URIs, as written on the command line or with the printcap's
    escaped colons (LPRng keeps the backslashes in the arguments)."""
    emulator = printer()
    host, port = emulator.address
    where = form.format(host=host, port=port)
    run = lp_pipe(lpd, lpd.argv(where), lpd.env(device_entry(lpd, where, "pjl")), b"x\x0c")
    assert run.rc == 0 and run.lines[-1] == "job confirmed by printer, 1 page", run.text
    assert stored(emulator) == pjl_job("q1-507 MyJob", b"x\x0c")


@pytest.mark.parametrize("form", ["[::1]%{port}", "[\\:\\:1]%{port}"])
def test_ipv6_destination(lpd: Lpd, printer: MakePrinter, form: str) -> None:
    try:
        emulator = printer(host="::1")
    except OSError as exc:
        pytest.fail(f"IPv6 loopback ::1 is not available here ({exc}): this test needs it")
    where = form.format(port=emulator.address[1])
    run = lp_pipe(lpd, lpd.argv(where), lpd.env(device_entry(lpd, where, "pjl")), b"6\x0c")
    assert run.rc == 0, run.text
    assert stored(emulator) == pjl_job("q1-507 MyJob", b"6\x0c")
    assert emulator.records[0].peer.startswith("[::1]:")


def test_page_count_from_the_printer(lpd: Lpd, printer: MakePrinter) -> None:
    emulator = printer(pages=7)
    where = dest(emulator)
    run = lp_pipe(lpd, lpd.argv(where), lpd.env(device_entry(lpd, where, "pjl")), b"x\n")
    assert run.rc == 0 and "job confirmed by printer, 7 pages" in run.lines, run.text


def test_printer_that_never_confirms_is_sent_not_confirmed(lpd: Lpd,
                                                           printer: MakePrinter) -> None:
    """No USTATUS JOB END: after waitend_timeout of silence the job counts as sent (exit 0)."""
    emulator = printer(no_end=True)
    where = dest(emulator)
    entry = device_entry(lpd, where, "pjl", waitend_timeout="1")
    run = lp_pipe(lpd, lpd.argv(where), lpd.env(entry), b"data\x0c")
    assert run.rc == 0, run.text
    assert run.lines[-1].startswith(f"job sent to {where}, ")
    assert not run.has("confirmed") and run.seconds < 10
    assert stored(emulator) == pjl_job("q1-507 MyJob", b"data\x0c")


# --- transient failures: exit 1, lpd retries --------------------------------------------
def test_busy_printer_retry_later(lpd: Lpd, printer: MakePrinter) -> None:
    emulator = printer()
    where = dest(emulator)
    emulator.refuse(5)
    run = lp_pipe(lpd, lpd.argv(where), lpd.env(device_entry(lpd, where, "pjl")), BINARY)
    assert run.rc == 1, run.text
    assert len(run.lines) == 1 and run.lines[0].startswith("printer busy, retrying later")
    assert where in run.lines[0] and not run.has("duplicate")
    assert not emulator.events("open") and spool_is_clean(lpd)


def test_reset_mid_job_is_a_possible_duplicate(lpd: Lpd, printer: MakePrinter) -> None:
    emulator = printer(reset_after=1000)
    where = dest(emulator)
    data = os.urandom(300_000).replace(b"\x1b", b"E")
    run = lp_pipe(lpd, lpd.argv(where), lpd.env(device_entry(lpd, where, "pjl")), data)
    assert run.rc == 1, run.text
    assert run.has("retrying later") and run.has(where)
    assert run.lines[-1].startswith("possible duplicate: ")
    assert 1000 <= len(stored(emulator)) < len(data) and spool_is_clean(lpd)


@pytest.mark.parametrize("host", ["no_such!host", "a..b"])
def test_a_name_that_does_not_resolve_is_transient(lpd: Lpd, host: str) -> None:
    """No DNS asked: a syntactically invalid host name (connect.resolve refuses it; an
    empty label was the idna codec's UnicodeError, said to lpd as an internal error)."""
    where = f"{host}%9100"
    run = lp_pipe(lpd, lpd.argv(where), lpd.env(device_entry(lpd, where)), b"job\n")
    assert run.rc == 1, run.text
    assert run.lines == [run.lines[0]] and run.lines[0].startswith(
        f"printer name does not resolve, retrying later: {host}")


# --- permanent: exit 2, lpd aborts the job ----------------------------------------------
def test_no_destination_on_lpds_device_socket(lpd: Lpd) -> None:
    """lp=|lpfilter filter without HOST%PORT: stdin and stdout are the same socket."""
    entry = lpd.entry(f"|{LPFILTER} filter", "pjl")
    run = lp_pipe(lpd, lpd.argv(), lpd.env(entry), b"job\n")
    assert run.rc == 2, run.text
    assert len(run.lines) == 1 and "no destination" in run.lines[0]
    assert "HOST%PORT" in run.lines[0] and spool_is_clean(lpd)


@pytest.mark.parametrize("where, words", [
    ("notaprinter", "job refused: lp=notaprinter: not a device path"),
    ("lp@localhost", "job refused: lp=lp@localhost: lpfilter filter does not forward to LPD"),
    ("|/bin/cat", "lpfilter filter: destination |/bin/cat: lpfilter filter sends to a"
                  " printer"),
])
def test_a_destination_no_backend_can_use_aborts_the_job(lpd: Lpd, where: str,
                                                         words: str) -> None:
    run = lp_pipe(lpd, lpd.argv(where), lpd.env(device_entry(lpd, where)), b"job\n")
    assert run.rc == 2, run.text
    assert len(run.lines) == 1 and run.lines[0].startswith(words), run.text


def test_missing_device_file_is_transient(lpd: Lpd) -> None:
    where = str(lpd.root / "no-such-device")
    run = lp_pipe(lpd, lpd.argv(where), lpd.env(device_entry(lpd, where)), b"job\n")
    assert run.rc == 1 and run.has("does not exist"), run.text
    assert not os.path.exists(where)


# --- signals: lprm, lpd stopping --------------------------------------------------------
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP],
                         ids=lambda s: s.name)
def test_signal_during_a_stalled_send_stops_promptly(lpd: Lpd, printer: MakePrinter,
                                                     signum: signal.Signals) -> None:
    emulator = printer(stall=True)
    where = dest(emulator)
    stopped: list[float] = []

    def signal_it(proc: subprocess.Popen[bytes]) -> None:
        emulator.wait_for("open")
        time.sleep(0.3)  # the send is under way, blocked by the printer's zero window
        assert proc.poll() is None, "finished before the signal"
        proc.send_signal(signum)
        stopped.append(time.monotonic())

    data = os.urandom(8 << 20)
    run = lp_pipe(lpd, lpd.argv(where), lpd.env(device_entry(lpd, where, "pjl")), data,
                  during=signal_it)
    assert time.monotonic() - stopped[0] < 3
    assert run.rc == 1, run.text
    assert run.lines[0] == f"stopped ({signum.name}); lpd will send the job again"
    assert run.has("possible duplicate") and spool_is_clean(lpd)


def test_signal_while_lpd_is_still_writing_the_job_stops_promptly(lpd: Lpd) -> None:
    """lprm or lpd stopping while the job is still coming in: the program must not wait
    for the end of lpd's data (which may never come) before it stops."""
    where = "127.0.0.1%9"  # never reached
    exited: list[int | None] = []

    def signal_it(proc: subprocess.Popen[bytes]) -> None:
        time.sleep(0.5)  # the first part of the job is being copied; lpd writes no more
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        try:
            exited.append(proc.wait(timeout=3))
        except subprocess.TimeoutExpired:
            exited.append(None)

    run = lp_pipe(lpd, lpd.argv(where), lpd.env(device_entry(lpd, where)), b"x" * 50_000,
                  during=signal_it, eof_first=False)
    assert exited == [1], "still running 3 s after SIGTERM, waiting for lpd's EOF"
    assert run.lines == ["stopped (SIGTERM); lpd will send the job again"]
    assert spool_is_clean(lpd)


def test_a_killed_filters_copy_is_removed_by_the_next_run(lpd: Lpd,
                                                         printer: MakePrinter) -> None:
    """SIGKILL leaves the private copy behind (lpd still has the job); the next filter in
    that spool directory removes copies whose process is gone, and keeps a live one's."""
    gone = subprocess.Popen(["/bin/true"])
    gone.wait(timeout=10)
    orphan = lpd.spool / f".lpfilter-filter-{gone.pid}-abc123"
    orphan.write_bytes(b"half a job")
    live = lpd.spool / f".lpfilter-filter-{os.getpid()}-def456"  # this test is alive
    live.write_bytes(b"being written")
    emulator = printer()
    where = dest(emulator)
    run = lp_pipe(lpd, lpd.argv(where), lpd.env(device_entry(lpd, where)), b"next job\n")
    assert run.rc == 0, run.text
    assert not orphan.exists()
    assert live.exists()
    live.unlink()
    assert spool_is_clean(lpd)
