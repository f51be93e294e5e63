"""A printer that refuses a job's connection for a moment (a print server taking one
connection at a time re-opens its port some milliseconds after the job before) is tried
again after short pauses before the refusal counts: counted, it cost the job
connect_interval, and under load test_crash_kill's watcher sent 3 jobs a second, a
refusal after most of them. Real loopback sockets: a port bound but not listening
refuses, as that printer does; it listens from the moment the test says."""
from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from lpfilter.backends.connect import BUSY_PAUSES, open_connection
from lpfilter.errors import ConnectRefused, Interruption, JobInterrupted


@pytest.fixture
def refusing() -> Iterator[socket.socket]:
    """A loopback port that refuses connections until the test calls ``listen``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock
    finally:
        sock.close()


def test_a_port_that_opens_after_a_refusal_is_connected_to(refusing: socket.socket) -> None:
    """The first look during the connection (or the first pause) opens the port: the
    send connects, where before the refusal went back to the worker."""
    port = refusing.getsockname()[1]
    looks: list[int] = []

    def interrupted() -> Interruption | None:
        if not looks:
            refusing.listen(1)
        looks.append(1)
        return None

    with open_connection("127.0.0.1", port, timeout=5, interrupted=interrupted,
                         busy=True) as sock:
        conn, _ = refusing.accept()
        conn.close()
    assert looks, "the port was never opened"
    assert sock.fileno() == -1  # the end of the with closed it (connect.Connection)


def test_a_port_that_stays_closed_is_refused_after_every_pause(refusing: socket.socket) -> None:
    port = refusing.getsockname()[1]
    looks: list[int] = []

    def interrupted() -> Interruption | None:
        looks.append(1)
        return None

    with pytest.raises(ConnectRefused, match=f"127.0.0.1%{port}: connection refused"):
        open_connection("127.0.0.1", port, timeout=5, interrupted=interrupted, busy=True)
    assert len(looks) >= len(BUSY_PAUSES)  # one before each pause, at least


def test_without_busy_a_refusal_is_said_at_once(refusing: socket.socket) -> None:
    """Status queries and FTP data connections: no pauses (nothing waits on a refusal
    there but the person who asked)."""
    port = refusing.getsockname()[1]
    looks: list[int] = []

    def interrupted() -> Interruption | None:
        looks.append(1)
        return None

    with pytest.raises(ConnectRefused):
        open_connection("127.0.0.1", port, timeout=5, interrupted=interrupted)
    assert len(looks) < len(BUSY_PAUSES)  # at most the connection's own looks


def test_a_cancel_during_the_pauses_ends_the_try_at_once(refusing: socket.socket) -> None:
    port = refusing.getsockname()[1]
    looks: list[int] = []

    def interrupted() -> Interruption | None:
        looks.append(1)
        return Interruption.CANCELLED

    with pytest.raises(JobInterrupted) as caught:
        open_connection("127.0.0.1", port, timeout=5, interrupted=interrupted, busy=True)
    assert caught.value.reason is Interruption.CANCELLED
    assert len(looks) == 1


def _silent_listener(address: str) -> tuple[socket.socket, list[socket.socket]]:
    """A loopback port whose accept queue is full: the kernel drops further SYNs, so a
    connection there gets no answer (a printer that is away), where another address's
    same port refuses."""
    server = socket.socket()
    server.bind((address, 0))
    server.listen(0)
    fillers: list[socket.socket] = []
    for _ in range(4):  # (backlog 0 admits one or two before the queue counts as full)
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(server.getsockname())
        fillers.append(filler)
    return server, fillers


def test_busy_retries_ask_only_the_addresses_that_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A host with a silent address and a refusing one: each busy retry waited the whole
    connect timeout on the silent one again (6 x connect_timeout for one try); only a
    refusal can be a busy moment, so only the refusing address is asked again."""
    from lpfilter.backends import connect
    server, fillers = _silent_listener("127.0.0.2")
    port = server.getsockname()[1]
    silent = (socket.AF_INET, socket.SOCK_STREAM, 6, ("127.0.0.2", port))
    refused = (socket.AF_INET, socket.SOCK_STREAM, 6, ("127.0.0.3", port))
    monkeypatch.setattr(connect, "resolve", lambda host, p: [silent, refused])
    rounds: list[list[object]] = []
    real = connect._connect_any  # noqa: SLF001 - watched, not replaced

    def watched(addresses: list[tuple[int, int, int, object]], *args: object,
                **kwargs: object) -> object:
        rounds.append([a[3] for a in addresses])
        return real(addresses, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(connect, "_connect_any", watched)
    try:
        with pytest.raises(ConnectRefused, match=f"printer%{port}: connection refused"):
            open_connection("printer", port, timeout=0.5, interrupted=lambda: None,
                            busy=True)
    finally:
        for each in (server, *fillers):
            each.close()
    assert rounds[0] == [("127.0.0.2", port), ("127.0.0.3", port)]
    assert rounds[1:] == [[("127.0.0.3", port)]] * len(BUSY_PAUSES), rounds
