"""``lpd_batch`` (issue 13): a batch of jobs for one LPD server goes on one connection, each
job's data file first, so that each job is the server's at its control file's
acknowledgement (lpd-protocol.md §3.1) and only then done. Against LPRng's real lpd (through
a relay that counts connections) every job prints byte for byte, in order, over one
connection; against the scripted server a close between jobs costs a new connection and
nothing else, and a close before a later job's last acknowledgement leaves that job queued
as a possible duplicate while the earlier, acknowledged one is done."""
from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from lpdkit import (  # noqa: F401 - real_lpd and scripted_lpd are fixtures
    MakeScripted, RealLpd, real_lpd, scripted_lpd)
from lpdscript import Relay
from spoolkit import Kit, kit, wait_until  # noqa: F401 - kit is a fixture

from lpfilter.backends.settings import LpdSettings, settings_for
from lpfilter.printcap import load
from lpfilter.protocols import lpd

RETRY_LATER = {"connect_interval": 60, "max_connect_interval": 60}


def submit_all(kit: Kit, datas: list[bytes]) -> list[str]:  # noqa: F811
    """Spool each of ``datas`` on queue q, in order, without sending; their job ids."""
    ids: list[str] = []
    for number, data in enumerate(datas):
        path = kit.root / f"job{number}.bin"
        path.write_bytes(data)
        run = kit.run("print", "-P", "q", "--no-wait", str(path))
        assert run.returncode == 0, run.stderr
        (new,) = set(kit.states("q")) - set(ids)
        ids.append(new)
    return ids


def send(kit: Kit) -> int:  # noqa: F811
    return kit.run("watch", "--once", "-P", "q").returncode


def jobs(count: int) -> list[bytes]:
    """Distinct binary jobs: every byte value, then random bytes of differing lengths."""
    return [bytes(range(256)) + os.urandom(1000 + 4096 * n) + b"\0\n" for n in range(count)]


@pytest.fixture
def relay(real_lpd: RealLpd) -> Iterator[Relay]:  # noqa: F811
    """A connection-counting relay to the real lpd; stopped afterwards."""
    started = Relay(("127.0.0.1", real_lpd.port))
    try:
        yield started
    finally:
        started.stop()


@pytest.mark.parametrize("batch", [True, False])
def test_a_batch_prints_in_order_on_one_connection_to_the_real_lpd(
        kit: Kit, real_lpd: RealLpd, relay: Relay, batch: bool) -> None:  # noqa: F811
    kit.queue("q", f"q@127.0.0.1%{relay.port}", lpd_batch=batch)
    datas = jobs(3)
    ids = submit_all(kit, datas)
    assert send(kit) == 0
    assert kit.states("q") == dict.fromkeys(ids, "done")
    whole = b"".join(datas)
    assert real_lpd.wait_printed(len(whole)) == whole
    assert relay.accepted == (1 if batch else 3)
    for job in ids:
        assert not kit.ticket("q", job)["possible_duplicate"]


def test_one_request_and_each_data_file_first(kit: Kit, scripted_lpd: MakeScripted) -> None:  # noqa: F811
    server = scripted_lpd()
    kit.queue("q", f"far@127.0.0.1%{server.port}", lpd_batch=True)
    datas = jobs(3)
    ids = submit_all(kit, datas)
    assert send(kit) == 0
    server.stop()
    (connection,) = server.connections
    assert connection.request == b"\x02far"
    assert [f.kind for f in connection.files] == ["data", "control"] * 3
    assert [f.data for f in connection.files[::2]] == datas
    assert all(f.complete for f in connection.files)
    assert kit.states("q") == dict.fromkeys(ids, "done")


def test_a_close_between_jobs_costs_only_a_new_connection(
        kit: Kit, scripted_lpd: MakeScripted) -> None:  # noqa: F811
    server = scripted_lpd("close-between-jobs")
    kit.queue("q", f"q@127.0.0.1%{server.port}", lpd_batch=True, **RETRY_LATER)
    datas = jobs(2)
    ids = submit_all(kit, datas)
    assert send(kit) == 0
    server.stop()
    first, second = server.connections
    assert first.request == second.request == b"\x02q"
    assert [f.data for f in first.files if f.kind == "data"] == datas[:1]
    assert [f.data for f in second.files if f.kind == "data"] == datas[1:]
    assert kit.states("q") == dict.fromkeys(ids, "done")
    assert not any(kit.ticket("q", job)["possible_duplicate"] for job in ids)


def test_a_close_before_a_later_jobs_last_ack_keeps_that_job(
        kit: Kit, scripted_lpd: MakeScripted) -> None:  # noqa: F811
    server = scripted_lpd("close-before-second-final-ack")
    kit.queue("q", f"q@127.0.0.1%{server.port}", lpd_batch=True, **RETRY_LATER)
    first, second = submit_all(kit, jobs(2))
    assert send(kit) == 8
    assert kit.states("q") == {first: "done", second: "queued"}
    assert not kit.ticket("q", first)["possible_duplicate"]
    ticket = kit.ticket("q", second)
    assert ticket["possible_duplicate"]
    assert "instead of acknowledging the control file" in ticket["last_error"]


def test_lpd_batch_is_off_by_default_and_sends_data_first(tmp_path: Path) -> None:
    (tmp_path / "printcap").write_text("a:lp=far@h1\nb:lp=far@h1:lpd_batch\n")
    pc = load([str(tmp_path / "printcap")])
    a, b = pc.lookup("a"), pc.lookup("b")
    plain, batch = settings_for(a.destination(), a), settings_for(b.destination(), b)
    assert isinstance(plain, LpdSettings) and isinstance(batch, LpdSettings)
    assert (plain.batch, plain.data_first) == (False, False)
    assert (batch.batch, batch.data_first) == (True, True)


def _ack(sock: socket.socket) -> bytes:
    return sock.recv(1)


def _send_file(sock: socket.socket, code: lpd.Subcommand, name: str, content: bytes) -> None:
    sock.sendall(lpd.file_line(code, len(content), name))
    assert _ack(sock) == b"\0"
    sock.sendall(content + b"\0")
    assert _ack(sock) == b"\0"


def test_the_real_lpd_takes_a_data_first_job_at_its_last_ack(real_lpd: RealLpd) -> None:  # noqa: F811
    """The commit point lpd_batch relies on: a job whose control file came after its data
    is in lpd's spool (job ticket hfA, data file under its own name) while the connection
    is still open; then the connection is reset (a kept connection cut between jobs), and
    lpd prints the job."""
    data = bytes(range(256)) * 4
    control = b"Hclienthost\nProot\nfdfA001clienthost\nUdfA001clienthost\n"
    spool = real_lpd.root / "spool" / "q"
    with socket.create_connection(("127.0.0.1", real_lpd.port), timeout=30) as sock:
        sock.sendall(lpd.receive_job("q"))
        assert _ack(sock) == b"\0"
        _send_file(sock, lpd.Subcommand.DATA_FILE, "dfA001clienthost", data)
        _send_file(sock, lpd.Subcommand.CONTROL_FILE, "cfA001clienthost", control)
        wait_until(lambda: {"hfA001", "dfA001clienthost"} <= {p.name for p in spool.iterdir()},
                   what="lpd to commit the job with the connection open")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert real_lpd.wait_printed(len(data)) == data
