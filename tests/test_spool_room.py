"""Room for new jobs (spool/room.py): the print server counts what it promised to jobs
still being received, so that two clients that each fit alone cannot fill the disk
together; and the queue's ``minfree`` (LPRng's) is kept free by the server and by
``print``. Real small file systems (a 512 KiB tmpfs) and a real daemon."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from serverkit import send_job, start_server
from spoolkit import Kit, kit, wait_until  # noqa: F401 - fixture
from test_spool_full import small_fs  # noqa: F401 - fixture

from lpfilter.protocols import lpd, lpdcontrol
from lpfilter.spool.room import NoRoom, Promised, check_floor
from lpfilter.status import ExitStatus


def free(where: Path) -> int:
    info = os.statvfs(where)
    return info.f_bavail * info.f_frsize


def test_a_promise_counts_until_it_is_given_back(small_fs: Path) -> None:  # noqa: F811
    ledger = Promised()
    half = free(small_fs) * 3 // 5
    first = ledger.take(str(small_fs), half)
    with pytest.raises(NoRoom, match=f"{half} of them promised to jobs being received"):
        ledger.take(str(small_fs), half)
    first.release()
    first.release()  # (once only)
    ledger.take(str(small_fs), half).release()
    with pytest.raises(NoRoom, match="and minfree keeps 100 KiB free"):
        ledger.take(str(small_fs), free(small_fs) - 50 * 1024, keep=100 * 1024)
    assert check_floor(str(small_fs), 0, 0) is None
    assert "minfree keeps" in str(check_floor(str(small_fs), 1, free(small_fs)))
    assert ledger.take(str(small_fs / "missing"), 10**15).size == 0  # cannot ask: no check


def _start_job(port: int, size: int, number: int) -> tuple[socket.socket, bytes]:
    """A job's control file sent and its data file announced: (the connection, the ack)."""
    names = lpd.JobNames(number, "client")
    control = lpdcontrol.build(lpdcontrol.ControlFields(
        host="client", user="alice", job_name="big",
        files=(lpdcontrol.DataFile(names.data(0), "f", "big"),)))
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    for out in (lpd.receive_job("q"),
                lpd.file_line(lpd.Subcommand.CONTROL_FILE, len(control), names.control),
                control + b"\0"):
        sock.sendall(out)
        assert sock.recv(1) == b"\0"
    sock.sendall(lpd.file_line(lpd.Subcommand.DATA_FILE, size, names.data(0)))
    return sock, sock.recv(1)


def test_two_jobs_that_fit_alone_are_not_both_promised_the_room(
        kit: Kit, small_fs: Path) -> None:  # noqa: F811
    """Each announces 60 % of the free space: the second is told to try later (2) while
    the first is on its way, and is taken once the first is queued."""
    kit.queue("q", kit.recorder(), parent=small_fs, mx=0)
    (kit.out / "hang").touch()
    server = start_server(kit)
    size = free(small_fs) * 3 // 5
    first, ack = _start_job(server.port, size, 1)
    try:
        assert ack == b"\0"
        second, ack = _start_job(server.port, size, 2)
        with second:
            assert ack == b"\x02"
            assert b"promised to jobs being received" in second.recv(200)
        first.sendall(b"x" * size + b"\0")
        assert first.recv(1) == b"\0"  # queued: its promise given back
    finally:
        first.close()
    wait_until(lambda: "000001" in kit.tickets("q"), what="job 1 queued")
    assert server.proc.stop() == 0


def test_minfree_is_kept_by_the_server_and_by_print(kit: Kit, small_fs: Path) -> None:  # noqa: F811
    room_kib = free(small_fs) // 1024
    sd = kit.queue("q", kit.recorder(), parent=small_fs, minfree=room_kib - 100)
    doc = kit.root / "doc.txt"
    doc.write_bytes(b"page\n" * 40000)  # 200 KB: more than the 100 KiB minfree leaves
    done = kit.run("print", "--no-wait", "-P", "q", str(doc))
    assert done.returncode == ExitStatus.SPOOL_FULL, done.stderr
    assert done.stderr.count("\n") == 1 and done.stdout == ""
    said = f"queue q: the spool directory {sd} cannot be written: it would leave too little"
    assert f"{said} room: only " in done.stderr and "minfree keeps" in done.stderr, done.stderr
    (kit.root / "line.txt").write_bytes(b"a line\n")
    small = kit.run("print", "--no-wait", "-P", "q", str(kit.root / "line.txt"))
    assert small.returncode == 0, small.stderr  # a small one still fits
    (kit.out / "hang").touch()
    server = start_server(kit)
    with pytest.raises(AssertionError, match=r"acknowledgement b'\\x02'"):
        send_job(server.port, doc.read_bytes(), number=7)
    wait_until(lambda: "minfree keeps" in server.proc.stderr(), what="the refusal logged")
    send_job(server.port, b"a line\n", number=8)  # a small one still fits
    assert server.proc.stop() == 0
