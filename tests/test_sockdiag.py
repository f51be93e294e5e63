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


def _orphaned(client: tuple[str, int], server: tuple[str, int]) -> tuple[int, int, int]:
    """Wait (at most 10 s) until the kernel keeps the closed client end as a timewait
    socket, shown in FIN_WAIT2 (5) or TIME_WAIT (6) with uid 0 and no inode."""
    import time
    local = (ipaddress.ip_address(client[0]), client[1])
    remote = (ipaddress.ip_address(server[0]), server[1])
    deadline = time.monotonic() + 10
    while True:
        found = sockdiag.answer(_ask(sockdiag.request(local, remote)))
        if found is not None and found[0] in (5, 6) and found[1] == 0 and found[2] == 0:
            return found
        assert time.monotonic() < deadline, f"the closed socket stayed {found}"
        time.sleep(0.02)


@pytest.mark.parametrize("user_runs_it", [False, True])
def test_a_client_that_closed_before_it_was_accepted_is_nobodys(user_runs_it: bool) -> None:
    """A request sent and the socket closed at once: once the kernel keeps that end as a
    timewait socket it shows uid 0, and lpfilter took it for root's (lpc of root's, and
    the TCP rules for remove: a claimed user believed). It has no owner: anonymous."""
    from localkit import made_user
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        script = ("import socket, sys\n"
                  "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
                  "s.sendall(b'\\x06q root disable q\\n'); print(s.getsockname()[1])\n"
                  "s.close()\n")
        if user_runs_it:
            with made_user() as user:
                done = user.python("-c", script, str(port), env={"PATH": "/usr/bin:/bin"})
        else:
            import subprocess
            import sys
            done = subprocess.run([sys.executable, "-c", script, str(port)], text=True,
                                  capture_output=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        client_port = int(done.stdout)
        _orphaned(("127.0.0.1", client_port), ("127.0.0.1", port))
        conn, (host, peer_port) = server.accept()
        with conn:
            assert peer_port == client_port
            assert conn.recv(100) == b"\x06q root disable q\n"  # the request is there
            assert loopuid.socket_owner(conn, host, peer_port) is None
            peer = loopuid.loopback_peer(conn, host, peer_port)
            assert (peer.anonymous, peer.local, peer.uid) == (True, False, None)
            assert str(peer) == f"127.0.0.1:{peer_port} (owner unknown)"


def test_a_remote_hosts_client_is_no_anonymous_one() -> None:
    """Not from this host: a plain TCP peer (the kernel shows no such socket here)."""
    with _connection() as (_client, conn, _host, _port):
        assert not loopuid.from_here(conn, "192.0.2.7")
        assert loopuid.from_here(conn, "127.0.0.9") and loopuid.from_here(conn, "::1")
        assert loopuid.from_here(conn, "::ffff:127.0.0.1")
