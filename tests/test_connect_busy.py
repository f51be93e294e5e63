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
