"""The uid of a local TCP socket asked of the kernel (server/sockdiag.py): one socket by
its addresses, not a read of every row of /proc/net/tcp per connection (issue 16)."""
from __future__ import annotations

import ipaddress
import os
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lpfilter.server import loopuid, sockdiag

V4 = ipaddress.ip_address("127.0.0.1")


def test_the_request_names_the_socket_by_its_four_addresses() -> None:
    data = sockdiag.request((V4, 0x1234), (V4, 515))
    length, kind, flags = struct.unpack_from("=IHH", data)
    assert (length, kind, flags) == (len(data), sockdiag.SOCK_DIAG_BY_FAMILY, 1) == (72, 20, 1)
    family, protocol = data[16], data[17]
    assert (family, protocol) == (socket.AF_INET, socket.IPPROTO_TCP)
    sport, dport = struct.unpack_from("!HH", data, 24)
    assert (sport, dport) == (0x1234, 515)  # network order, as the kernel's __be16
    assert data[28:32] == V4.packed and data[44:48] == V4.packed
    assert data[-8:] == b"\xff" * 8  # no cookie check


def test_an_error_or_short_answer_is_no_answer() -> None:
    error = struct.pack("=IHHII", 36, sockdiag.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", -2)
    assert sockdiag.answer(error + bytes(16)) is None
    assert sockdiag.answer(b"") is None
    assert sockdiag.answer(struct.pack("=IHHII", 30, 20, 0, 1, 0) + bytes(14)) is None


@contextmanager
def _connection() -> Iterator[tuple[socket.socket, socket.socket, str, int]]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname()) as client:
            conn, (host, port) = server.accept()
            with conn:
                yield client, conn, host, port


def test_a_connection_of_this_process_is_found_with_its_uid_and_inode() -> None:
    with _connection() as (client, conn, host, port):
        ours = conn.getsockname()
        local = (ipaddress.ip_address(host), port)
        found = sockdiag.answer(_ask(sockdiag.request(local, (V4, ours[1]))))
        assert found is not None
        state, uid, inode = found
        assert (state, uid, inode) == (1, os.getuid(), os.fstat(client.fileno()).st_ino)
        assert sockdiag.socket_uid(local, (V4, ours[1])) == os.getuid()
        assert sockdiag.socket_uid((V4, ours[1]), local) == os.getuid()  # the server's end
        assert sockdiag.socket_uid((V4, 1), (V4, ours[1])) is None  # no such socket


def _ask(data: bytes) -> bytes:
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, sockdiag.NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(5)
        nl.send(data)
        return nl.recv(8192)


def test_loopuid_asks_the_kernel_and_reads_no_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's lookup of a local client: the same uid, without reading
    /proc/net/tcp (every row of it, per connection, ~8 ms after a burst)."""
    read: list[str] = []
    real = loopuid._read
    monkeypatch.setattr(loopuid, "_read", lambda path: (read.append(path), real(path))[1])
    with _connection() as (_client, conn, host, port):
        assert loopuid.socket_owner(conn, host, port) == os.getuid()
    assert read == []


def test_another_users_connection_is_theirs(tmp_path: Path) -> None:
    """A socket another user's process holds: its uid, as the kernel knows it."""
    from localkit import made_user
    found: list[int | None] = []
    with made_user() as user, socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def serve() -> None:
            conn, (host, port) = server.accept()
            with conn:
                ours = conn.getsockname()
                found.append(sockdiag.socket_uid((ipaddress.ip_address(host), port),
                                                 (V4, ours[1])))
                conn.sendall(b"x")

        thread = threading.Thread(target=serve)
        thread.start()
        script = ("import socket, sys\n"
                  "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
                  "assert s.recv(1) == b'x'\n")
        done = user.python("-c", script, str(server.getsockname()[1]),
                           env={"PATH": "/usr/bin:/bin"})
        thread.join(timeout=60)
        assert done.returncode == 0, done.stderr
        assert found == [user.uid] and user.uid != os.getuid()
