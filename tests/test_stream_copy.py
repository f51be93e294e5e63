"""The copy path of the streaming pump, and the rule that chooses it for a peer on this host.

The LPD backend copies through one buffer instead of sendfile(2) when the server runs on
this machine (bench/README.md, LPD forwarding, says why); every loopback test of that
backend goes through it. Here: its bytes, its partial writes, and the rule itself.
"""
from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from lpfilter.backends.connect import on_this_host
from lpfilter.backends.framing import Framing
from lpfilter.backends.stream import CHUNK, Pump


def _nothing() -> None:
    return None


def _receive(sock: socket.socket, into: bytearray) -> None:
    while chunk := sock.recv(65536):
        into.extend(chunk)


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, 3 * CHUNK + 12345])
def test_the_copy_path_sends_every_byte_once_through_partial_writes(
        tmp_path: Path, size: int) -> None:
    """A small send buffer forces partial writes: each piece that did not fit is read
    again from its offset, never sent twice or skipped."""
    data = os.urandom(size)
    path = tmp_path / "job"
    path.write_bytes(data)
    sender, receiver = socket.socketpair()
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sender.setblocking(False)
    got = bytearray()
    reader = threading.Thread(target=_receive, args=(receiver, got))
    reader.start()
    try:
        pump = Pump(sender.fileno(), interrupted=lambda: None, first_byte=_nothing,
                    idle_timeout=30, sendfile=False)
        with open(path, "rb") as src:
            frame = Framing(leader=b"", separator=b"--", trailer=b"")
            sent = pump.send_job(src.fileno(), size, 2, frame)
        pump.close()
        sender.shutdown(socket.SHUT_WR)
    finally:
        reader.join(timeout=30)
        sender.close()
        receiver.close()
    assert not reader.is_alive()
    expected = data + b"--" + data
    assert sent == len(expected) and bytes(got) == expected


def test_a_file_that_shrank_is_an_error_on_the_copy_path_too(tmp_path: Path) -> None:
    path = tmp_path / "job"
    path.write_bytes(b"x" * 100)
    sender, receiver = socket.socketpair()
    sender.setblocking(False)
    try:
        pump = Pump(sender.fileno(), interrupted=lambda: None, first_byte=_nothing,
                    sendfile=False)
        with open(path, "rb") as src, pytest.raises(Exception, match="ended early"):
            pump.send_file(src.fileno(), 200)
        pump.close()
    finally:
        sender.close()
        receiver.close()


@pytest.mark.parametrize("family,address", [(socket.AF_INET, "127.0.0.1"),
                                            (socket.AF_INET, "127.0.0.2"),
                                            (socket.AF_INET6, "::1")])
def test_a_peer_on_a_loopback_address_is_on_this_host(family: int, address: str) -> None:
    try:
        server = socket.socket(family)
        server.bind((address, 0))
    except OSError as exc:
        pytest.skip(f"{address} cannot be bound here: {exc}")
    with server:
        server.listen()
        with socket.create_connection(server.getsockname()[:2], timeout=10) as client:
            accepted, _ = server.accept()
            with accepted:
                assert on_this_host(client) and on_this_host(accepted)


def test_a_socket_with_no_ip_peer_is_not_judged_local() -> None:
    """A Unix socket (or an unconnected one) has no address to judge: sendfile stays."""
    left, right = socket.socketpair()
    with left, right, socket.socket() as unconnected:
        assert not on_this_host(left) and not on_this_host(unconnected)
