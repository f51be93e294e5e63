"""The print server's listener in this process: real sockets on 127.0.0.1, a Queues whose
``find`` waits for the test (a connection held in service), and the option parsers."""
from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from spoolkit import wait_until

from lpfilter.errors import UsageError
from lpfilter.server import listener as listener_module
from lpfilter.server.listener import (Listener, allowed, open_tcp, parse_allow, parse_listen,
                                      peer_address)


class HeldQueues:
    """Serves no queue; each ``find`` waits until ``release`` is set (bounded)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.asked = 0
        self._lock = threading.Lock()

    def find(self, name: str) -> None:
        with self._lock:
            self.asked += 1
        self.release.wait(30)
        return None

    def wake(self, name: str) -> None:
        pass


@pytest.fixture
def served() -> Iterator[tuple[Listener, HeldQueues, int]]:
    queues = HeldQueues()
    sock = open_tcp("127.0.0.1", 0)
    server = Listener([sock], queues, allow=[parse_allow("127.0.0.0/8")], max_connections=2,
                      idle_timeout=30)
    port = sock.getsockname()[1]
    server.start()
    try:
        yield server, queues, port
    finally:
        queues.release.set()
        server.shutdown()


def test_at_the_limit_no_more_are_accepted(served: tuple[Listener, HeldQueues, int]) -> None:
    server, queues, port = served
    clients = [socket.create_connection(("127.0.0.1", port), timeout=30,
                                        source_address=(f"127.0.0.{n}", 0))
               for n in range(1, 7)]  # six hosts: one holds at most a share (limits.py)
    try:
        for client in clients:
            client.sendall(b"\x04q\n")
        wait_until(lambda: queues.asked == 2, what="two connections in service")
        assert server.in_service == 2
        queues.release.set()
        for client in clients:
            assert b"ERROR" in client.recv(4096)
    finally:
        for client in clients:
            client.close()
    assert queues.asked == 6 and server.peak == 2
    wait_until(lambda: server.in_service == 0, what="every connection to end")


def test_a_thread_outliving_shutdown_writes_into_no_reused_descriptor(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """shutdown waits SHUTDOWN_WAIT for connections; one still held then (here: in find)
    ends later, and its wake-up must not go into whatever file took its descriptor."""
    monkeypatch.setattr(listener_module, "SHUTDOWN_WAIT", 0.2)
    queues = HeldQueues()
    sock = open_tcp("127.0.0.1", 0)
    server = Listener([sock], queues, allow=[parse_allow("127.0.0.1")], max_connections=4,
                      idle_timeout=30)
    server.start()
    with socket.create_connection(sock.getsockname()[:2], timeout=30) as client:
        client.sendall(b"\x04q\n")
        wait_until(lambda: queues.asked == 1, what="the connection in service")
        wake_fd = server._wake_w  # noqa: SLF001 - the descriptor the test reuses
        with caplog.at_level(logging.WARNING):
            server.shutdown()
        assert "did not end" in caplog.text
        opened = []  # files until one gets the wake-up pipe's old descriptor (bounded)
        try:
            for n in range(64):
                opened.append(os.open(tmp_path / f"file{n}", os.O_WRONLY | os.O_CREAT, 0o600))
                if opened[-1] == wake_fd:
                    break
            assert opened[-1] == wake_fd
            queues.release.set()
            wait_until(lambda: server.in_service == 0, what="the held connection to end")
            assert (tmp_path / f"file{len(opened) - 1}").read_bytes() == b""
        finally:
            for fd in opened:
                os.close(fd)


@pytest.mark.parametrize(("text", "expected"), [
    ("515", ("", 515)), ("127.0.0.1:0", ("127.0.0.1", 0)), ("[::1]:515", ("::1", 515)),
    ("0.0.0.0:65535", ("0.0.0.0", 65535)), ("[::]:515", ("::", 515))])
def test_listen_values(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["", "host:", "65536", "-1", "::1:515", "name.example:515",
                                  "127.0.0.1:x", "[::1]", "1.2.3.4:５１５"])
def test_bad_listen_values(text: str) -> None:
    with pytest.raises(UsageError, match="--listen"):
        parse_listen(text)


def test_allow_list_and_addresses() -> None:
    loopback = [parse_allow("127.0.0.0/8"), parse_allow("::1")]
    assert allowed("127.0.0.2", loopback) and allowed("::1", loopback)
    assert not allowed("192.0.2.1", loopback) and not allowed("::2", loopback)
    assert not allowed("not an address", loopback)
    assert peer_address("::ffff:127.0.0.1") == "127.0.0.1"
    assert peer_address("fe80::1%eth0") == "fe80::1"
    assert parse_allow("192.0.2.7/24") == ipaddress.ip_network("192.0.2.0/24")
    with pytest.raises(UsageError, match="--allow"):
        parse_allow("192.0.2.0/33")
