"""A print server out of room or misbehaving: ``452`` (transient, RFC 959: insufficient
storage, try later) keeps the job queued; ``552`` (permanent: exceeded storage allocation)
fails it with the server's words; a reply line that never ends is cut at a bound and the
job waits for another try. A scripted FTP server on 127.0.0.1 (tests/ftpscript.py) gives
these replies on demand; ``print`` and ``watch --once`` run in this process, and the
installed ``lpfilter filter`` as lpd's output device."""
from __future__ import annotations

import os

import pytest
from filterkit import LPFILTER, Lpd, lp_pipe, lpd  # noqa: F401
from ftpkit import FtpQueue, ftp_queue, hang_guard  # noqa: F401
from ftpscript import LIMIT, Script, ScriptedFtp, scripted_ftp  # noqa: F401

from lpfilter.protocols import ftp

FULL_452 = "452 Insufficient storage space in system: spool 98% full."
FULL_552 = "552 Requested file action aborted: exceeded storage allocation (quota 2 MB)."


def queued_after_one_pass(queue: FtpQueue, server: ScriptedFtp, data: bytes) -> None:
    queue.setup(server.lp(), "connect_interval#60")
    assert queue.print(data, args=("--no-wait",)).rc == 0
    run = queue.run("watch", "--once", "-P", "q")
    assert run.rc == 8, run.err  # JOB_PENDING: still queued, nothing lost
    assert "Traceback" not in run.err


def test_452_to_stor_keeps_the_job_queued_for_a_retry(ftp_queue: FtpQueue,
                                                      scripted_ftp: type[ScriptedFtp]) -> None:
    server = scripted_ftp(Script(before_data=FULL_452))
    queued_after_one_pass(ftp_queue, server, b"later please\n")
    job = ftp_queue.job()
    assert (job.state, job.attempts) == ("queued", 1)
    assert "452 Insufficient storage space" in job.last_error
    assert not job.possible_duplicate  # the server took no byte
    assert server.script.received == []


def test_452_after_the_data_keeps_the_job_queued_as_a_possible_duplicate(
        ftp_queue: FtpQueue, scripted_ftp: type[ScriptedFtp]) -> None:
    data = os.urandom(300_000)
    server = scripted_ftp(Script(after_data=FULL_452))
    queued_after_one_pass(ftp_queue, server, data)
    job = ftp_queue.job()
    assert (job.state, job.attempts) == ("queued", 1)
    assert "452 Insufficient storage space" in job.last_error
    assert job.possible_duplicate and server.script.received == [data]
    assert "(possible duplicate)" in ftp_queue.text("log")


@pytest.mark.parametrize("when", ["before_data", "after_data"])
def test_552_fails_the_job_with_the_servers_words(ftp_queue: FtpQueue,
                                                  scripted_ftp: type[ScriptedFtp],
                                                  when: str) -> None:
    server = scripted_ftp(Script(**{when: FULL_552}))
    ftp_queue.setup(server.lp(), "connect_interval#60")
    run = ftp_queue.print(b"too big for the box\n")
    job = ftp_queue.job()
    assert run.rc == 6, run.err  # JOB_FAILED
    assert (job.state, job.attempts) == ("failed", 1)
    assert "552 Requested file action aborted: exceeded storage allocation" in job.last_error
    assert f"127.0.0.1:{server.port}" in job.last_error and "STOR" in job.last_error
    assert "exceeded storage allocation" in run.err and "Traceback" not in run.err


def test_an_endless_reply_line_is_cut_and_the_job_waits_for_a_retry(
        ftp_queue: FtpQueue, scripted_ftp: type[ScriptedFtp]) -> None:
    """After the data the server sends ``226 xxxx...`` with no line end, up to 64 MiB:
    lpfilter hangs up after a bounded read, long before that."""
    server = scripted_ftp(Script(endless=True))
    queued_after_one_pass(ftp_queue, server, b"endless\n")
    job = ftp_queue.job()
    assert (job.state, job.attempts) == ("queued", 1)
    assert f"longer than {ftp.MAX_LINE} bytes" in job.last_error
    assert "tried again later" in job.last_error
    assert server.script.client_hung_up and server.script.endless_sent < LIMIT


def test_the_reply_reader_holds_no_more_than_a_line_of_an_endless_reply() -> None:
    reader = ftp.ReplyReader()
    fed = 0
    with pytest.raises(ftp.ReplyTooLong):
        for _ in range(1000):
            reader.feed(b"x" * 4096)
            fed += 4096
    assert fed <= ftp.MAX_LINE + 4096


# --- the same replies to lpfilter filter under lpd ------------------------------------------
@pytest.mark.parametrize(("script", "code", "words"), [
    (Script(before_data=FULL_452), 1, "452 Insufficient storage space"),
    (Script(after_data=FULL_452), 1, "452 Insufficient storage space"),
    (Script(before_data=FULL_552), 2, "552 Requested file action aborted"),
    (Script(after_data=FULL_552), 2, "552 Requested file action aborted"),
    (Script(endless=True), 1, f"longer than {ftp.MAX_LINE} bytes"),
], ids=["452-before", "452-after", "552-before", "552-after", "endless"])
def test_lpd_hears_retry_later_or_abort_with_the_servers_words(
        lpd: Lpd, scripted_ftp: type[ScriptedFtp], script: Script, code: int,
        words: str) -> None:
    """The installed ``lpfilter filter ftp://...`` as lpd's output device: LPRng's 1 (retry
    later) for 452 and the overlong line, 2 (abort the job) for 552."""
    server = scripted_ftp(script)
    destination = f"ftp://127.0.0.1:{server.port}/PORT1"
    entry = lpd.entry(f"|{LPFILTER} filter {destination.replace(':', chr(92) + ':')}")
    run = lp_pipe(lpd, lpd.argv(destination), lpd.env(entry), b"job\n", timeout=60)
    assert run.rc == code, run.text
    assert run.has(words) and "Traceback" not in run.text, run.text
    assert all(line.isprintable() for line in run.lines)
