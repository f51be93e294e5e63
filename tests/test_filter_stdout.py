"""``lpfilter filter`` as an LPRng data filter (``:if=/.../lpfilter filter:`` with lpd's own
``lp=host%port``) and by hand (``lpfilter filter -Plp < file``). As a data filter: stdin
is the spooled file (seekable), stdout lpd's TCP connection to the printer (the JetDirect
emulator), which lpd keeps using after the filter exits; or a plain file. By hand:
lpfilter's own printcap, status on stderr. Exit codes: lprng-filters.md §5."""
from __future__ import annotations

import fcntl
import os
import re
import socket
import subprocess
from pathlib import Path

from filterkit import (  # noqa: F401
    LPFILTER,
    UEL,
    Lpd,
    MakePrinter,
    data_filter,
    dest,
    lpd,
    pjl_job,
    printer,
    read_to_eof,
    stored,
)
from ftpkit import hang_guard  # noqa: F401

DATA = b"page one\x0cpage two\x0c" + bytes(range(32, 127)) * 50 + b"\x0c"


def if_entry(lpd: Lpd, lp: str, *flags: str, **options: str) -> str:
    return lpd.entry(lp, *flags, **{"if": f"{LPFILTER} filter", **options})


def nonblocking(sock: socket.socket) -> bool:
    return bool(fcntl.fcntl(sock.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK)


# --- data filter, stdout lpd's connection to the printer --------------------------------
def test_data_filter_over_lpds_connection_with_pjl_completion(lpd: Lpd,
                                                              printer: MakePrinter) -> None:
    """The PJL job goes over lpd's connection, its end and page count are read back from
    it, and the connection is left open, blocking and usable: lpd writes the trailer."""
    emulator = printer(pages=3)
    entry = if_entry(lpd, dest(emulator), "pjl", ld="LDMARK", tr="TRMARK")
    with socket.create_connection(emulator.address) as conn:  # lpd's lp=host%port
        assert not nonblocking(conn)
        run = data_filter(lpd, lpd.argv(lp_pipe=False), lpd.env(entry), DATA, conn.fileno())
        assert run.rc == 0, run.text
        assert run.lines == ["job q1-507 MyJob start", "job q1-507 MyJob end, 3 pages",
                             "job confirmed by printer, 3 pages"]
        assert not nonblocking(conn), "the shared file status was left non-blocking"
        conn.sendall(b"<lpd trailer>")
        conn.shutdown(socket.SHUT_WR)
        assert read_to_eof(conn, 10) == b""  # the filter read the printer's replies
    assert stored(emulator) == pjl_job("q1-507 MyJob", DATA) + b"<lpd trailer>"
    assert len(emulator.records) == 1  # one connection: lpd's


def test_data_filter_without_pjl_waits_for_nothing(lpd: Lpd, printer: MakePrinter) -> None:
    """No PJL: waitend=eof cannot work on a connection lpd keeps, so nothing is awaited."""
    emulator = printer()
    entry = if_entry(lpd, dest(emulator), waitend_timeout="30")
    with socket.create_connection(emulator.address) as conn:
        run = data_filter(lpd, lpd.argv(lp_pipe=False), lpd.env(entry), DATA, conn.fileno())
        assert run.rc == 0 and run.seconds < 10, run.text
        conn.sendall(b"TR")
        conn.shutdown(socket.SHUT_WR)
        read_to_eof(conn, 10)
    assert stored(emulator) == DATA + b"TR"
    assert run.lines[-1].startswith("job sent to ") and run.lines[-1].endswith(
        f"{len(DATA)} bytes")


def test_data_filter_printer_reset_is_retry_later(lpd: Lpd, printer: MakePrinter) -> None:
    emulator = printer(reset_after=2000)
    data = DATA * 400
    with socket.create_connection(emulator.address) as conn:
        run = data_filter(lpd, lpd.argv(lp_pipe=False), lpd.env(if_entry(lpd, dest(emulator),
                                                                         "pjl")),
                          data, conn.fileno())
    assert run.rc == 1, run.text
    assert run.has("retrying later") and run.lines[-1].startswith("possible duplicate: ")


def test_data_filter_to_a_plain_file(lpd: Lpd, tmp_path: Path) -> None:
    """lp=/some/file: no back channel; the wrapped job is written and that is all."""
    device = tmp_path / "device"
    entry = if_entry(lpd, str(device), "pjl", ld="LDMARK")
    with open(device, "ab") as out:  # lpd opens lp with O_WRONLY|O_APPEND
        run = data_filter(lpd, lpd.argv(lp_pipe=False), lpd.env(entry), DATA, out.fileno())
    assert run.rc == 0, run.text
    assert device.read_bytes() == pjl_job("q1-507 MyJob", DATA)
    expected = len(pjl_job("q1-507 MyJob", DATA))
    assert run.lines == [f"job sent to the printer, {expected} bytes"]


def test_data_filter_runs_once_per_copy_from_a_rewound_file(lpd: Lpd, tmp_path: Path) -> None:
    """lpd rewinds the spool file for each copy; every run sends the whole file."""
    device = tmp_path / "device"
    entry = if_entry(lpd, str(device))
    with open(device, "ab") as out:
        for _ in range(3):
            run = data_filter(lpd, lpd.argv(lp_pipe=False), lpd.env(entry), DATA,
                              out.fileno())
            assert run.rc == 0, run.text
    assert device.read_bytes() == DATA * 3


def test_bsd_layout_under_lprng_bkf(lpd: Lpd, tmp_path: Path) -> None:
    """With bkf LPRng uses BSD's option list (-n login -h host apart), PRINTCAP_ENTRY set."""
    device = tmp_path / "device"
    argv = ["-Pq1", "-w80", "-l66", "-x0", "-y0", "-Ff", "-Lroot", "-JJobqbkf", "-CA",
            "-n", "root", "-h", "localhost", "acct"]
    lpd.acct().touch()
    with open(device, "ab") as out:
        run = data_filter(lpd, argv, lpd.env(if_entry(lpd, str(device), "pjl", bkf="1")),
                          DATA, out.fileno())
    assert run.rc == 0, run.text
    body = device.read_bytes()
    name = re.search(rb'JOB NAME="(q1-\d+ Jobqbkf)"', body)
    assert name and body == pjl_job(name.group(1).decode(), DATA)
    assert "'-nroot'" in lpd.acct().read_text() and "'-Hlocalhost'" in lpd.acct().read_text()


def test_bsd_lpd_data_filter_without_printcap_entry(lpd: Lpd, tmp_path: Path) -> None:
    """BSD's lpd: ``-c -wN -lN -iN -n login -h host acct``, no PRINTCAP_ENTRY: the job is
    written to stdout with every key at its default (no PJL)."""
    device = tmp_path / "device"
    env = {"PATH": "/bin:/usr/bin", "HOME": str(lpd.home), "LPFILTER_LOCK_DIR": str(lpd.locks)}
    with open(device, "ab") as out:
        run = data_filter(lpd, ["-c", "-w80", "-l66", "-i0", "-n", "root", "-h", "localhost",
                                "acct"], env, DATA, out.fileno())
    assert run.rc == 0, run.text
    assert device.read_bytes() == DATA


# --- by hand ------------------------------------------------------------------------------
def by_hand(tmp_path: Path, *argv: str, stdin: int | None = None, data: bytes | None = None,
            **env: str) -> subprocess.CompletedProcess[bytes]:
    environ = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin",
               "LPFILTER_LOCK_DIR": str(tmp_path / "locks"), **env}
    return subprocess.run([LPFILTER, *argv], stdin=stdin, input=data, capture_output=True,
                          env=environ, cwd=tmp_path, timeout=20, check=False)


def own_printcap(tmp_path: Path, lp: str) -> Path:
    printcap = tmp_path / "printcap"
    printcap.write_text(f"lp|main:lp={lp}:pjl:ld=LD\\033E:tr=TR:sd={tmp_path / 'sd'}"
                        ":connect_timeout#2:waitend_timeout#3\n")
    return printcap


def test_by_hand_with_lpfilters_printcap(tmp_path: Path, printer: MakePrinter) -> None:
    """Not under lpd: lpfilter frames the job itself (ld, tr) and confirms it."""
    emulator = printer(pages=2)
    printcap = own_printcap(tmp_path, dest(emulator))
    job = tmp_path / "job.txt"
    job.write_bytes(DATA)
    with open(job, "rb") as stdin:
        done = by_hand(tmp_path, "--printcap", str(printcap), "filter", "-Plp", stdin=stdin)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b""
    lines = done.stderr.decode().splitlines()
    assert lines[-1] == "job confirmed by printer, 2 pages", lines
    body = stored(emulator)
    assert body.startswith(UEL) and b"LD\x1bE" + DATA + b"TR" + UEL in body


def test_by_hand_from_a_pipe_with_printer_variable(tmp_path: Path,
                                                   printer: MakePrinter) -> None:
    emulator = printer(pages=1)
    printcap = own_printcap(tmp_path, dest(emulator))
    done = by_hand(tmp_path, "filter", "--printcap", str(printcap), data=b"piped\x0c",
                   PRINTER="main")
    assert done.returncode == 0, done.stderr
    assert b"LD\x1bEpiped\x0cTR" in stored(emulator)


def test_by_hand_missing_queue_aborts(tmp_path: Path) -> None:
    printcap = own_printcap(tmp_path, "127.0.0.1%9")
    done = by_hand(tmp_path, "--printcap", str(printcap), "filter", "-Pnosuch", data=b"x")
    assert done.returncode == 2
    (line,) = done.stderr.decode().splitlines()
    assert "nosuch" in line and "printcap" in line


def test_by_hand_a_terminal_is_no_job(tmp_path: Path) -> None:
    printcap = own_printcap(tmp_path, "127.0.0.1%9")
    leader, follower = os.openpty()
    try:
        done = by_hand(tmp_path, "--printcap", str(printcap), "filter", "-Plp",
                       stdin=follower)
    finally:
        os.close(leader)
        os.close(follower)
    assert done.returncode == 2 and b"terminal" in done.stderr


def test_by_hand_a_file_argument_is_never_written_to(tmp_path: Path,
                                                     printer: MakePrinter) -> None:
    """``lpfilter filter -Plp doc.txt`` (stdin not a terminal, as from cron): the bare
    argument is only lpd's accounting file when lpd runs the filter; a person's document
    named there must not get an accounting line appended to it."""
    emulator = printer()
    printcap = own_printcap(tmp_path, dest(emulator))
    doc = tmp_path / "doc.txt"
    doc.write_bytes(b"my precious document\n")
    with open(os.devnull, "rb") as stdin:
        by_hand(tmp_path, "--printcap", str(printcap), "filter", "-Plp", str(doc),
                stdin=stdin)
    assert doc.read_bytes() == b"my precious document\n"
