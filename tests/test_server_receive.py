"""Receiving jobs over LPD (issue 14): ``receive_job`` driven by a real loopback server
thread (receivekit) and raw clients sending the subcommands byte by byte. Each test checks
the acknowledgements, the jobs in the receiving store byte for byte, and that no staged
file is left behind."""
from __future__ import annotations

import contextlib
import hashlib
import os
import socket
from pathlib import Path

import pytest
from receivekit import (Client, Receiver, control_file, note_records,  # noqa: F401 - a fixture
                        receiver, restarted)
from spoolkit import wait_until
from test_spool_full import small_fs  # noqa: F401 - a fixture

from lpfilter.job import JobState
from lpfilter.protocols.lpd import Subcommand
from lpfilter.server.retries import DIGEST_AT_ONCE, DUPLICATE_WINDOW
from lpfilter.server.wire import ClientError
from lpfilter.spool.jobdata import INLINE_MAX
from lpfilter.spool.notes import NEW, SEEN, UNKNOWN, Noted, note_record

DATA = bytes(range(256)) * 7 + b"\r\n\0\x1b%-12345X"


def the_key(receiver: Receiver) -> str:
    """The key of the one job (or retries of it) noted in the receiving spool."""
    (key,) = {key for key, _, _ in note_records(receiver.store)}
    return key


def noted(receiver: Receiver) -> list[Noted]:
    """The notes that count under that key, as a restart reads the journal."""
    return restarted(receiver.store).notes.lookup(the_key(receiver))


def rewrite_note(receiver: Receiver, **changes: object) -> None:
    """Change every note (as a crash or the passing of time would have left it), by a
    later record of each, as a digest noted after the acknowledgement is written."""
    key = the_key(receiver)
    receiver.store.add_notes([note_record(key, Noted(**{  # type: ignore[arg-type]
        "job_id": n.job_id, "when": n.when, "digest": n.digest, **changes}), SEEN)
        for n in noted(receiver)])


def send(receiver: Receiver, number: int, data: bytes) -> list:
    client = Client(receiver.port)
    assert client.control(f"cfA{number:03d}client", control_file(number)) == b"\0"
    assert client.data(f"dfA{number:03d}client", data) == b"\0"
    client.finish()
    return receiver.outcome().jobs


def test_control_first_as_lprng_sends_it(receiver: Receiver) -> None:
    client = Client(receiver.port)
    cf = control_file(7, user="alice", J="report", T="Q3", C="Z", L="alice")
    assert client.control("cfA007client", cf) == b"\0"
    assert client.data("dfA007client", DATA) == b"\0"
    assert client.finish() == b""
    outcome = receiver.outcome()
    assert outcome.error is None
    (job,) = outcome.jobs
    assert receiver.jobs() == [job]
    assert receiver.data(job) == DATA
    assert (job.user, job.name, job.title, job.job_class, job.host) == (
        "alice", "report", "Q3", "Z", "client")
    assert job.state is JobState.QUEUED and job.source == "lpd" and not job.no_banner
    assert job.peer == "127.0.0.1" and job.size == len(DATA) and job.print_format == "f"
    assert job.origin.startswith("cfA007client:")
    assert receiver.staged() == []


def test_data_first_as_some_clients_send_it(receiver: Receiver) -> None:
    client = Client(receiver.port)
    assert client.data("dfA008client", DATA) == b"\0"
    assert client.control("cfA008client", control_file(8, files=(("l", "dfA"),))) == b"\0"
    client.finish()
    (job,) = receiver.outcome().jobs
    assert receiver.data(job) == DATA and job.print_format == "l" and job.no_banner
    assert receiver.staged() == []


def test_the_final_ack_comes_only_after_the_ticket_is_on_disk(receiver: Receiver) -> None:
    client = Client(receiver.port)
    assert client.control("cfA009client", control_file(9)) == b"\0"
    client.send(b"\x03%d dfA009client\n" % len(DATA))
    assert client.ack() == b"\0"
    client.send(DATA + b"\0")
    assert client.ack() == b"\0"
    (job,) = receiver.jobs()  # before the client closed: the job was committed, then acked
    assert receiver.data(job) == DATA
    client.finish()
    assert receiver.outcome().error is None


def test_two_jobs_on_one_connection(receiver: Receiver) -> None:
    """Each is reported as soon as it is queued (the daemon wakes its worker then)."""
    client = Client(receiver.port)
    for count, (number, body) in enumerate(((11, b"first"), (12, b"second")), 1):
        assert client.control(f"cfA{number}0client", control_file(
            number * 10, user=f"u{number}")) == b"\0"
        assert client.data(f"dfA{number}0client", body) == b"\0"
        assert len(receiver.committed) == count
    client.finish()
    first, second = receiver.outcome().jobs
    assert receiver.committed == [first, second]
    assert [receiver.data(first), receiver.data(second)] == [b"first", b"second"]
    assert [first.user, second.user] == ["u11", "u12"]
    assert receiver.staged() == []


def test_abort_drops_what_the_job_sent(receiver: Receiver) -> None:
    client = Client(receiver.port)
    assert client.control("cfA013client", control_file(13)) == b"\0"
    client.send(b"\x01\n")
    assert client.ack() == b"\0"
    assert receiver.staged() == []
    assert client.control("cfA014client", control_file(14)) == b"\0"
    assert client.data("dfA014client", b"kept") == b"\0"
    client.finish()
    (job,) = receiver.outcome().jobs
    assert receiver.data(job) == b"kept" and receiver.jobs() == [job]


def test_size_0_streams_to_the_end_of_the_connection(receiver: Receiver) -> None:
    """LPRng's ``lpr -k``: count 0, the bytes, no NUL, a half-close; the final \\0 after."""
    client = Client(receiver.port)
    assert client.control("cfA015client", control_file(15)) == b"\0"
    client.send(b"\x030 dfA015client\n")
    assert client.ack() == b"\0"
    data = os.urandom(3 << 20)
    client.send(data)
    assert client.finish() == b"\0"
    (job,) = receiver.outcome().jobs
    assert receiver.data(job) == data and receiver.staged() == []


def test_a_drop_in_the_middle_of_the_data_leaves_nothing(receiver: Receiver) -> None:
    client = Client(receiver.port)
    assert client.control("cfA016client", control_file(16)) == b"\0"
    client.send(b"\x031000000 dfA016client\n")
    assert client.ack() == b"\0"
    client.send(os.urandom(5000))
    client.close()
    outcome = receiver.outcome()
    assert isinstance(outcome.error, ClientError) and "5000 of 1000000" in str(outcome.error)
    assert receiver.jobs() == [] and receiver.staged() == []
    assert [n for n in receiver.files() if n.endswith((".data", ".job"))] == []


def test_mx_refuses_before_any_data_is_read(tmp_path: Path) -> None:
    server = Receiver(tmp_path, "mx#2")
    try:
        client = Client(server.port)
        assert client.control("cfA017client", control_file(17)) == b"\0"
        client.send(b"\x033000 dfA017client\n")
        answer = client.ack()
        assert answer.startswith(b"\x02") and b"2 KiB (mx)" in answer
        client.close()
        outcome = server.outcome()
        assert isinstance(outcome.error, ClientError) and "mx" in str(outcome.error)
        assert server.jobs() == [] and server.staged() == []
    finally:
        server.close()


@pytest.mark.parametrize("line,why", [
    (b"\x03-5 dfA001client\n", b"bad file size"),
    (b"\x03abc dfA001client\n", b"bad file size"),
    (b"\x039999999999999 dfA001client\n", b"bad file size"),
    (b"\x0310 dfA001../../etc/passwd\n", b"bad job file name"),
    (b"\x0310 ../dfA001client\n", b"bad job file name"),
    (b"\x0310 dfA001cl\0ient\n", b"NUL"),
    (b"\x0310 dfA001" + b"h" * 200 + b"\n", b"bad job file name"),
    (b"\x0310 dfA001" + b"h" * 600 + b"\n", b"longer than 512"),  # the rest never read
    (b"\x03" + b"1" * (1 << 20) + b"\n", b"longer than 512"),
    (b"\x020 cfA001client\n", b"size 0"),
    (b"\x07 what\n", b"not an LPD subcommand"),
])
def test_a_malformed_subcommand_is_refused(receiver: Receiver, line: bytes, why: bytes) -> None:
    client = Client(receiver.port)
    with contextlib.suppress(OSError):  # refused after 512 bytes: the rest may bounce
        client.send(line)
    answer = client.ack()
    assert answer.startswith(b"\x01") and why in answer
    client.close()
    assert isinstance(receiver.outcome().error, ClientError)
    assert receiver.jobs() == [] and receiver.staged() == []


def test_a_control_file_too_big_is_refused_unread(receiver: Receiver) -> None:
    client = Client(receiver.port)
    client.send(b"\x02%d cfA001client\n" % (10 << 20))
    answer = client.ack()
    assert answer.startswith(b"\x03") and b"65536" in answer
    client.close()
    assert isinstance(receiver.outcome().error, ClientError)
    assert receiver.jobs() == [] and receiver.staged() == []


def test_several_data_files_become_one_job_in_print_line_order(receiver: Receiver) -> None:
    client = Client(receiver.port)
    cf = control_file(20, files=(("f", "dfA"), ("f", "dfB"), ("f", "dfC")))
    assert client.control("cfA020client", cf) == b"\0"
    for name, body in (("dfB020client", b"B" * 10), ("dfC020client", b"C" * 5),
                       ("dfA020client", b"A" * 3)):
        assert client.data(name, body) == b"\0"
    client.finish()
    (job,) = receiver.outcome().jobs
    assert receiver.data(job) == b"AAA" + b"B" * 10 + b"CCCCC" and job.size == 18
    assert receiver.staged() == []


def test_a_retry_after_a_lost_final_ack_is_not_queued_twice(receiver: Receiver) -> None:
    cf = control_file(21)
    for _ in range(2):
        client = Client(receiver.port)
        assert client.control("cfA021client", cf) == b"\0"
        assert client.data("dfA021client", DATA) == b"\0"
        client.finish()
    assert len(receiver.outcome().jobs) == 1
    assert receiver.outcome().jobs == []
    (job,) = receiver.jobs()
    assert receiver.data(job) == DATA and receiver.staged() == []
    # another job number from the same client is another job
    client = Client(receiver.port)
    assert client.control("cfA022client", control_file(22)) == b"\0"
    assert client.data("dfA022client", DATA) == b"\0"
    client.finish()
    assert len(receiver.outcome().jobs) == 1 and len(receiver.jobs()) == 2


def test_copies_are_the_repeated_print_lines(receiver: Receiver) -> None:
    client = Client(receiver.port)
    cf = control_file(23, files=(("f", "dfA"),) * 3)
    assert client.control("cfA023client", cf) == b"\0"
    assert client.data("dfA023client", b"x") == b"\0"
    client.finish()
    (job,) = receiver.outcome().jobs
    assert job.copies == 3 and receiver.data(job) == b"x"


def test_a_data_file_the_control_file_does_not_name_is_refused(receiver: Receiver) -> None:
    client = Client(receiver.port)
    assert client.control("cfA024client", control_file(24)) == b"\0"
    answer = client.data("dfB024client", b"nope")
    assert answer.startswith(b"\x03") and b"dfB024client" in answer
    client.close()
    assert isinstance(receiver.outcome().error, ClientError)
    assert receiver.jobs() == [] and receiver.staged() == []


def test_a_local_client_is_the_kernels_user(tmp_path: Path) -> None:
    server = Receiver(tmp_path, local_user="carol")
    try:
        client = Client(server.port)
        assert client.control("cfA025client", control_file(25, user="root")) == b"\0"
        assert client.data("dfA025client", b"mine") == b"\0"
        client.finish()
        (job,) = server.outcome().jobs
        assert job.user == "carol" and job.peer == ""
    finally:
        server.close()


def test_a_closed_client_before_its_data_leaves_nothing(receiver: Receiver) -> None:
    client = Client(receiver.port)
    assert client.control("cfA026client", control_file(26)) == b"\0"
    client.sock.shutdown(socket.SHUT_WR)
    client.close()
    outcome = receiver.outcome()
    assert outcome.error is None and outcome.jobs == []
    assert receiver.jobs() == [] and receiver.staged() == []


def test_the_file_subcommand_builder_matches_the_client(receiver: Receiver) -> None:
    """The raw client's bytes are the LPD client's (lpd.file_line) for the same file."""
    from lpfilter.protocols.lpd import file_line
    assert file_line(Subcommand.DATA_FILE, 5, "dfA001client") == b"\x035 dfA001client\n"
    client = Client(receiver.port)
    client.close()
    assert receiver.outcome().jobs == []


@pytest.mark.parametrize("name,cf,code,why", [
    ("cfA040client", b"Hclient\nfdfA040client\n", b"\x03", b"needs a host (H) and a user (P)"),
    ("cfA041client", b"Hclient\nPalice\nJno files\n", b"\x03", b"prints no data file"),
    ("cfA042client", b"Hclient\nPalice\nf../../etc/passwd\n", b"\x03", b"bad job file name"),
    ("cfA043client", b"Hclient\nPal\rice\nfdfA043client\n", b"\x03", b"NUL or CR"),
    ("cfA043client", b"Hclient\nPalice\nfdfA043cl\0ient\n", b"\x03", b"NUL or CR"),
    ("cfA043client", b"Hclient\nPalice\nfdfA043" + b"h" * 200 + b"\n", b"\x03",
     b"bad job file name"),
    ("cfA043client", b"Hclient\nPalice\nfdfA043..\nUdfA043..\n", b"\x03",
     b"bad job file name"),
    ("cfA043client", b"Hclient\nPalice\nfdfA043client\nU/etc/passwd\n", b"\x03",
     b"bad job file name"),
    ("cfA044client", b"Hclient\nPalice\n" + b"J" * 600 + b"\nfdfA044client\n", b"\x03",
     b"longer than 512"),
])
def test_a_bad_control_file_is_refused(receiver: Receiver, name: str, cf: bytes, code: bytes,
                                       why: bytes) -> None:
    client = Client(receiver.port)
    answer = client.control(name, cf)
    assert answer.startswith(code) and why in answer
    client.close()
    assert isinstance(receiver.outcome().error, ClientError)
    assert receiver.jobs() == [] and receiver.staged() == []


def test_a_size_larger_than_the_disk_is_refused_unread(receiver: Receiver) -> None:
    client = Client(receiver.port)
    assert client.control("cfA045client", control_file(45)) == b"\0"
    client.send(b"\x03999999999999 dfA045client\n")
    answer = client.ack()
    assert answer.startswith(b"\x02") and b"free in the spool" in answer
    client.close()
    assert isinstance(receiver.outcome().error, ClientError)
    assert receiver.staged() == []


def test_a_file_not_ended_by_nul_is_refused(receiver: Receiver) -> None:
    client = Client(receiver.port)
    assert client.control("cfA046client", control_file(46)) == b"\0"
    client.send(b"\x034 dfA046client\n")
    assert client.ack() == b"\0"
    client.send(b"dataX")
    answer = client.ack()
    assert answer.startswith(b"\x03") and b"NUL" in answer
    client.close()
    assert isinstance(receiver.outcome().error, ClientError)
    assert receiver.jobs() == [] and receiver.staged() == []


def test_cups_stream_mode_closes_without_the_last_nul(receiver: Receiver) -> None:
    """CUPS ``mode=stream`` with a file: the real size, no NUL, no wait, close."""
    client = Client(receiver.port)
    assert client.control("cfA047client", control_file(47)) == b"\0"
    client.send(b"\x035 dfA047client\nhello")
    assert client.ack() == b"\0"
    client.finish()
    (job,) = receiver.outcome().jobs
    assert receiver.data(job) == b"hello"


def test_a_second_control_file_before_the_data_is_refused(receiver: Receiver) -> None:
    client = Client(receiver.port)
    assert client.control("cfA048client", control_file(48)) == b"\0"
    answer = client.control("cfA049client", control_file(49))
    assert answer.startswith(b"\x03") and b"dfA048client never came" in answer
    client.close()
    assert isinstance(receiver.outcome().error, ClientError)
    assert receiver.jobs() == [] and receiver.staged() == []


def test_more_data_files_than_lprng_allows_are_refused(receiver: Receiver) -> None:
    client = Client(receiver.port)
    answers = [client.data(f"df{letter}050client", b"x") for letter in
               "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"]
    assert answers == [b"\0"] * 52
    answer = client.data("dfA051client", b"x")
    assert answer.startswith(b"\x03") and b"more than 52" in answer
    client.close()
    assert isinstance(receiver.outcome().error, ClientError)
    assert receiver.jobs() == [] and receiver.staged() == []


def test_an_empty_job_is_refused(receiver: Receiver) -> None:
    client = Client(receiver.port)
    assert client.control("cfA052client", control_file(52)) == b"\0"
    client.send(b"\x030 dfA052client\n")
    assert client.ack() == b"\0"
    answer = client.finish()
    assert answer.startswith(b"\x03") and b"empty" in answer
    assert isinstance(receiver.outcome().error, ClientError)
    assert receiver.jobs() == [] and receiver.staged() == []


def test_size_0_is_bounded_by_mx(tmp_path: Path) -> None:
    server = Receiver(tmp_path, "mx#4")
    try:
        client = Client(server.port)
        assert client.control("cfA053client", control_file(53)) == b"\0"
        client.send(b"\x030 dfA053client\n")
        assert client.ack() == b"\0"
        try:
            client.send(os.urandom(8192))
            client.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may have refused and closed already
        answer = client.ack()
        assert answer.startswith(b"\x02") and b"4 KiB (mx)" in answer
        client.close()
        assert isinstance(server.outcome().error, ClientError)
        assert server.jobs() == [] and server.staged() == []
    finally:
        server.close()


def test_ah_holds_a_received_job(tmp_path: Path) -> None:
    server = Receiver(tmp_path, "ah")
    try:
        client = Client(server.port)
        assert client.control("cfA054client", control_file(54)) == b"\0"
        assert client.data("dfA054client", b"held") == b"\0"
        client.finish()
        (job,) = server.outcome().jobs
        assert job.state is JobState.HELD
    finally:
        server.close()


def test_the_retry_is_logged(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    cf = control_file(55)
    for _ in range(2):
        client = Client(receiver.port)
        assert client.control("cfA055client", cf) == b"\0"
        assert client.data("dfA055client", b"once") == b"\0"
        client.finish()
        receiver.outcome()
    (job,) = receiver.jobs()
    assert f"already queued as job {job.id}" in caplog.text and "not queued twice" in caplog.text


def test_a_different_peer_or_control_file_is_not_a_retry(receiver: Receiver) -> None:
    """The same job number with other control file bytes (another job of the client after
    1000 jobs) is a new job."""
    for user in ("alice", "bob"):
        client = Client(receiver.port)
        assert client.control("cfA056client", control_file(56, user=user)) == b"\0"
        assert client.data("dfA056client", b"twice") == b"\0"
        client.finish()
        assert len(receiver.outcome().jobs) == 1
    assert sorted(j.user for j in receiver.jobs()) == ["alice", "bob"]


def test_recovery_leaves_a_file_being_received(receiver: Receiver) -> None:
    """The worker's recovery runs while a job arrives: it must not take the staged file
    (a job too big to be held in memory: server/staging.py)."""
    half = DATA * (INLINE_MAX // len(DATA) + 1)
    client = Client(receiver.port)
    assert client.control("cfA057client", control_file(57)) == b"\0"
    client.send(b"\x03%d dfA057client\n" % (2 * len(half)))
    assert client.ack() == b"\0"
    client.send(half)
    staged = Path(receiver.store.tmp_dir)
    wait_until(lambda: [p for p in staged.iterdir() if p.stat().st_size == len(half)],
               what="the first half of the data")
    assert receiver.store.recover_orphans("nobody") == []
    assert len(receiver.staged()) == 1
    client.send(half + b"\0")
    assert client.ack() == b"\0"
    client.finish()
    (job,) = receiver.outcome().jobs
    assert receiver.data(job) == half + half and receiver.staged() == []


def test_an_old_repeat_is_queued_as_a_possible_duplicate(receiver: Receiver) -> None:
    """Past the retry window the same control file may be a new job (CUPS writes no date):
    it is queued, flagged, never dropped."""
    (first,) = send(receiver, 62, b"again")
    rewrite_note(receiver, when=first.submitted - DUPLICATE_WINDOW - 60)
    (second,) = send(receiver, 62, b"again")
    assert second.possible_duplicate and not first.possible_duplicate
    assert len(receiver.jobs()) == 2


def test_the_data_digest_is_noted_after_the_final_ack(receiver: Receiver) -> None:
    """Not hashed as it streams in (that halved the rate of a big job): noted afterwards,
    from the job's file, as a sha256 of the data as queued."""
    (job,) = send(receiver, 67, DATA)
    (note,) = noted(receiver)
    assert note.job_id == job.id and note.when == pytest.approx(job.submitted, abs=0.001)
    assert note.digest == hashlib.sha256(DATA).hexdigest()[:40]


@pytest.mark.parametrize("size", [11, DIGEST_AT_ONCE + 1])
def test_the_note_is_in_the_jobs_own_write_before_its_record(receiver: Receiver,
                                                              size: int) -> None:
    """A crash right after the commit must not leave a job without its note: its retry
    would print twice, unflagged. The note is a NOTE record just before the job's JOB
    record, in the same write and flush: when the job is queued, a crash would read both.
    A small job's note has its digest already (hashed before the note is written, so the
    note is written once); a big one's comes after the final acknowledgement (not hashed
    while its data streams in)."""
    seen: list[list[tuple[str, str]]] = []
    data = os.urandom(size)

    class Recorder(list):  # type: ignore[type-arg]
        def append(self, job: object) -> None:
            index = restarted(receiver.store)  # the file now: what a crash would leave
            seen.append([(n.job_id, n.digest) for key in index.notes.keys
                         for n in index.notes.lookup(key)])
            super().append(job)

    receiver.committed = Recorder()
    (job,) = send(receiver, 68, data)
    digest = hashlib.sha256(data).hexdigest()[:40]
    assert seen == [[(job.id, digest if size <= DIGEST_AT_ONCE else UNKNOWN)]]
    forms = [(n.job_id, n.digest, form) for _, n, form in note_records(receiver.store)]
    expected = [(job.id, digest, NEW)] if size <= DIGEST_AT_ONCE else [
        (job.id, UNKNOWN, NEW), (job.id, digest, SEEN)]
    assert forms == expected
    (note,) = noted(receiver)
    assert note.digest == digest  # after the ack: either


def test_a_retry_before_its_digest_was_noted_is_recognised_from_the_data(
        receiver: Receiver) -> None:
    """The process died between the final ack and noting the digest: the earlier job's
    data is still in the spool, and is hashed then."""
    (first,) = send(receiver, 69, DATA)
    rewrite_note(receiver, digest=UNKNOWN)
    assert send(receiver, 69, DATA) == [] and [j.id for j in receiver.jobs()] == [first.id]
    assert send(receiver, 69, DATA[::-1]) != []  # other data: another job, not flagged
    assert not any(j.possible_duplicate for j in receiver.jobs())


def test_a_repeat_that_can_no_longer_be_compared_is_flagged(receiver: Receiver) -> None:
    """No digest noted and the earlier job's data gone (printed): the repeat is queued as
    a possible duplicate, never dropped, since its data may be new."""
    (first,) = send(receiver, 70, b"gone")
    receiver.store.remove(first)
    rewrite_note(receiver, digest=UNKNOWN)
    (second,) = send(receiver, 70, b"gone")
    assert second.possible_duplicate
    assert [j.id for j in receiver.jobs()] == [second.id]


def test_a_repeat_of_another_size_is_another_job(receiver: Receiver) -> None:
    cf = control_file(63)
    for body in (b"one", b"three"):
        client = Client(receiver.port)
        assert client.control("cfA063client", cf) == b"\0"
        assert client.data("dfA063client", body) == b"\0"
        client.finish()
        assert len(receiver.outcome().jobs) == 1
    assert len(receiver.jobs()) == 2


def test_a_retry_after_the_first_was_printed_and_dropped(receiver: Receiver) -> None:
    """done_jobs keeps a finished ticket a minute: a retry after that is still known."""
    cf = control_file(65)
    client = Client(receiver.port)
    assert client.control("cfA065client", cf) == b"\0"
    assert client.data("dfA065client", b"printed") == b"\0"
    client.finish()
    (first,) = receiver.outcome().jobs
    receiver.store.remove(first)
    client = Client(receiver.port)
    assert client.control("cfA065client", cf) == b"\0"
    assert client.data("dfA065client", b"printed") == b"\0"
    client.finish()
    assert receiver.outcome().jobs == [] and receiver.jobs() == []
    assert receiver.staged() == []


def test_a_full_spool_answers_try_later_and_keeps_nothing(small_fs: Path) -> None:
    """A 512 KiB file system: a file announced larger than the free space is refused
    unread; one streamed (size 0) until the disk is full gets 'try later'."""
    server = Receiver(small_fs)
    try:
        client = Client(server.port)
        assert client.control("cfA070client", control_file(70)) == b"\0"
        client.send(b"\x03%d dfA070client\n" % (1 << 20))
        answer = client.ack()
        assert answer.startswith(b"\x02") and b"free in the spool" in answer
        client.close()
        assert isinstance(server.outcome().error, ClientError)
        client = Client(server.port)
        assert client.control("cfA071client", control_file(71)) == b"\0"
        client.send(b"\x030 dfA071client\n")
        assert client.ack() == b"\0"
        with contextlib.suppress(OSError):  # the server may refuse and close meanwhile
            client.send(os.urandom(1 << 20))
            client.sock.shutdown(socket.SHUT_WR)
        answer = client.ack()
        assert answer.startswith(b"\x02") and b"no room in the spool" in answer
        client.close()
        assert isinstance(server.outcome().error, ClientError)
        assert server.jobs() == [] and server.staged() == []
    finally:
        server.close()


def test_the_spools_folders_are_made_again_when_removed(receiver: Receiver) -> None:
    """An operator removed .lpfilter/tmp under a running server: the next job makes it."""
    os.rmdir(receiver.store.tmp_dir)
    client = Client(receiver.port)
    assert client.control("cfA072client", control_file(72)) == b"\0"
    assert client.data("dfA072client", b"still") == b"\0"
    client.finish()
    (job,) = receiver.outcome().jobs
    assert receiver.data(job) == b"still"


def test_a_spool_that_cannot_take_jobs_refuses_the_first_subcommand(
        receiver: Receiver) -> None:
    os.chmod(receiver.sd, 0o777)  # writable by all without the sticky bit: refused
    try:
        client = Client(receiver.port)
        answer = client.control("cfA073client", control_file(73))
        assert answer.startswith(b"\x01") and b"cannot take jobs" in answer
        client.close()
        assert isinstance(receiver.outcome().error, ClientError)
    finally:
        os.chmod(receiver.sd, 0o700)
    assert receiver.jobs() == [] and receiver.staged() == []


def test_copies_that_differ_between_files_are_written_out(receiver: Receiver) -> None:
    """Print lines dfA dfA dfB: one job holding A, A, B (its copies then 1)."""
    client = Client(receiver.port)
    cf = control_file(74, files=(("f", "dfA"), ("f", "dfA"), ("f", "dfB")))
    assert client.control("cfA074client", cf) == b"\0"
    assert client.data("dfA074client", b"aa") == b"\0"
    assert client.data("dfB074client", b"b") == b"\0"
    client.finish()
    (job,) = receiver.outcome().jobs
    assert receiver.data(job) == b"aaaab" and job.copies == 1 and job.size == 5


def test_copies_written_out_stay_within_mx(tmp_path: Path) -> None:
    server = Receiver(tmp_path, "mx#1")
    try:
        client = Client(server.port)
        cf = control_file(75, files=(("f", "dfA"),) * 3 + (("f", "dfB"),))
        assert client.control("cfA075client", cf) == b"\0"
        assert client.data("dfA075client", b"a" * 400) == b"\0"
        answer = client.data("dfB075client", b"b")
        assert answer.startswith(b"\x03") and b"1 KiB (mx)" in answer
        client.close()
        assert isinstance(server.outcome().error, ClientError)
        assert server.jobs() == [] and server.staged() == []
    finally:
        server.close()


def test_a_control_file_with_bytes_that_are_not_utf8_is_queued(receiver: Receiver) -> None:
    """A Windows LPR port sends its code page: the job is acknowledged and queued (writing
    its ticket failed, and the client never got its answer)."""
    client = Client(receiver.port)
    cf = b"Hclient\nPalice\nJbad\xff\nldfA071client\nNfile\xfe\n"
    assert client.control("cfA071client", cf) == b"\0"
    assert client.data("dfA071client", b"hello") == b"\0"
    client.finish()
    (job,) = receiver.outcome().jobs
    assert job.name == "bad\udcff" and receiver.data(job) == b"hello"
    assert [j.name for j in receiver.jobs()] == ["bad\udcff"]
