"""The print server's connection reader: bounded lines, bounded waits, streamed data."""
from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lpfilter.server.wire import CHUNK, WRITE, WRITEBACK, ClientError, Wire, start_writeback


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected loopback TCP pair: (the client's end, the server's end)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname()[:2], timeout=10)
        server, _ = listener.accept()
    with client, server:
        yield client, server


def test_lines_then_a_clean_end(pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    client.sendall(b"\x02q\n\x03 12 dfA001h\n")
    client.shutdown(socket.SHUT_WR)
    wire = Wire(server, idle_timeout=10)
    assert wire.line(512) == b"\x02q"
    assert wire.line(512) == b"\x03 12 dfA001h"
    assert wire.line(512) is None
    wire.close()


@pytest.mark.parametrize("sent,why", [(b"x" * 600 + b"\n", "longer than 512"),
                                      (b"x" * 5000, "longer than 512"),
                                      (b"\x02q", "in the middle of a line")])
def test_a_bad_line_is_refused_without_reading_on(
        pair: tuple[socket.socket, socket.socket], sent: bytes, why: str) -> None:
    client, server = pair
    client.sendall(sent)
    client.shutdown(socket.SHUT_WR)
    wire = Wire(server, idle_timeout=10)
    with pytest.raises(ClientError, match=why):
        wire.line(512)
    assert wire.received <= 5000
    wire.close()


def test_data_after_a_line_is_streamed_to_a_file(
        pair: tuple[socket.socket, socket.socket], tmp_path: Path) -> None:
    """Bytes read past a line's end belong to the file that follows: none lost, none twice,
    across several buffer fills."""
    client, server = pair
    data = os.urandom(3 * CHUNK + 17)
    sender = threading.Thread(target=lambda: client.sendall(b"\x03 n dfA\n" + data + b"\0tail\n"))
    sender.start()
    wire = Wire(server, idle_timeout=10)
    assert wire.line(512) == b"\x03 n dfA"
    with open(tmp_path / "df", "wb") as out:
        assert wire.into(out.fileno(), len(data)) == len(data)
    assert wire.exact(1) == b"\0" and wire.line(512) == b"tail"
    sender.join(timeout=30)
    assert (tmp_path / "df").read_bytes() == data
    wire.close()


def test_data_to_the_end_of_the_connection_and_its_limit(
        pair: tuple[socket.socket, socket.socket], tmp_path: Path) -> None:
    client, server = pair
    client.sendall(b"abc" * 1000)
    client.shutdown(socket.SHUT_WR)
    wire = Wire(server, idle_timeout=10)
    with open(tmp_path / "df", "wb") as out, pytest.raises(ClientError, match="2000 bytes"):
        wire.into(out.fileno(), None, limit=2000)
    wire.close()


def test_an_early_end_of_a_file_is_an_error(
        pair: tuple[socket.socket, socket.socket], tmp_path: Path) -> None:
    client, server = pair
    client.sendall(b"12345")
    client.shutdown(socket.SHUT_WR)
    wire = Wire(server, idle_timeout=10)
    with open(tmp_path / "df", "wb") as out, pytest.raises(ClientError, match="5 of 10"):
        wire.into(out.fileno(), 10)
    wire.close()


def test_a_client_that_trickles_is_cut_like_a_silent_one(
        pair: tuple[socket.socket, socket.socket]) -> None:
    """A byte every 50 ms never leaves the socket idle, but the line is not done in 0.5 s."""
    client, server = pair
    stop = threading.Event()

    def trickle() -> None:
        for _ in range(200):  # at most 10 s
            if stop.wait(0.05):
                return
            client.send(b"x")

    sender = threading.Thread(target=trickle)
    sender.start()
    wire = Wire(server, idle_timeout=0.5)
    try:
        with pytest.raises(ClientError, match=r"more than 0\.5 s"):
            wire.line(512)
    finally:
        stop.set()
        sender.join(timeout=10)
        wire.close()
    assert wire.received < 100


def test_the_daemon_stopping_ends_a_wait(pair: tuple[socket.socket, socket.socket]) -> None:
    _, server = pair
    stop = threading.Event()
    wire = Wire(server, idle_timeout=3600, stop=stop)
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    started = time.monotonic()
    with pytest.raises(ClientError, match="shutting down"):
        wire.line(512)
    timer.join()
    assert time.monotonic() - started < 60  # bounded: not the hour of the idle limit
    wire.close()


def test_one_octet_then_the_end(pair: tuple[socket.socket, socket.socket]) -> None:
    """A file's closing NUL, or b"" where a streaming client closed instead."""
    client, server = pair
    client.sendall(b"line\n\0")
    client.shutdown(socket.SHUT_WR)
    wire = Wire(server, idle_timeout=10)
    assert wire.line(512) == b"line"
    assert wire.octet() == b"\0"
    assert wire.octet() == b""
    wire.close()


def test_too_much_is_its_own_client_error(
        pair: tuple[socket.socket, socket.socket], tmp_path: Path) -> None:
    from lpfilter.server.wire import TooMuch
    client, server = pair
    client.sendall(b"x" * 100)
    client.shutdown(socket.SHUT_WR)
    wire = Wire(server, idle_timeout=10)
    with open(tmp_path / "df", "wb") as out, pytest.raises(TooMuch):
        wire.into(out.fileno(), None, limit=50)
    assert issubclass(TooMuch, ClientError)
    wire.close()


def test_a_file_larger_than_the_writeback_step_arrives_whole(
        pair: tuple[socket.socket, socket.socket], tmp_path: Path) -> None:
    """Past every WRITEBACK bytes the file's pages are handed to the disk early
    (sync_file_range); the bytes are the same, and a descriptor that cannot (a pipe) is
    left alone without an error."""
    client, server = pair
    data = os.urandom(WRITEBACK * 2 + 12345)
    sender = threading.Thread(target=lambda: client.sendall(data))
    sender.start()
    wire = Wire(server, idle_timeout=30)
    with open(tmp_path / "df", "wb") as out:
        assert wire.into(out.fileno(), len(data)) == len(data)
    sender.join(timeout=60)
    wire.close()
    assert (tmp_path / "df").read_bytes() == data
    read_end, write_end = os.pipe()
    try:
        start_writeback(write_end)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_small_file_takes_a_buffer_of_its_size_not_a_mib(
        pair: tuple[socket.socket, socket.socket], tmp_path: Path) -> None:
    """A 1 KiB job's data is read through a 1 KiB buffer (a MiB made and zeroed for each
    connection was a third of a received job's CPU); a bigger file after it on the same
    connection still arrives whole, through a buffer of at most CHUNK."""
    import tracemalloc
    client, server = pair
    small, big = os.urandom(1024), os.urandom(2 * CHUNK + 5)
    wire = Wire(server, idle_timeout=10)
    client.sendall(b"\x03 1024 dfA\n")
    assert wire.line(512) == b"\x03 1024 dfA"
    client.sendall(small)  # after the line was taken: nothing of it is pending
    tracemalloc.start()
    try:
        with open(tmp_path / "small", "wb") as out:
            assert wire.into(out.fileno(), len(small)) == len(small)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 10, peak
    sender = threading.Thread(target=lambda: client.sendall(big))
    sender.start()
    with open(tmp_path / "big", "wb") as out:
        assert wire.into(out.fileno(), len(big)) == len(big)
    sender.join(timeout=30)
    assert (tmp_path / "small").read_bytes() == small
    assert (tmp_path / "big").read_bytes() == big
    wire.close()


def test_an_answer_is_sent_without_waiting_for_room_first(
        pair: tuple[socket.socket, socket.socket]) -> None:
    """A job's five acknowledgements fit the socket's buffer: each is sent at once, not
    after waiting for the socket to be writable (a change of the polled events and a
    poll per answer, on every connection)."""
    client, server = pair
    wire = Wire(server, idle_timeout=10)
    waits: list[int] = []
    wait = wire._wait

    def counted(events: int) -> None:
        waits.append(events)
        wait(events)

    wire._wait = counted  # type: ignore[method-assign]
    for n in range(5):
        client.sendall(b"line %d\n" % n)
        assert wire.line(512) == b"line %d" % n
        wire.send(b"\0")
        assert client.recv(1) == b"\0"
    assert waits and WRITE not in waits  # only the reads' waits
    wire.close()


def test_a_client_that_stops_reading_is_cut(
        pair: tuple[socket.socket, socket.socket]) -> None:
    """Answers the client never reads fill the buffers: the send waits, bounded."""
    client, server = pair
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    wire = Wire(server, idle_timeout=0.5)
    with pytest.raises(ClientError, match=r"more than 0\.5 s"):
        wire.send(b"x" * (64 << 20))
    wire.close()
