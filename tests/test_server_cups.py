"""CUPS's own `lpd` backend (unpacked from Debian's cups package, see cupskit.py) as a client
of lpfilter's print server: the way a CUPS machine of a site prints to it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from cupskit import cups_lpd, send
from serverkit import Server, printed, prints_another_job, start_server
from spoolkit import Kit, kit, wait_until  # noqa: F401 - fixture


@pytest.fixture
def server(kit: Kit) -> Server:
    cups_lpd()  # skip (fail under CI) before starting anything when it is missing
    kit.queue("q", kit.recorder())
    return start_server(kit)


def test_a_job_from_cups_is_printed_byte_for_byte_with_its_user_and_title(
        kit: Kit, server: Server, tmp_path: Path) -> None:
    data = os.urandom(200_000) + b"\r\n\x0c the end\n"
    document = tmp_path / "doc.bin"
    document.write_bytes(data)
    sent = send(f"lpd://127.0.0.1:{server.port}/q?reserve=none", document,
                user="alice", title="quarterly report")
    assert sent.returncode == 0, sent.stderr.decode(errors="replace")[-2000:]
    assert printed(kit) == [data]
    ticket = next(iter(kit.tickets("q").values()))
    assert (ticket["user"], ticket["name"], ticket["peer"]) == (
        "alice", "quarterly report", "127.0.0.1")


def test_cups_streaming_mode_size_0_is_printed(kit: Kit, server: Server, tmp_path: Path) -> None:
    """``mode=stream``: CUPS announces size 0 and sends the data to the end of the
    connection, as it does for a job it has not spooled."""
    data = b"streamed by cups\n" * 5000
    document = tmp_path / "stream.txt"
    document.write_bytes(data)
    sent = send(f"lpd://127.0.0.1:{server.port}/q?reserve=none&mode=stream", document)
    assert sent.returncode == 0, sent.stderr.decode(errors="replace")[-2000:]
    assert printed(kit) == [data]


def test_a_queue_the_server_does_not_have_fails_the_cups_job_and_the_server_goes_on(
        kit: Kit, server: Server, tmp_path: Path) -> None:
    document = tmp_path / "doc.txt"
    document.write_bytes(b"to nowhere\n")
    sent = send(f"lpd://127.0.0.1:{server.port}/nosuch?reserve=none", document, timeout=120)
    assert sent.returncode != 0
    wait_until(lambda: "nosuch" in server.proc.stderr(), what="the refusal logged")
    prints_another_job(kit, server)
