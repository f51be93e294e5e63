"""A small job received over LPD is held in a memory file while it arrives and kept in the
queue's journal with its record (issue 16, server/staging.py, spool/jobdata.py): no file
is made in tmp/ or jobs/ for it. A job that grows past jobdata.INLINE_MAX, a file sent to
the end of the connection, and a queue with filters get staged files, as before."""
from __future__ import annotations

from pathlib import Path

from receivekit import Client, Receiver, control_file, receiver  # noqa: F401 - a fixture
from test_server_receive import send

from lpfilter.spool.jobdata import INLINE_MAX
from lpfilter.spool.journalformat import Kind, decode, first_lsn


def _kinds(sd: Path) -> list[int]:
    data = (sd / ".lpfilter" / "journal").read_bytes()
    records, _ = decode(data, first_lsn(data))
    return [record.kind for record in records if record.kind in (Kind.DATA, Kind.JOB)]


def test_a_small_job_makes_no_file(receiver: Receiver) -> None:
    client = Client(receiver.port)
    cf = control_file(5, files=(("f", "dfA"), ("f", "dfB")))
    assert client.control("cfA005client", cf) == b"\0"
    assert client.data("dfA005client", b"first ") == b"\0"
    assert receiver.staged() == []  # held in memory while the job arrives
    assert client.data("dfB005client", b"second") == b"\0"
    client.finish()
    (job,) = receiver.outcome().jobs
    assert receiver.data(job) == b"first second" and job.size == 12
    assert receiver.files() == [] and receiver.staged() == []
    assert _kinds(receiver.sd) == [Kind.DATA, Kind.JOB]


def test_a_job_that_grows_past_the_limit_moves_into_a_file(receiver: Receiver) -> None:
    first, second = b"a" * (INLINE_MAX - 10), b"b" * 20
    client = Client(receiver.port)
    cf = control_file(6, files=(("f", "dfA"), ("f", "dfB")))
    assert client.control("cfA006client", cf) == b"\0"
    assert client.data("dfA006client", first) == b"\0"
    assert receiver.staged() == []
    assert client.data("dfB006client", second) == b"\0"
    client.finish()
    (job,) = receiver.outcome().jobs
    assert receiver.data(job) == first + second
    assert receiver.files() == ["000001.data"] and receiver.staged() == []
    assert _kinds(receiver.sd) == [Kind.JOB]


def test_a_file_sent_to_the_end_goes_into_a_file(receiver: Receiver) -> None:
    """Size 0 (LPRng's ``lpr -k``): the size is not known before it ends."""
    client = Client(receiver.port)
    assert client.control("cfA008client", control_file(8)) == b"\0"
    client.send(b"\x030 dfA008client\n")
    assert client.ack() == b"\0"
    client.send(b"streamed")
    client.finish()
    (job,) = receiver.outcome().jobs
    assert receiver.data(job) == b"streamed" and receiver.files() == ["000001.data"]


def test_a_queue_with_a_filter_receives_into_files(tmp_path: Path) -> None:
    """A filter is given the data file's name (LPRng's -e): such a queue keeps files."""
    server = Receiver(tmp_path, "if=/bin/cat")
    try:
        (job,) = send(server, 9, b"filtered")
        assert server.data(job) == b"filtered" and server.files() == ["000001.data"]
    finally:
        server.close()
