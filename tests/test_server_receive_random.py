"""Random bytes after an acknowledged receive-job request (issue 14, hypothesis): whatever
a client sends, ``receive_job`` answers, raises nothing but ClientError, and leaves no
staged file; a job it commits is complete (its ticket and data both there)."""
from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from receivekit import Client, Receiver, control_file

from lpfilter.protocols import lpd, lpdcontrol
from lpfilter.protocols.lpd import LpdProtocolError
from lpfilter.server.wire import ClientError

CF = control_file(1)
#: Pieces a client could send, so that random sequences reach deep into the protocol.
PIECES = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"\x01\n", b"\0", b"\n", b"\x02", b"\x03", b"0", b"5", b"12",
                     b" cfA001client\n", b" dfA001client\n", b" dfB001client\n", CF,
                     b"%d cfA001client\n" % len(CF), b"\x035 dfA001client\nhello\0",
                     b"\x030 dfA001client\n", b"../", b"dfA001" + b"h" * 130]))
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    receiver = Receiver(tmp_path_factory.mktemp("random"), "mx#64")
    try:
        yield receiver
    finally:
        receiver.close()


def exchange(port: int, data: bytes) -> None:
    """Send ``data``, half-close, read the answers to the server's close (bounded)."""
    client = Client(port)
    try:
        with contextlib.suppress(OSError):  # the server may refuse and close early
            client.send(data)
            client.sock.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            for _ in range(1000):
                if not client.sock.recv(65536):
                    break
    finally:
        client.close()


@SETTINGS
@given(st.lists(PIECES, max_size=30).map(b"".join))
@example(b"\x02%d cfA001client\n" % len(CF) + CF + b"\0\x035 dfA001client\nhello\0")
@example(b"\x035 dfA001client\nhello\0\x02%d cfA001client\n" % len(CF) + CF + b"\0")
def test_random_bytes_never_break_the_receiver(server: Receiver, data: bytes) -> None:
    exchange(server.port, data)
    outcome = server.outcome()
    assert outcome.error is None or isinstance(outcome.error, ClientError), outcome.error
    assert server.staged() == []
    for job in outcome.jobs:
        assert server.data(job) and job.source == "lpd"
    names = server.files()
    ids = {job.id for job in server.jobs()}
    for job in server.jobs():  # committed jobs are whole: a record and its data (a data
        assert server.store.has_data(job)  # file, or the journal's for a small job)
    assert not [n for n in names if n.endswith(".data") and n[:-5] not in ids]


@given(st.binary(max_size=600))
@example(b"\x03-1 dfA001h\n")
def test_the_subcommand_parser_only_refuses(line: bytes) -> None:
    try:
        parsed = lpd.parse_subcommand(line)
    except LpdProtocolError:
        return
    if parsed is not None:
        lpd.check_file_name(parsed.name)
        assert 0 <= parsed.size <= lpd.MAX_COUNT and "/" not in parsed.name


@given(st.binary(max_size=2000))
def test_the_control_file_parser_only_refuses(data: bytes) -> None:
    try:
        fields = lpdcontrol.cleaned(lpdcontrol.parse(data))
    except LpdProtocolError:
        return
    for data_file in fields.files:
        assert "/" not in data_file.name and len(data_file.name) <= lpd.MAX_FILE_NAME
    assert "\n" not in fields.user + fields.host + fields.job_name + fields.title

