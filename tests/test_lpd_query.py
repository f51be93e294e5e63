"""Remote queue status and cancel over LPD (issue 13): ``lpfilter status -P q@host%port``
and ``cancel -P q@host%port`` against LPRng's real lpd (jobs sent by LPRng's own lpr, held
by ``lpc stop``), a local forwarding queue's remote part, and a tiny loopback server of
this file's own for what lpd will not do: garbage, endless replies, a multi-megabyte line.
Loopback addresses only; no name is ever resolved."""
from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from lpdkit import RealLpd, real_lpd  # noqa: F401 - real_lpd is a fixture
from spoolkit import Kit, kit  # noqa: F401 - kit is a fixture

from lpfilter.backends.lpdquery import MAX_REPLY, remote_status
from lpfilter.errors import PrinterOffline
from lpfilter.cli import main
from lpfilter.job import user_name
from lpfilter.protocols.lpd import MAX_STATUS_LINE, MAX_STATUS_LINES

ME = user_name(os.getuid())


class ReplyServer:
    """One connection on 127.0.0.1: read the request line (bounded), send ``reply``
    (``endless``: the same bytes again and again, at most ``limit`` bytes, until the client
    goes), close. Records the request line."""

    def __init__(self, reply: bytes, *, endless: bool = False, limit: int = 64 * MAX_REPLY,
                 pause: float = 0.0, stall: bool = False):
        self.reply, self.endless, self.limit = reply, endless, limit
        self.pause, self.stall = pause, stall
        self.gone = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(20)
        self.port = self.listener.getsockname()[1]
        self.request = b""
        self.sent = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(20)
            try:
                while not self.request.endswith(b"\n") and len(self.request) < 1024:
                    chunk = conn.recv(1)
                    if not chunk:
                        break
                    self.request += chunk
                if self.stall:  # accept, read, never answer: until the client goes
                    conn.recv(1)
                while self.sent < self.limit and not self.stall:
                    conn.sendall(self.reply)
                    self.sent += len(self.reply)
                    if not self.endless or self.gone.wait(self.pause):
                        break
            except OSError:
                pass  # the client stopped reading and closed: what a bounded client does

    def stop(self) -> None:
        self.gone.set()
        self.listener.close()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


@pytest.fixture
def reply_server() -> Iterator[type[ReplyServer]]:
    started: list[ReplyServer] = []

    def make(reply: bytes, **options: object) -> ReplyServer:
        server = ReplyServer(reply, **options)  # type: ignore[arg-type]
        started.append(server)
        server.thread.start()
        return server

    try:
        yield make  # type: ignore[misc]
    finally:
        for server in started:
            server.stop()


def lpfilter(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def hold_two_jobs(lpd: RealLpd) -> None:
    """Stop lpd's queue and send two jobs with LPRng's lpr: alice's "first", bob's "second"."""
    stop = lpd.client("lpc", "-P", lpd.queue, "stop")
    assert stop.returncode == 0, stop.stdout + stop.stderr
    for user, name in (("alice", "first"), ("bob", "second")):
        run = lpd.client("lpr", "-P", lpd.queue, "-U", user, "-J", name, stdin=b"x" * 10)
        assert run.returncode == 0, run.stderr


def job_line(text: str, user: str) -> str:
    (line,) = [line for line in text.splitlines() if f"{user}@" in line]
    return line


# --- the real lpd ---------------------------------------------------------------------------
def test_status_of_the_real_lpds_queue_short_and_long(
        real_lpd: RealLpd, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    hold_two_jobs(real_lpd)
    code, out, err = lpfilter(capsys, "status", "-P", real_lpd.queue, "-l")
    assert code == 0 and err == "", err
    assert "printing disabled" in out
    assert "first" in job_line(out, "alice").split()
    assert "second" in job_line(out, "bob").split()
    # Short, as lpq -s: LPRng answers one line with the count.
    code, out, err = lpfilter(capsys, "status", "-P", real_lpd.queue)
    assert code == 0 and err == "", err
    assert re.fullmatch(r"q@\S+ 2 jobs \(printing disabled\)\n", out), out
    # The global -P and lpq alias reach the same server.
    code, out, _ = lpfilter(capsys, "-P", real_lpd.queue, "lpq", "--long")
    assert code == 0 and "alice@" in out and "bob@" in out


def test_cancel_removes_one_job_of_the_real_lpd(
        real_lpd: RealLpd, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    hold_two_jobs(real_lpd)
    listed = real_lpd.client("lpq", "-P", real_lpd.queue).stdout.decode()
    number = re.search(r"alice@\S+\+(\d+)", listed)
    assert number, listed
    code, out, err = lpfilter(capsys, "cancel", "-P", real_lpd.queue, number.group(1))
    assert code == 0 and err == "", err
    assert "dequeued" in out and "alice@" in out, out
    after = real_lpd.client("lpq", "-P", real_lpd.queue).stdout.decode()
    assert "alice@" not in after and "bob@" in after, after
    # "all", as lprm all: every job the agent may remove (lpd.perms accepts everything).
    code, out, _ = lpfilter(capsys, "lprm", "-P", real_lpd.queue, "all")
    assert code == 0 and "dequeued" in out and "bob@" in out, out
    assert "bob@" not in real_lpd.client("lpq", "-P", real_lpd.queue).stdout.decode()


def test_cancel_of_a_user_asks_the_real_lpd_for_that_users_jobs(
        real_lpd: RealLpd, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    """``lprm -P q@host bob`` and CUPS' ``cancel -u alice``: the name is sent as lprm's
    item; LPRng's lpd (lpd.perms accepts everything) removes that user's jobs."""
    hold_two_jobs(real_lpd)
    code, out, err = lpfilter(capsys, "cancel", "-P", real_lpd.queue, "-u", "alice")
    assert code == 0 and err == "" and "alice@" in out and "bob@" not in out, out
    code, out, _ = lpfilter(capsys, "lprm", "-P", real_lpd.queue, "bob")
    assert code == 0 and "dequeued" in out and "bob@" in out, out
    after = real_lpd.client("lpq", "-P", real_lpd.queue).stdout.decode()
    assert "alice@" not in after and "bob@" not in after, after


def test_cancel_dash_removes_all_the_users_jobs_and_only_those(
        real_lpd: RealLpd, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    """``-`` is the user's jobs, all of them: LPRng's lpd, given no item, would remove only
    the first job the agent may remove (for root alice's, the first in the queue)."""
    hold_two_jobs(real_lpd)
    for name in ("mine1", "mine2"):
        run = real_lpd.client("lpr", "-P", real_lpd.queue, "-J", name, stdin=b"y" * 5)
        assert run.returncode == 0, run.stderr
    code, out, err = lpfilter(capsys, "cancel", "-P", real_lpd.queue, "-")
    assert code == 0 and err == "", err
    assert out.count("dequeued") == 2 and "alice@" not in out, out
    after = real_lpd.client("lpq", "-P", real_lpd.queue).stdout.decode()
    assert "alice@" in after and "bob@" in after and f"{ME}@" not in after, after


def test_a_forwarding_queue_shows_the_remote_part_below_its_jobs(
        real_lpd: RealLpd, kit: Kit) -> None:  # noqa: F811
    hold_two_jobs(real_lpd)
    kit.queue("fwd", real_lpd.queue)
    job = kit.root / "local.txt"
    job.write_text("a local job\n")
    printed = kit.run("print", "-P", "fwd", "--hold", "-J", "localjob", str(job))
    assert printed.returncode == 0, printed.stderr
    shown = kit.run("status", "-P", "fwd")
    assert shown.returncode == 0, shown.stderr
    local, sep, remote = shown.stdout.partition(f"Remote queue {real_lpd.queue}:\n")
    assert sep, shown.stdout
    assert "localjob" in local and "held" in local
    assert re.fullmatch(r"  q@\S+ 2 jobs \(printing disabled\)\n", remote), remote
    long = kit.run("status", "-P", "fwd", "-l").stdout.partition("Remote queue")[2]
    assert "first" in job_line(long, "alice").split() and "bob@" in long


# --- a server that cannot be reached ---------------------------------------------------------
def test_a_refused_port_is_one_line_and_exit_status_1(
        capsys: pytest.CaptureFixture[str]) -> None:
    port = closed_port()
    for argv in (("status", "-P", f"q@127.0.0.1%{port}"),
                 ("cancel", "-P", f"q@127.0.0.1%{port}", "12")):
        code, out, err = lpfilter(capsys, *argv)
        assert (code, out) == (1, "")
        assert err.count("\n") == 1 and "connection refused" in err, err
        assert f"127.0.0.1%{port}" in err and "Traceback" not in err


def test_an_unreachable_forwarding_queue_is_one_line_not_an_error(kit: Kit) -> None:  # noqa: F811
    port = closed_port()
    kit.queue("fwd", f"q@127.0.0.1%{port}")
    shown = kit.run("status", "-P", "fwd")
    assert shown.returncode == 0 and shown.stderr == "", shown.stderr
    remote = shown.stdout.partition(f"Remote queue q@127.0.0.1%{port}:\n")[2]
    assert remote.count("\n") == 1 and remote.startswith("  not answered: "), remote
    assert "connection refused" in remote


def test_a_forwarding_queue_by_rm_and_rp(reply_server: type[ReplyServer],
                                         kit: Kit) -> None:  # noqa: F811
    server = reply_server(b"remote says hello\n")
    kit.queue("local", "", rm="127.0.0.1", rp="far", lpd_port=str(server.port))
    kit.queues["local"] = kit.queues["local"].replace(":lp=", ":")
    kit.write_printcap()
    shown = kit.run("status", "-P", "local")
    assert shown.returncode == 0, shown.stderr
    assert "  remote says hello\n" in shown.stdout, shown.stdout
    assert server.request == b"\x03far\n"


# --- what is sent ------------------------------------------------------------------------------
@pytest.mark.parametrize(("argv", "wire"), [
    (("status",), b"\x03q\n"),
    (("status", "-l"), b"\x04q\n"),
    (("cancel", "12"), b"\x05q %s 12\n" % ME.encode()),
    (("cancel", "-"), b"\x05q %s %s\n" % (ME.encode(), ME.encode())),
    (("cancel",), b"\x05q %s\n" % ME.encode()),  # as LPRng's lprm: the first removable
    (("lprm", "all"), b"\x05q %s all\n" % ME.encode()),
    (("cancel", "--all"), b"\x05q %s all\n" % ME.encode()),
    (("cancel", "bob", "7"), b"\x05q %s bob 7\n" % ME.encode()),
])
def test_the_request_is_lpqs_or_lprms(reply_server: type[ReplyServer],
                                      capsys: pytest.CaptureFixture[str],
                                      argv: tuple[str, ...], wire: bytes) -> None:
    server = reply_server(b"Printer q@server:\n")
    code, out, _ = lpfilter(capsys, *argv[:1], "-P", f"q@127.0.0.1%{server.port}", *argv[1:])
    assert (code, out) == (0, "Printer q@server:\n")
    server.stop()
    assert server.request == wire


@pytest.mark.parametrize("argv", [
    ("status", "-P", "q@"), ("status", "-P", "@127.0.0.1"), ("status", "-P", "q@127.0.0.1%x"),
    ("status", "-P", "q@127.0.0.1%1", "--json"), ("hold", "-P", "q@127.0.0.1%1", "12"),
    ("cancel", "-P", "q@127.0.0.1%1", "-a", "12"), ("cancel", "-P", "q@127.0.0.1%1", "a\tb"),
])
def test_a_remote_queue_the_command_cannot_ask_is_a_usage_error(
        capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]) -> None:
    code, out, err = lpfilter(capsys, *argv)
    assert (code, out) == (2, "") and err.count("\n") == 1, err


# --- a hostile server --------------------------------------------------------------------------
def assert_safe(out: str) -> None:
    """Nothing reaches the terminal but printable text and newlines."""
    assert all(c == "\n" or c.isprintable() for c in out), repr(out[:200])


def test_garbage_and_control_characters_are_shown_as_escapes(
        reply_server: type[ReplyServer], capsys: pytest.CaptureFixture[str]) -> None:
    garbage = b"\x1b]0;owned\x07\x1b[2J\r\n" + bytes(range(256)) + b"\nrest\x9b\xff\n"
    server = reply_server(garbage)
    code, out, err = lpfilter(capsys, "status", "-P", f"q@127.0.0.1%{server.port}")
    assert code == 0 and err == "", err
    assert_safe(out)
    lines = out.splitlines()
    assert lines[0] == "\\x1b]0;owned\\x07\\x1b[2J"
    assert lines[-1] == "rest\\x9b\xff"  # the C1 CSI too; other bytes as ISO-8859-1


def test_an_endless_reply_is_cut(reply_server: type[ReplyServer],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    server = reply_server(b"job line \x1b[31m red\n" * 1000, endless=True)
    code, out, err = lpfilter(capsys, "status", "-P", f"q@127.0.0.1%{server.port}")
    assert code == 0 and err == "", err
    assert_safe(out)
    lines = out.splitlines()
    assert len(lines) == MAX_STATUS_LINES + 1, len(lines)
    assert lines[-2].startswith("... (") and lines[-1] == (
        f"(reply cut: more than {MAX_REPLY} bytes)")
    server.stop()
    assert server.sent < server.limit  # the client stopped reading; it did not drain it


def test_a_multi_megabyte_line_is_cut(reply_server: type[ReplyServer],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    server = reply_server(b"A" * (4 * MAX_REPLY))
    code, out, err = lpfilter(capsys, "cancel", "-P", f"q@127.0.0.1%{server.port}", "1")
    assert code == 0 and err == "", err
    first, last = out.splitlines()
    assert first == "A" * (MAX_STATUS_LINE - 3) + "..."
    assert last == f"(reply cut: more than {MAX_REPLY} bytes)"


def test_a_server_that_closes_without_a_word(reply_server: type[ReplyServer],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    server = reply_server(b"")
    code, out, err = lpfilter(capsys, "status", "-P", f"q@127.0.0.1%{server.port}")
    assert (code, out) == (0, "") and err == "lpfilter: the server answered nothing\n"


def test_the_installed_command_shows_a_remote_queue(reply_server: type[ReplyServer],
                                                    kit: Kit) -> None:  # noqa: F811
    server = reply_server(b"q@server 0 jobs\n")
    shown = kit.run("lpq", "-P", f"q@127.0.0.1%{server.port}")
    assert (shown.returncode, shown.stdout, shown.stderr) == (0, "q@server 0 jobs\n", "")
    assert not Path(kit.printcap).exists()  # no printcap needed to ask a server


def test_a_server_that_never_answers_is_an_error_not_a_hang(
        reply_server: type[ReplyServer]) -> None:
    server = reply_server(b"", stall=True)
    with pytest.raises(PrinterOffline, match=r"127\.0\.0\.1%\d+: no answer within 0\.2 s"):
        remote_status("127.0.0.1", server.port, "q", long=True, timeout=0.2)


def test_a_reply_that_trickles_for_ever_is_cut_by_the_overall_bound(
        reply_server: type[ReplyServer]) -> None:
    server = reply_server(b"still here\n", endless=True, pause=0.02)
    lines = remote_status("127.0.0.1", server.port, "q", long=True, timeout=5, total=0.3)
    assert lines[0] == "still here" and lines[-1] == "(reply cut: no end within 0.3 s)"
