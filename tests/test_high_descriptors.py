"""A backend's socket waits use poll(2): a descriptor past 1023 (a busy daemon's) never
fails with select(2)'s ValueError (an internal error, exit 70)."""
from __future__ import annotations

import contextlib
import fcntl
import resource
import socket
from collections.abc import Iterator

import pytest

from lpfilter.backends import connect, ftpsession, lpd


@pytest.fixture
def high_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected pair, the first end's descriptor past 1023."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(2048, hard)), hard))
    ours, peer = socket.socketpair()
    try:
        high = socket.socket(fileno=fcntl.fcntl(ours.fileno(), fcntl.F_DUPFD_CLOEXEC, 1100))
        ours.close()
        assert high.fileno() >= 1024
        with high, peer:
            yield high, peer
    finally:
        ours.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_an_ftp_reply_is_read_on_a_high_descriptor(
        high_pair: tuple[socket.socket, socket.socket]) -> None:
    sock, peer = high_pair
    peer.sendall(b"220 ready\r\n")
    reply = ftpsession.Control(sock, "test").poll(30)  # without the fix: ValueError
    assert reply is not None and reply.code == 220


def test_a_kept_lpd_connection_closed_by_the_server_is_seen_on_a_high_descriptor(
        high_pair: tuple[socket.socket, socket.socket]) -> None:
    sock, peer = high_pair
    peer.shutdown(socket.SHUT_WR)
    backend = lpd.LpdBackend()
    backend._kept = socket.socket(fileno=fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD_CLOEXEC, 1200))
    assert backend._kept.fileno() >= 1024
    with contextlib.closing(backend):
        assert backend._take() is None  # without the fix: ValueError


def test_readable_waits_on_a_high_descriptor(
        high_pair: tuple[socket.socket, socket.socket]) -> None:
    sock, peer = high_pair
    assert not connect.readable(sock, 0)
    peer.sendall(b"x")
    assert connect.readable(sock, 30)
