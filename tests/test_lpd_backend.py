"""LPD forwarding (issue 13): a queue with ``lp=queue@host%port`` or ``rm``/``rp``/``lpd_port``
sends its jobs with RFC 1179. Against LPRng's real lpd the bytes lpd prints are the job's,
byte for byte, and lpq shows the job's user and name; against the scripted server every
refusal at every step gives the job the right state with the server's reason, a close
before the final acknowledgement leaves it queued as a possible duplicate, a stall is
bounded, and a port nobody listens on keeps the job waiting as for a printer that is off."""
from __future__ import annotations

import os
import pwd
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from lpdkit import (  # noqa: F401 - real_lpd and scripted_lpd are fixtures
    MakeScripted, RealLpd, real_lpd, scripted_lpd)
from lpdscript import TEXTS
from spoolkit import Kit, kit, wait_until  # noqa: F401 - kit is a fixture

from lpfilter.backends.settings import LpdSettings, settings_for
from lpfilter.printcap import load
from lpfilter.printcap.destination import Invalid, Lpd
from lpfilter.protocols import lpdcontrol

#: A failed try is retried a minute later: one ``watch --once`` makes one try.
RETRY_LATER = {"connect_interval": 60, "max_connect_interval": 60}
ALL_BYTES = bytes(range(256)) * 16 + b"\r\n\n\r\x00\x1a\x0c\x04"


def submit(kit: Kit, data: bytes, *args: str) -> str:  # noqa: F811
    """Spool ``data`` on queue q without sending it; returns its job id."""
    path = kit.root / "job.bin"
    path.write_bytes(data)
    run = kit.run("print", "-P", "q", "--no-wait", *args, str(path))
    assert run.returncode == 0, run.stderr
    (job,) = kit.states("q")
    return job


def send(kit: Kit) -> int:  # noqa: F811
    """One ``watch --once`` run over queue q; its exit status."""
    return kit.run("watch", "--once", "-P", "q").returncode


def status_text(kit: Kit, *args: str) -> str:  # noqa: F811
    run = kit.run("status", *args, "-P", "q")
    return run.stdout + run.stderr


# --- the real lpd -----------------------------------------------------------------------
def test_a_binary_job_reaches_the_real_lpd_byte_for_byte(kit: Kit, real_lpd: RealLpd) -> None:  # noqa: F811
    kit.queue("q", real_lpd.queue)
    data = ALL_BYTES + os.urandom(3 << 20) + ALL_BYTES
    job = submit(kit, data)
    assert send(kit) == 0
    assert kit.states("q") == {job: "done"}
    assert real_lpd.wait_printed(len(data)) == data
    ticket = kit.ticket("q", job)
    assert ticket["delivery"] == "sent" and not ticket["possible_duplicate"]


def test_rm_rp_and_lpd_port_reach_the_real_lpd(kit: Kit, real_lpd: RealLpd) -> None:  # noqa: F811
    kit.queue("q", "", rm="127.0.0.1", rp="q", lpd_port=str(real_lpd.port))
    kit.queues["q"] = kit.queues["q"].replace(":lp=:", ":")
    kit.write_printcap()
    job = submit(kit, ALL_BYTES)
    assert send(kit) == 0 and kit.states("q") == {job: "done"}
    assert real_lpd.wait_printed(len(ALL_BYTES)) == ALL_BYTES


def test_lpq_shows_the_forwarded_jobs_user_and_name(kit: Kit, real_lpd: RealLpd) -> None:  # noqa: F811
    assert real_lpd.client("lpc", "-P", real_lpd.queue, "stop").returncode == 0
    kit.queue("q", real_lpd.queue, sh=True)
    submit(kit, ALL_BYTES, "-J", "quarterly")
    assert send(kit) == 0
    user = pwd.getpwuid(os.getuid()).pw_name

    def listed() -> list[str]:  # lpd takes the job in once the connection has closed
        text = real_lpd.client("lpq", "-P", real_lpd.queue).stdout.decode()
        return [line for line in text.splitlines() if "quarterly" in line]

    (line,) = wait_until(listed, interval=0.2, what="the job in lpq")
    text = line
    assert f"{user}@" in line and str(len(ALL_BYTES)) in line.split(), text
    assert real_lpd.printed.read_bytes() == b""
    assert real_lpd.client("lpc", "-P", real_lpd.queue, "start").returncode == 0
    assert real_lpd.wait_printed(len(ALL_BYTES)) == ALL_BYTES


# --- the scripted server ----------------------------------------------------------------
def test_the_files_as_sent_copies_as_print_lines_data_once(
        kit: Kit, scripted_lpd: MakeScripted) -> None:  # noqa: F811
    server = scripted_lpd()
    kit.queue("q", f"far@127.0.0.1%{server.port}", bk=True, mc=5)
    submit(kit, ALL_BYTES, "-#", "3", "-J", "two\nlines")
    assert send(kit) == 0
    server.stop()
    (connection,) = server.connections
    assert connection.request == b"\x02far"
    control, data = connection.files
    assert data.data == ALL_BYTES and data.complete and control.complete
    fields = lpdcontrol.parse(control.data)
    assert fields.job_name == "two_lines" and fields.banner
    (file,) = fields.files
    assert (file.name, file.format, file.copies) == (data.name, "f", 3)
    assert control.name.startswith("cfA") and data.name.startswith("dfA")
    assert not fields.identifier  # bk: no LPRng A line
    assert control.data.count(b"\nf" + data.name.encode()) == 3


def test_send_data_first(kit: Kit, scripted_lpd: MakeScripted) -> None:  # noqa: F811
    server = scripted_lpd()
    kit.queue("q", f"q@127.0.0.1%{server.port}", send_data_first=True)
    submit(kit, b"data first\n")
    assert send(kit) == 0
    server.stop()
    assert [f.kind for f in server.connections[0].files] == ["data", "control"]


@pytest.mark.parametrize("mode", ["nack-request", "nack-control", "nack-control-content",
                                  "nack-data", "nack-data-content"])
@pytest.mark.parametrize("code", [1, 2, 3])
def test_each_refusal_at_each_step(kit: Kit, scripted_lpd: MakeScripted, mode: str,  # noqa: F811
                                   code: int) -> None:
    server = scripted_lpd(mode, code)
    kit.queue("q", f"q@127.0.0.1%{server.port}", **RETRY_LATER)
    job = submit(kit, ALL_BYTES)
    rc = send(kit)
    ticket = kit.ticket("q", job)
    reason = TEXTS[mode].format(queue="q")
    if code == 2:  # try later
        assert (rc, ticket["state"]) == (8, "queued")
    else:  # 1: no spooling to that queue, 3: this job is bad
        assert (rc, ticket["state"]) == (6, "failed")
    assert reason in ticket["last_error"] and f"code {code}" in ticket["last_error"]
    assert reason in status_text(kit, "-l")
    (line,) = [line for line in status_text(kit).splitlines() if line.startswith(f"  {job}")]
    assert f"127.0.0.1%{server.port}: {reason[:30]}" in line, line
    data_left = mode == "nack-data-content"
    assert ticket["send_started"] == data_left


def test_a_close_before_the_final_ack_is_a_possible_duplicate(
        kit: Kit, scripted_lpd: MakeScripted) -> None:  # noqa: F811
    server = scripted_lpd("close-before-final-ack")
    kit.queue("q", f"q@127.0.0.1%{server.port}", **RETRY_LATER)
    job = submit(kit, ALL_BYTES)
    assert send(kit) == 8
    ticket = kit.ticket("q", job)
    assert ticket["state"] == "queued" and ticket["possible_duplicate"]
    assert "closed the connection instead of acknowledging the data file" in (
        ticket["last_error"])
    server.stop()
    assert server.connections[0].files[-1].data == ALL_BYTES


def test_a_stalled_server_is_bounded(kit: Kit, scripted_lpd: MakeScripted) -> None:  # noqa: F811
    server = scripted_lpd("stall")
    kit.queue("q", f"q@127.0.0.1%{server.port}", send_job_rw_timeout=1, **RETRY_LATER)
    job = submit(kit, ALL_BYTES)
    assert send(kit) == 8
    ticket = kit.ticket("q", job)
    assert ticket["state"] == "queued" and not ticket["send_started"]
    assert "no acknowledgement of the receive-job request within 1 s" in ticket["last_error"]


def test_cancel_while_waiting_for_an_acknowledgement(kit: Kit,  # noqa: F811
                                                     scripted_lpd: MakeScripted) -> None:  # noqa: F811
    """No timeout bounds the wait here (300 s): cancel ends it, the job never sent."""
    server = scripted_lpd("stall")
    kit.queue("q", f"q@127.0.0.1%{server.port}", **RETRY_LATER)
    job = submit(kit, ALL_BYTES)
    proc = kit.start("watch", "--once", "-P", "q")
    wait_until(lambda: server.connections and kit.states("q")[job] == "active",
               what="the send to wait for the server's acknowledgement")
    cancel = kit.run("cancel", "-P", "q", f"q-{job}")
    assert cancel.returncode == 0, cancel
    proc.wait(20)
    ticket = kit.ticket("q", job)
    assert ticket["state"] == "cancelled" and not ticket["send_started"]


@pytest.fixture
def refusing() -> Iterator[int]:
    """A loopback port bound but never listening: every connection is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_a_refused_port_waits_as_for_a_printer_that_is_off(kit: Kit, refusing: int) -> None:  # noqa: F811
    kit.queue("q", f"q@127.0.0.1%{refusing}")
    job = submit(kit, ALL_BYTES)
    assert send(kit) == 8
    ticket = kit.ticket("q", job)
    assert (ticket["state"], ticket["unreachable_tries"]) == ("queued", 1), ticket
    assert "connection refused" in ticket["last_error"]
    assert not ticket["send_started"]


# --- settings and destinations ----------------------------------------------------------
def test_settings_and_the_port_of_each_form(tmp_path: Path) -> None:
    text = ("a:lp=far@h1%600:lpd_port=700:sh:bk:send_job_rw_timeout#7\n"
            "b:lp=far@h1:lpd_port=700\n"
            "c:rm=h2:lpd_port=0701\n"
            "d:rm=h2:lpd_port=nosuchservice\n")
    (tmp_path / "printcap").write_text(text)
    pc = load([str(tmp_path / "printcap")])
    a, b, c, d = (pc.lookup(name) for name in "abcd")
    assert a.destination() == Lpd("far", "h1", 600)
    assert b.destination() == Lpd("far", "h1", 700)
    assert c.destination() == Lpd("c", "h2", 0o701)
    assert isinstance(d.destination(), Invalid) and "lpd_port" in d.destination().reason
    settings = settings_for(a.destination(), a)
    assert isinstance(settings, LpdSettings)
    assert (settings.banner, settings.style, settings.ack_timeout, settings.data_first) == (
        False, lpdcontrol.Style.RFC, 7.0, False)
    assert settings.framing.leader == b"" and settings.fmt == "f"
    plain = settings_for(b.destination(), b)
    assert isinstance(plain, LpdSettings) and plain.banner
    assert plain.style is lpdcontrol.Style.LPRNG and plain.ack_timeout == 300.0


def test_a_foreground_print_behind_a_job_in_its_retry_pause_does_not_spin(
        kit: Kit, scripted_lpd: MakeScripted) -> None:  # noqa: F811
    """The server says 'try later': job 1 waits out a retry pause. A second foreground
    print found its own job due, but fifo kept it behind job 1; its look-again loop
    served the queue again and again, sending nothing, at 100 % CPU and past
    LPFILTER_PRINT_WAIT (until job 1 failed, or without end with send_try=0). It now
    leaves the job queued at once, exit 8, saying why."""
    import resource
    import time
    server = scripted_lpd("nack-request", code=2)
    kit.queue("q", f"q@127.0.0.1%{server.port}", send_try=0, connect_interval=60)
    kit.env["LPFILTER_PRINT_WAIT"] = "3"
    (kit.root / "f").write_text("page\n")
    first = kit.run("print", "-P", "q", str(kit.root / "f"))
    assert first.returncode == 8, first.stderr
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    second = kit.run("print", "-P", "q", str(kit.root / "f"), timeout=60)
    took = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    assert second.returncode == 8 and took < 15 and cpu < 5, (took, cpu, second.stderr)
    assert "not tried yet: the jobs ahead of it go first" in second.stderr, second.stderr
