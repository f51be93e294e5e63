"""The progress bar of a foreground ``print``: it appears for any job that takes more than
about a second (not only large ones), it counts the bytes the printer has taken (not those
waiting in the socket's buffers), and it stays until the printer has taken the last byte.
Real printers: a slow loopback server in a thread, and ``lpfilter virtual-printer --slow``
as a process with ``print``'s standard error on a pseudo-terminal."""
from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from spoolkit import kit_at, wait_until

from lpfilter import printcap
from lpfilter.commands import terminal
from lpfilter.commands.terminal import TerminalObserver
from lpfilter.job import Job, user_name
from lpfilter.spool.store import SpoolStore
from lpfilter.spool.submit import JobOptions, submit
from lpfilter.spool.worker import QueueWorker

#: The slow server reads this much at a time, then pauses.
CHUNK = 4096
PAUSE = 0.01
#: How far the bytes a printer has acknowledged may run ahead of what the server has read:
#: its small receive buffer and the chunk being read.
SLACK = 64 * 1024
BAR = re.compile(r"\[[# ]{30}\] +(\d+)% ")


class SlowPrinter:
    """A printer on 127.0.0.1:0 with a small receive buffer that reads CHUNK bytes every
    PAUSE seconds, to EOF: ``received`` is what it has read so far."""

    def __init__(self) -> None:
        self.received = 0
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(20)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, name="slow-printer")

    def __enter__(self) -> SlowPrinter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.sock.close()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(20)
                while not self.stop.is_set():
                    data = conn.recv(CHUNK)
                    if not data:
                        break
                    self.received += len(data)
                    time.sleep(PAUSE)


class Recorder:
    """Passes the worker's calls on to a TerminalObserver, noting for each progress call
    what the printer had read by then, and after which call the bar was ended."""

    def __init__(self, inner: TerminalObserver, printer: SlowPrinter | CountFile) -> None:
        self.inner, self.printer = inner, printer
        self.calls: list[tuple[int, int]] = []
        self.ends: list[int] = []

    def progress(self, job: Job, taken: int) -> None:
        self.calls.append((taken, self.printer.received))
        self.inner.progress(job, taken)

    def status(self, job: Job, message: str) -> None:
        self.inner.status(job, message)

    def end(self, job: Job) -> None:
        self.ends.append(len(self.calls))
        self.inner.end(job)


def _print_observed(tmp_path: Path, recorder: Recorder) -> Job | None:
    """Spool tmp_path/doc on the printcap's queue q and serve it once, watched by
    ``recorder``; returns the job's ticket afterwards."""
    entry = printcap.load([str(tmp_path / "printcap")]).lookup("q")
    store = SpoolStore(str(tmp_path / "sd"), "q")
    store.ensure()
    job = submit(entry, store, str(tmp_path / "doc"), JobOptions(user_name(os.getuid())))
    worker = QueueWorker(entry, lock_dir=str(tmp_path / "locks"))
    worker.observer = recorder
    worker.serve(burst=True)
    return store.read(job.id)


def test_the_bar_counts_what_the_printer_took_and_stays_to_the_last_byte(
        tmp_path: Path) -> None:
    """A 512 KiB job fits in the socket's buffers at once, but the printer takes it over
    more than a second: the bar is shown, never counts more than the printer could have
    taken, reaches 100% only with the last byte, and is ended after that."""
    size = 512 * 1024
    data = bytes(range(256)) * (size // 256)
    (tmp_path / "doc").write_bytes(data)
    sd = tmp_path / "sd"
    sd.mkdir()
    with SlowPrinter() as printer:
        (tmp_path / "printcap").write_text(
            f"q:lp=127.0.0.1%{printer.port}:sd={sd}:connect_interval#0:stall_timeout#20:"
            "waitend=eof:waitend_timeout#20\n")
        shown = io.StringIO()
        recorder = Recorder(TerminalObserver(shown, force=True), printer)
        done = _print_observed(tmp_path, recorder)
        assert done is not None and done.state == "done", done
        assert printer.received == size == done.bytes_sent
    assert recorder.calls, "no progress was reported"
    ahead = [(taken, read) for taken, read in recorder.calls if taken > read + SLACK]
    assert not ahead, f"counted bytes the printer had not taken: {ahead[:3]}"
    assert recorder.calls[-1][0] == size  # the last report: the printer took every byte
    assert recorder.ends == [len(recorder.calls)]  # and only then was the bar ended
    percents = [int(p) for p in BAR.findall(shown.getvalue())]
    assert percents, f"no bar after {terminal.BAR_AFTER:g} s: {shown.getvalue()!r}"
    assert percents == sorted(percents) and percents[-1] == 100, percents
    assert any(0 < p < 100 for p in percents), percents


#: A slow pipe program: reads CHUNK bytes every PAUSE seconds to EOF, keeping the count
#: of what it has read in a file (fixed width, rewritten in place).
SLOW_PROGRAM = """#!{python} -IS
import os, time
count = os.open({count!r}, os.O_WRONLY | os.O_CREAT, 0o600)
read = 0
while True:
    data = os.read(0, {chunk})
    if not data:
        break
    read += len(data)
    os.pwrite(count, b"%12d" % read, 0)
    time.sleep({pause})
"""


class CountFile:
    """What the slow pipe program has read so far, from its count file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def received(self) -> int:
        try:
            return int(self.path.read_bytes() or b"0")
        except FileNotFoundError:
            return 0


def test_the_bar_of_a_pipe_counts_what_the_program_read(tmp_path: Path) -> None:
    """lp=|program: the bytes waiting in the pipe (up to 64 KiB) are not counted as taken;
    the bar reaches 100% once the program has read everything and exited."""
    size = 768 * 1024  # read in at least 1.9 s
    (tmp_path / "doc").write_bytes(b"p" * size)
    program = tmp_path / "slow.py"
    program.write_text(SLOW_PROGRAM.format(python=sys.executable, count=str(tmp_path / "count"),
                                           chunk=CHUNK, pause=PAUSE))
    program.chmod(0o755)
    sd = tmp_path / "sd"
    sd.mkdir()
    (tmp_path / "printcap").write_text(f"q:lp=|{program}:sd={sd}:stall_timeout#20:user=root\n")
    shown = io.StringIO()
    recorder = Recorder(TerminalObserver(shown, force=True), CountFile(tmp_path / "count"))
    done = _print_observed(tmp_path, recorder)
    assert done is not None and done.state == "done", done
    ahead = [(taken, read) for taken, read in recorder.calls if taken > read + 2 * CHUNK]
    assert not ahead, f"counted bytes still in the pipe: {ahead[:3]}"
    assert recorder.calls[-1][0] == size and recorder.ends == [len(recorder.calls)]
    percents = [int(p) for p in BAR.findall(shown.getvalue())]
    assert percents and percents[-1] == 100 and any(0 < p < 100 for p in percents), percents


def test_the_bar_on_a_terminal_waits_a_second_then_stays_until_the_end() -> None:
    """Drawn in place on a terminal once a send has gone on for BAR_AFTER seconds; at 100%
    it stays until the worker ends the job; a job done within the second shows nothing."""
    leader, follower = os.openpty()
    now = [100.0]
    try:
        with open(follower, "w", encoding="utf-8", closefd=False) as stream:
            observer = TerminalObserver(stream, clock=lambda: now[0])
            job = Job("000001", "q", "ann", "report", 10_000, 0.0)

            def drawn() -> str:
                chunks = []
                while select.select([leader], [], [], 0)[0]:
                    chunks.append(os.read(leader, 65536).decode())
                return "".join(chunks)

            for at, taken in ((100.0, 0), (100.5, 2_000), (100.9, 4_000)):
                now[0] = at
                observer.progress(job, taken)
            assert drawn() == ""
            now[0] = 101.0
            observer.progress(job, 5_000)
            first = drawn()
            assert first.startswith("\r[###############               ]  50% 4.9 KiB of 9.8 KiB,")
            assert first.endswith("\x1b[K")
            now[0] = 101.5
            observer.progress(job, 10_000)
            assert " 100% 9.8 KiB of 9.8 KiB" in drawn()
            now[0] = 103.0
            observer.status(job, "printing")
            assert drawn() == "\r\x1b[Klpfilter: q-000001: printer: printing\r\n"
            observer.end(job)
            assert drawn() == ""  # the status line already took the bar away
            quick = Job("000002", "q", "ann", "small", 10_000, 0.0)
            for at, taken in ((200.0, 0), (200.4, 10_000)):
                now[0] = at
                observer.progress(quick, taken)
            observer.end(quick)
            assert drawn() == ""
            now[0] = 300.0
            observer.progress(job, 0)
            now[0] = 301.0
            observer.progress(job, 9_000)
            assert "  90% " in drawn()
            observer.end(job)
            assert drawn() == "\r\x1b[K"
    finally:
        os.close(leader)
        os.close(follower)


def _read_terminal(leader: int, process: subprocess.Popen[bytes], timeout: float) -> bytes:
    """All a process wrote to the pseudo-terminal ``leader``, until it exited (bounded)."""
    got = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([leader], [], [], 0.1)[0]:
            try:
                chunk = os.read(leader, 65536)
            except OSError as exc:  # EIO: the terminal's last writer is gone
                if exc.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            got += chunk
        elif process.poll() is not None:
            break
    return bytes(got)


def test_print_on_a_terminal_shows_the_bar_for_a_small_slow_job(tmp_path: Path) -> None:
    """`lpfilter print` of 128 KiB to `lpfilter virtual-printer --slow 32768`, standard
    error a terminal: the bar is drawn in place below 100%, and taken away at the end."""
    with kit_at(tmp_path) as kit:
        printed = tmp_path / "printed"
        emulator = kit.start("virtual-printer", "--port", "0", "--slow", "32768",
                             "--output", str(printed))
        line = wait_until(lambda: re.match(r"listening on (\S+) (\d+)\n", emulator.stdout()),
                          what="the virtual printer to listen")
        kit.queue("q", f"{line.group(1)}%{line.group(2)}", waitend="none",
                  stall_timeout=20)
        doc = tmp_path / "doc"
        doc.write_bytes(b"x" * 128 * 1024)
        leader, follower = os.openpty()
        try:
            process = subprocess.Popen(kit.argv("print", "-P", "q", str(doc)), env=kit.env,
                                       cwd=tmp_path, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=follower)
            os.close(follower)
            follower = -1
            try:
                shown = _read_terminal(leader, process, timeout=60).decode()
                out, _ = process.communicate(timeout=30)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=10)
                if process.stdout is not None:
                    process.stdout.close()
            assert (process.returncode, out) == (0, b"q-000001\n"), shown
        finally:
            os.close(leader)
            if follower >= 0:
                os.close(follower)
        draws = re.findall(r"\r(\[[# ]{30}\] +(\d+)% [^\r]*)", shown)
        assert draws, f"no progress bar on the terminal: {shown!r}"
        assert any(0 < int(percent) < 100 for _, percent in draws), shown
        assert all(bar.endswith("\x1b[K") for bar, _ in draws)
        assert shown.endswith("\r\x1b[K"), repr(shown[-80:])  # the bar is gone at the end
        assert "Traceback" not in shown
