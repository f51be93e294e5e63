"""The LPD peers of tests/lpdkit.py work: LPRng's own lpr reaches the real lpd byte for
byte and lpq shows the waiting job; the scripted server records a job a raw RFC 1179 client
sends, and every misbehaviour is what the client sees. Without LPRng (or unshare, or root)
the real-lpd tests skip with the reason; under CI they fail."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from lpdkit import (  # noqa: F401 - real_lpd and scripted_lpd are fixtures
    MODES, MakeScripted, RealLpd, ScriptedLpd, need_lprng, real_lpd, running, scripted_lpd,
    start_lpd, stop_lpd)
from lpdscript import TEXTS

JOB = bytes(range(256)) * 64 + b"\r\n\n\r\x00\x1a\x0c" + os.urandom(5000)
CONTROL = b"Hclient\nPalice\nJmyjob\nfdfA001client\nUdfA001client\nNmyjob\n"


def send_job(port: int, control: bytes = CONTROL, data: bytes = JOB) -> list[bytes]:
    """A raw RFC 1179 client (reference §2): each answer it read, in order; it stops at the
    first one that is not ``\\0`` (an answer then holds the code and the server's text line,
    b"" a close, b"timeout" no answer within 2 s)."""
    answers: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=2) as client:
        steps = [b"\x02q\n",
                 b"\x02%d cfA001client\n" % len(control), control + b"\0",
                 b"\x03%d dfA001client\n" % len(data), data + b"\0"]
        for step in steps:
            try:
                client.sendall(step)
                answer = client.recv(1)
                if answer not in (b"", b"\0"):
                    answer += client.makefile("rb").readline(512)
            except TimeoutError:
                answer = b"timeout"
            answers.append(answer)
            if answer != b"\0":
                break
    return answers


def test_lprs_job_reaches_the_real_lpd_byte_for_byte(real_lpd: RealLpd) -> None:
    job = real_lpd.root / "job.bin"
    job.write_bytes(JOB)
    run = real_lpd.client("lpr", "-P", real_lpd.queue, str(job))
    assert run.returncode == 0, run.stderr
    assert real_lpd.wait_printed(len(JOB)) == JOB
    again = real_lpd.client("lpr", "-P", real_lpd.queue, str(job))
    assert again.returncode == 0, again.stderr
    assert real_lpd.wait_printed(2 * len(JOB)) == JOB + JOB


def test_lpq_shows_the_held_jobs_user_and_name_then_it_prints(real_lpd: RealLpd) -> None:
    stop = real_lpd.client("lpc", "-P", real_lpd.queue, "stop")
    assert stop.returncode == 0 and b"stopped" in stop.stdout, stop.stdout + stop.stderr
    job = real_lpd.root / "job.bin"
    job.write_bytes(JOB)
    run = real_lpd.client("lpr", "-P", real_lpd.queue, "-U", "alice", "-J", "myjob", str(job))
    assert run.returncode == 0, run.stderr
    status = real_lpd.client("lpq", "-P", real_lpd.queue)
    text = status.stdout.decode()
    assert status.returncode == 0 and "printing disabled" in text, text
    (line,) = [line for line in text.splitlines() if "alice@" in line]
    assert "myjob" in line.split() and str(len(JOB)) in line.split(), text
    assert real_lpd.printed.read_bytes() == b""  # held, not printed
    start = real_lpd.client("lpc", "-P", real_lpd.queue, "start")
    assert start.returncode == 0, start.stderr
    again = lambda: real_lpd.client("lpc", "-P", real_lpd.queue, "start")  # noqa: E731
    assert real_lpd.wait_printed(len(JOB), timeout=60, nudge=again) == JOB


def test_lprm_removes_a_held_job(real_lpd: RealLpd) -> None:
    assert real_lpd.client("lpc", "-P", real_lpd.queue, "stop").returncode == 0
    run = real_lpd.client("lpr", "-P", real_lpd.queue, "-J", "gone", stdin=b"x" * 10)
    assert run.returncode == 0, run.stderr
    removed = real_lpd.client("lprm", "-P", real_lpd.queue, "all")
    assert removed.returncode == 0 and b"dequeued" in removed.stdout, removed.stdout
    assert b"gone" not in real_lpd.client("lpq", "-P", real_lpd.queue).stdout


def test_a_raw_client_delivers_to_the_real_lpd(real_lpd: RealLpd) -> None:
    """The reference's client steps work against LPRng itself, so what the scripted server
    answers is what a real one would; lpd commits the job when the client closes."""
    assert send_job(real_lpd.port) == [b"\0"] * 5
    assert real_lpd.wait_printed(len(JOB)) == JOB


def test_the_real_lpd_listens_on_loopback_only_and_leaves_nothing(tmp_path: Path) -> None:
    need_lprng()
    lpd = start_lpd(tmp_path / "lpd")
    pids = {process.pid for process in lpd.processes()}
    try:
        assert lpd.listening() == {("127.0.0.1", lpd.port)}
    finally:
        stop_lpd(lpd)
    assert lpd.proc.returncode is not None
    assert not running(pids)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", lpd.port)) != 0


def test_the_scripted_server_records_a_whole_job(scripted_lpd: MakeScripted) -> None:  # noqa: F811
    server: ScriptedLpd = scripted_lpd()
    assert send_job(server.port) == [b"\0"] * 5
    server.stop()
    (connection,) = server.connections
    assert connection.request == b"\x02q"
    control, data = connection.files
    assert (control.kind, control.name, control.count, control.data, control.complete) == (
        "control", "cfA001client", len(CONTROL), CONTROL, True)
    assert (data.kind, data.name, data.count, data.data, data.complete) == (
        "data", "dfA001client", len(JOB), JOB, True)


@pytest.mark.parametrize(("mode", "answers"), [
    ("nack-request", 1), ("nack-control", 2), ("nack-control-content", 3),
    ("nack-data", 4), ("nack-data-content", 5)])
@pytest.mark.parametrize("code", [1, 2, 3])
def test_each_refusal_is_the_clients_answer_at_its_step(
        scripted_lpd: MakeScripted, mode: str, answers: int, code: int) -> None:  # noqa: F811
    server: ScriptedLpd = scripted_lpd(mode, code)
    got = send_job(server.port)
    text = TEXTS[mode].format(queue="q").encode()
    assert got == [b"\0"] * (answers - 1) + [bytes([code]) + text + b"\n"]
    server.stop()
    files = server.connections[0].files
    assert [f.kind for f in files] == ["control", "data"][:answers // 2]
    assert files[-1:] == [] or files[-1].complete == (answers % 2 == 1)


def test_a_refusal_carries_the_text_asked_for(scripted_lpd: MakeScripted) -> None:  # noqa: F811
    server: ScriptedLpd = scripted_lpd("nack-data", 2, "no space on disk")
    assert send_job(server.port)[-1] == b"\x02no space on disk\n"


def test_closing_before_the_final_ack(scripted_lpd: MakeScripted) -> None:  # noqa: F811
    server: ScriptedLpd = scripted_lpd("close-before-final-ack")
    assert send_job(server.port) == [b"\0"] * 4 + [b""]
    server.stop()
    assert server.connections[0].files[-1].data == JOB  # it had the whole job


def test_a_stalled_server_never_answers(scripted_lpd: MakeScripted) -> None:  # noqa: F811
    server: ScriptedLpd = scripted_lpd("stall")
    assert send_job(server.port) == [b"timeout"]
    server.stop()
    assert server.connections[0].request == b""  # it never read


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        ScriptedLpd("nack-everything")
    assert set(MODES) >= set(TEXTS)


def test_a_port_another_program_took_is_replaced(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Between the kit's probe and lpd's bind another program may take the port: lpd is
    started again on a new one, and the kit never mistakes the other listener for lpd."""
    need_lprng()
    import lpdkit
    with socket.create_server(("127.0.0.1", 0)) as other:
        taken = other.getsockname()[1]
        ports = iter([taken, lpdkit.free_port()])
        monkeypatch.setattr(lpdkit, "free_port", lambda: next(ports))
        lpd = start_lpd(tmp_path / "lpd")
        try:
            assert lpd.port != taken and lpd.listening() == {("127.0.0.1", lpd.port)}
        finally:
            stop_lpd(lpd)
