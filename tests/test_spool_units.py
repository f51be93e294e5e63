"""Spool building blocks on real files and real child processes: safefiles, the store, the
retry policy, and the device and pipe backends (process-level chaos is in
test_spool_processes.py)."""
from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lpfilter import printcap
from lpfilter.backends import SendRequest, SendResult, backend_for
from lpfilter.backends.settings import settings_for
from lpfilter.errors import (HoldJob, Interruption, JobInterrupted, JobRefused, LpfilterError,
                             RemoveJob, TransientError)
from lpfilter.job import Job, JobState
from lpfilter.printcap import Entry
from lpfilter.programs import command_argv
from lpfilter.safefiles import CHUNK, TooLarge, atomic_write, copy_fd, remove_unlocked
from lpfilter.spool import policy
from lpfilter.spool import recovery
from lpfilter.spool.journal import Kind
from lpfilter.spool.store import SpoolStore
from spoolkit import forge_record


def make_entry(tmp_path: Path, options: str = "", lp: str = "/dev/null") -> Entry:
    """Queue ``q`` of a new one-line printcap file, with its spool directory ``sd``. An
    ``lp=|`` program in root's 0700 ``tmp_path`` runs as ``user=root`` (else daemon)."""
    if lp.startswith("|") and "user=" not in options:
        options = ":".join(filter(None, [options, "user=root"]))
    sd = tmp_path / "sd"
    sd.mkdir(exist_ok=True)
    path = tmp_path / f"printcap{len(list(tmp_path.glob('printcap*')))}"
    path.write_text(f"q:sd={sd}:lp={lp}{':' + options if options else ''}\n")
    return printcap.load([str(path)]).lookup("q")


def script(tmp_path: Path, body: str, name: str = "prog.sh") -> str:
    """An executable /bin/sh script (a pipe program)."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


class Reporter:
    """A send's listener: status lines to ``status``; ``interrupted`` says when to stop."""

    def __init__(self, interrupted: Callable[[], Interruption | None],
                 status: Callable[[str], None]) -> None:
        self.interrupted = interrupted
        self.status = status

    def first_byte(self) -> None:
        """Nothing to make durable here."""

    def progress(self, taken: int) -> None:
        """Nobody watches."""


def send(entry: Entry, tmp_path: Path, data: bytes, *, copies: int = 1,
         interrupted: Callable[[], Interruption | None] = lambda: None,
         status: Callable[[str], None] = lambda line: None) -> SendResult:
    """One attempt at one job through the queue's backend."""
    path = tmp_path / "job.data"
    path.write_bytes(data)
    job = Job("000001", "q", "root", "job", len(data), time.time(), copies=copies)
    destination = entry.destination()
    request = SendRequest(job, str(path), destination, settings_for(destination, entry),
                          Reporter(interrupted, status))
    return backend_for(destination).send(request)


def send_bounded(entry: Entry, tmp_path: Path, data: bytes, *, cancel_after: float,
                 limit: float = 15.0) -> tuple[BaseException | SendResult, float]:
    """Send in a thread; interrupted() says "cancelled" after ``cancel_after`` s, so a hung
    send always ends. Returns (result or exception, seconds it took)."""
    start = time.monotonic()
    outcome: list[BaseException | SendResult] = []

    def interrupted() -> Interruption | None:
        return Interruption.CANCELLED if time.monotonic() - start > cancel_after else None

    def run() -> None:
        try:
            outcome.append(send(entry, tmp_path, data, interrupted=interrupted))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), "the send did not end even after being cancelled"
    return outcome[0], time.monotonic() - start


# --- safefiles ------------------------------------------------------------------------
def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    """New content replaces the old in one rename; a failed write keeps the old file."""
    target = tmp_path / "ticket"
    atomic_write(str(target), b"old\n")
    inode = target.stat().st_ino
    atomic_write(str(target), b"new\n", 0o644)
    assert target.read_bytes() == b"new\n"
    assert target.stat().st_ino != inode and stat.S_IMODE(target.stat().st_mode) == 0o644
    with pytest.raises(TypeError):
        atomic_write(str(target), "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"new\n" and os.listdir(tmp_path) == ["ticket"]


@pytest.mark.parametrize("size", [1, CHUNK + 12345, 3 * CHUNK])
def test_copy_fd_from_a_file(tmp_path: Path, size: int) -> None:
    """A regular file is copied whole, past the chunk size."""
    data = os.urandom(size)
    (tmp_path / "src").write_bytes(data)
    with open(tmp_path / "src", "rb") as src, open(tmp_path / "dst", "wb") as dst:
        assert copy_fd(src.fileno(), dst.fileno()) == size
    assert (tmp_path / "dst").read_bytes() == data


@pytest.mark.parametrize(("size", "limit", "too_large"), [
    (300_000, None, False), (300_000, 300_000, False), (300_001, 300_000, True),
    (3 * CHUNK, 1024, True)])
@pytest.mark.parametrize("source", ["pipe", "file"])
def test_copy_fd_limit(tmp_path: Path, source: str, size: int, limit: int | None,
                       too_large: bool) -> None:
    """From a pipe (fed by a thread) or a file: exactly the bytes, or TooLarge past limit."""
    data = os.urandom(size)
    if source == "file":
        (tmp_path / "src").write_bytes(data)
        read_fd, writer = os.open(tmp_path / "src", os.O_RDONLY), None
    else:
        read_fd, write_fd = os.pipe()

        def feed() -> None:
            try:
                with open(write_fd, "wb") as out:
                    out.write(data)
            except BrokenPipeError:
                pass

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
    try:
        with open(tmp_path / "dst", "wb") as dst:
            if too_large:
                with pytest.raises(TooLarge):
                    copy_fd(read_fd, dst.fileno(), limit)
            else:
                assert copy_fd(read_fd, dst.fileno(), limit) == size
    finally:
        os.close(read_fd)
        if writer is not None:
            writer.join(10)
            assert not writer.is_alive()
    if not too_large:
        assert (tmp_path / "dst").read_bytes() == data


# --- the store ------------------------------------------------------------------------
def new_store(tmp_path: Path) -> SpoolStore:
    (tmp_path / "sd").mkdir(exist_ok=True)
    store = SpoolStore(str(tmp_path / "sd"), "q")
    store.ensure()
    return store


def add_job(store: SpoolStore, job_id: str) -> Job:
    job = Job(job_id, "q", "root", f"name-{job_id}", 5, time.time())
    with open(store.data_path(job_id), "wb") as data:
        data.write(b"data\n")
    store.write(job)
    return job


def test_job_ids_increase_and_survive_a_new_store(tmp_path: Path) -> None:
    """Ids count up across store objects (reserved in the journal, whichever store gave
    them), and widen past 999999."""
    store = new_store(tmp_path)
    assert [store.next_id() for _ in range(3)] == ["000001", "000002", "000003"]
    again = SpoolStore(store.sd, "q")
    assert again.next_id() == "000004"
    store.write(Job("999999", "q", "root", "last", 5, 1.0))
    assert again.next_id() == "1000000" and store.next_id() == "1000001"
    store.close()
    again.close()


def test_ticket_roundtrip_and_arrival_order(tmp_path: Path) -> None:
    """Tickets read back equal; jobs() lists them by number, not by string."""
    store = new_store(tmp_path)
    for job_id in ("1000000", "000010", "999999", "000002"):
        add_job(store, job_id)
    jobs = store.jobs()
    assert [j.id for j in jobs] == ["000002", "000010", "999999", "1000000"]
    assert store.read("000010") == jobs[1]
    assert sorted(os.listdir(store.jobs_dir)) == sorted(f"{j.id}.data" for j in jobs)


def _forged(**fields: object) -> bytes:
    text = json.loads(Job("000002", "q", "root", "forged", 5, 1.0).to_json())
    return json.dumps({**text, **fields}).encode()


@pytest.mark.parametrize("content", [b"{not json", b"null", b"[1, 2]", b'{"id": "000002"}',
                                     b'{"state": "bogus"}', b"\xff\xfe", b"",
                                     _forged(id="../../victim"), _forged(id="2x"),
                                     _forged(id=2), _forged(queue="other"),
                                     _forged(state="bogus")])
def test_unreadable_ticket_does_not_crash_jobs(tmp_path: Path, content: bytes,
                                               caplog: pytest.LogCaptureFixture) -> None:
    """A damaged or forged job record (the spool's owner may write the journal) is skipped
    with a warning; others are listed: not JSON, not a job, an id that is not digits (it
    names a data file), another queue's job. (A directory where a ticket should be was
    refused: the journal's equivalent is test_a_directory_at_the_journals_name.)"""
    store = new_store(tmp_path)
    add_job(store, "000001")
    forge_record(tmp_path / "sd", Kind.JOB, content)
    add_job(store, "000003")
    with caplog.at_level(logging.WARNING):
        assert [j.id for j in SpoolStore(store.sd, "q").jobs()] == ["000001", "000003"]
        assert [j.id for j in store.jobs()] == ["000001", "000003"]
    assert "journal record at" in caplog.text and "skipped" in caplog.text
    store.close()


def test_a_directory_at_the_journals_name(tmp_path: Path) -> None:
    """Not a file lpfilter made: refused in one line naming it, never used."""
    (tmp_path / "sd" / ".lpfilter").mkdir(parents=True, mode=0o700)
    (tmp_path / "sd" / ".lpfilter" / "journal").mkdir()
    store = SpoolStore(str(tmp_path / "sd"), "q")
    with pytest.raises(LpfilterError, match=r"journal: a directory; not used: remove it"):
        store.jobs()


def test_orphan_data_is_recovered_only_when_old(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A data file without a ticket becomes a queued job after ORPHAN_AGE, not before,
    flagged a possible duplicate: its sender was never told it was taken (an LPD client
    sends it again, a user prints it again)."""
    store = new_store(tmp_path)
    add_job(store, "000001")
    with open(store.data_path("000002"), "wb") as data:
        data.write(b"x" * 1234)
    assert store.recover_orphans("alice") == [] and store.read("000002") is None
    monkeypatch.setattr(recovery, "ORPHAN_AGE", 0.0)
    (job,) = store.recover_orphans("alice")
    assert (job.id, job.user, job.size, job.state) == ("000002", "alice", 1234, JobState.QUEUED)
    assert "recovered" in job.last_error and store.read("000002") == job
    assert job.possible_duplicate
    assert store.recover_orphans("alice") == []


# --- policy ---------------------------------------------------------------------------
@pytest.mark.parametrize(("options", "attempts", "delays"), [
    ("connect_interval#10", range(7), [10, 10, 20, 40, 60, 60, 60]),
    ("connect_interval#10:connect_grace#5", range(7), [15, 15, 25, 45, 65, 65, 65]),
    ("connect_interval#3:max_connect_interval#0", range(7), [3, 3, 6, 12, 24, 48, 96]),
    ("connect_interval#1:max_connect_interval#0", (8, 9, 10, 30), [128, 256, 256, 256]),
    ("connect_interval#0", range(3), [0, 0, 0]),
])
def test_retry_delay_doubles_caps_and_adds_grace(tmp_path: Path, options: str,
                                                 attempts: range, delays: list[int]) -> None:
    """interval x 2^(n-1) (at most 2^8), capped by max_connect_interval, plus the grace."""
    entry = make_entry(tmp_path, options)
    assert [policy.retry_delay(n, entry) for n in attempts] == delays


@pytest.mark.parametrize(("error", "attempts", "options", "state"), [
    (TransientError("busy"), 1, "send_try#3", JobState.QUEUED),
    (TransientError("busy"), 2, "send_try#3", JobState.QUEUED),
    (TransientError("busy"), 3, "send_try#3", JobState.FAILED),
    (TransientError("busy"), 9, "", JobState.FAILED),  # default send_try#3, action unset: failed
    (TransientError("busy"), 500, "send_try#0", JobState.QUEUED),
    (TransientError("busy"), 3, "send_try#3:send_failure_action=remove", JobState.REMOVED),
    (JobRefused("no"), 1, "", JobState.FAILED),
    (HoldJob("hold"), 1, "", JobState.HELD),
    (RemoveJob("rm"), 1, "", JobState.REMOVED),
    (LpfilterError("other"), 1, "", JobState.FAILED),
])
def test_decide(tmp_path: Path, error: LpfilterError, attempts: int, options: str,
                state: str) -> None:
    """The state after a failed attempt; a retry carries the retry delay."""
    entry = make_entry(tmp_path, options + (":" if options else "") + "connect_interval#7")
    decision = policy.decide(error, attempts, entry)
    assert decision.state == state
    assert decision.delay == (policy.retry_delay(attempts, entry)
                              if state == JobState.QUEUED else 0)


@pytest.mark.parametrize(("value", "state"), [
    ("remove", JobState.REMOVED), ("abort", JobState.FAILED), ("hold", JobState.HELD),
    ("succ", JobState.DONE),
    ("success", JobState.DONE), ("jhold", JobState.HELD), ("JREMOVE", JobState.REMOVED),
    ("Jabort", JobState.FAILED),
    ("jsuccess", JobState.DONE), ("retry", JobState.REMOVED), ("fail", JobState.REMOVED),
    ("ignore", JobState.REMOVED),
    ("", JobState.REMOVED)])
def test_send_failure_action_words(tmp_path: Path, value: str, state: str) -> None:
    """LPRng's words (any case, optional j prefix); any other word means remove."""
    entry = make_entry(tmp_path, f"send_failure_action={value}")
    assert policy.failure_action(entry) == policy.Decision(state)


def test_send_failure_action_unset_and_program(tmp_path: Path) -> None:
    """Unset: failed (lpfilter's default, not LPRng's remove); |program: run it."""
    assert policy.failure_action(make_entry(tmp_path)) == policy.Decision(JobState.FAILED)
    entry = make_entry(tmp_path, "send_failure_action=| /bin/decide -x")
    assert policy.failure_action(entry) == policy.Decision(JobState.FAILED,
                                                           program="/bin/decide -x")


@pytest.mark.parametrize(("code", "state"), [
    (0, JobState.REMOVED), (1, JobState.QUEUED), (32, JobState.QUEUED), (2, JobState.FAILED),
    (33, JobState.FAILED), (3, JobState.REMOVED),
    (34, JobState.REMOVED), (6, JobState.HELD), (37, JobState.HELD), (10, JobState.FAILED),
    (4, JobState.FAILED), (99, JobState.FAILED),
    (-9, JobState.FAILED)])
def test_program_decision(code: int, state: str) -> None:
    """A send_failure_action program's exit status read as a filter code; 0 is remove."""
    assert policy.program_decision(code) == state


# --- device backend -------------------------------------------------------------------
def test_device_is_never_created(tmp_path: Path) -> None:
    """A missing lp file is a transient failure, and it still does not exist after."""
    target = tmp_path / "printer"
    entry = make_entry(tmp_path, lp=str(target))
    with pytest.raises(TransientError, match="does not exist"):
        send(entry, tmp_path, b"hello\n")
    assert not target.exists()


@pytest.mark.parametrize(("options", "copies", "expected"), [
    ("", 1, b"DATA"),
    ("", 3, b"DATADATADATA"),  # sf is on by default: no separator
    ("sf@", 3, b"DATA\fDATA\fDATA"),
    ("ff_separator", 2, b"DATA\fDATA"),
    ("sf@:ff=\\r\\n", 2, b"DATA\r\nDATA"),
    ("ld=\\033E\\r\\n:tr=\\004", 1, b"\x1bE\r\nDATA\x04"),
    ("ld=LD:tr=TR:fo:fq", 1, b"LD\fDATA\fTR"),
    ("ld=<\\101>:fo:fq:sf@:tr=\\n", 2, b"<A>\fDATA\fDATA\f\n"),
])
def test_device_appends_with_framing(tmp_path: Path, options: str, copies: int,
                                     expected: bytes) -> None:
    """ld/tr C-unescaped, fo/fq form feeds, separators between copies; appended."""
    target = tmp_path / "printer"
    target.write_bytes(b"before|")
    result = send(make_entry(tmp_path, options, lp=str(target)), tmp_path, b"DATA",
                  copies=copies)
    assert target.read_bytes() == b"before|" + expected
    assert result.bytes_sent == len(expected) and result.delivery == "sent"


def test_the_spools_descriptor_is_sent_whole_wherever_it_points_and_stays_open(
        tmp_path: Path) -> None:
    """A byte-stream backend sends from the descriptor the spool checked, not a copy of
    it: whole (sendfile takes its own offsets) even from one left at its end, each copy,
    and the descriptor is still open and where it was afterwards (the spool closes it)."""
    target = tmp_path / "printer"
    target.touch()
    entry = make_entry(tmp_path, "sf@", lp=str(target))
    path = tmp_path / "job.data"
    path.write_bytes(b"DATA" * 5000)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.lseek(fd, 0, os.SEEK_END)
        job = Job("000001", "q", "root", "job", 20000, time.time(), copies=2)
        destination = entry.destination()
        request = SendRequest(job, str(tmp_path / "elsewhere"), destination,
                              settings_for(destination, entry),
                              Reporter(lambda: None, lambda line: None), data_fd=fd)
        result = backend_for(destination).send(request)
        assert target.read_bytes() == b"DATA" * 5000 + b"\f" + b"DATA" * 5000
        assert result.bytes_sent == 40001
        assert os.lseek(fd, 0, os.SEEK_CUR) == 20000  # not moved, and still open
    finally:
        os.close(fd)


# --- pipe backend ---------------------------------------------------------------------
@pytest.mark.parametrize(("code", "error"), [
    (0, None), (1, TransientError), (32, TransientError), (12, TransientError),
    (43, TransientError), (2, JobRefused), (33, JobRefused), (3, RemoveJob),
    (34, RemoveJob), (6, HoldJob), (37, HoldJob), (10, JobRefused), (41, JobRefused),
    (4, JobRefused), (9, JobRefused), (40, JobRefused), (47, JobRefused),
    (200, JobRefused), ("signal", JobRefused)])
def test_pipe_exit_codes(tmp_path: Path, code: int | str,
                         error: type[LpfilterError] | None) -> None:
    """LPRng filter codes (lprng-filters.md §5), shifted or not; a signal is JABORT."""
    out = tmp_path / "got"
    end = "kill -9 $$" if code == "signal" else f"exit {code}"
    prog = script(tmp_path, f"cat > {out}\necho told $PRINTER $LPFILTER_JOB\n{end}\n")
    entry = make_entry(tmp_path, lp=f"|{prog}")
    lines: list[str] = []
    if error is None:
        assert send(entry, tmp_path, b"job bytes\n", status=lines.append).bytes_sent == 10
    else:
        with pytest.raises(error) as caught:
            send(entry, tmp_path, b"job bytes\n", status=lines.append)
        assert type(caught.value) is error  # not a subclass (JobInterrupted is transient)
        assert "prog.sh" in str(caught.value) and "told q 000001" in str(caught.value)
        if code == "signal":
            assert "signal 9" in str(caught.value)
    assert out.read_bytes() == b"job bytes\n" and lines == ["told q 000001"]


def test_pipe_output_is_status_and_in_the_failure_message(tmp_path: Path) -> None:
    """Each output line is status (said a few at a time: the newest, after how many were
    passed over); the last ones explain a failure."""
    prog = script(tmp_path, "cat >/dev/null\nfor i in 1 2 3 4 5 6 7; do echo line $i; done\n"
                            "echo 'PAPER JAM' >&2\nexit 2\n")
    lines: list[str] = []
    with pytest.raises(JobRefused) as caught:
        send(make_entry(tmp_path, lp=f"|{prog}"), tmp_path, b"x\n", status=lines.append)
    assert lines == ["... 3 more filter message lines not shown"] + [
        f"line {i}" for i in range(4, 8)] + ["PAPER JAM"]
    assert "exited 2" in str(caught.value) and "PAPER JAM" in str(caught.value)
    assert "line 4" in str(caught.value) and "line 1" not in str(caught.value)


@pytest.mark.parametrize(("command", "argv"), [
    ("/bin/prog a  b", ["/bin/prog", "a", "b"]),
    ("  /bin/prog\ta\t b ", ["/bin/prog", "a", "b"]),
    ("/bin/prog 'two words' \"three x y\" z", ["/bin/prog", "two words", "three x y", "z"]),
    ("/bin/prog \"it's\" '\"q\"'", ["/bin/prog", "it's", '"q"']),
    ("/bin/prog 'open ended", ["/bin/prog", "open ended"]),
    ("/bin/prog a'b c'", ["/bin/prog", "a'b", "c'"]),
    ("/bin/prog a | /bin/cat", ["/bin/sh", "-c", "( /bin/prog a | /bin/cat )"]),
    ("/bin/prog > /tmp/out", ["/bin/sh", "-c", "( /bin/prog > /tmp/out )"]),
    ("/bin/prog < /tmp/in", ["/bin/sh", "-c", "( /bin/prog < /tmp/in )"]),
    ("/bin/a; /bin/b", ["/bin/sh", "-c", "( /bin/a; /bin/b )"]),
    ("(cd /tmp && /bin/prog)", ["/bin/sh", "-c", "(cd /tmp && /bin/prog)"]),
])
def test_command_argv(command: str, argv: list[str]) -> None:
    """Blank-split words, quotes only at a word's start; a shell for < > | ; and (."""
    assert command_argv(command) == argv


def test_one_command_line_splitter() -> None:
    """H2: lp=| words, send_failure_action and the filters' command lines are cut by one
    splitter (LPRng's Split_cmd_line), in the ground floor: a ``$ X`` token stays one word
    for all of them."""
    import lpfilter.filters.command as command
    import lpfilter.filters.dollars as dollars
    import lpfilter.filters.plan as plan
    from lpfilter import programs
    assert command.split_words is plan.split_words is programs.split_words
    assert command.strip_prefixes is programs.strip_prefixes
    assert not hasattr(dollars, "split_words") and not hasattr(dollars, "strip_prefixes")
    assert command_argv("/bin/prog $ X 'a b'") == ["/bin/prog", "$ X", "a b"]


def test_command_argv_uses_the_shell_key(tmp_path: Path) -> None:
    """The shell form runs the printcap's shell, and really runs."""
    out = tmp_path / "out"
    assert command_argv("a|b", "/bin/bash") == ["/bin/bash", "-c", "( a|b )"]
    entry = make_entry(tmp_path, "shell=/bin/bash", lp=f"|/bin/cat | /bin/cat > {out}")
    send(entry, tmp_path, b"through two cats\n")
    assert out.read_bytes() == b"through two cats\n"


@pytest.mark.parametrize("size", [4 << 20, 100])
def test_program_that_never_reads_times_out(tmp_path: Path, size: int) -> None:
    """send_job_rw_timeout#1 ends a send to a program that never reads (and never exits),
    whether or not the job fits into the pipe buffer."""
    prog = script(tmp_path, "echo $$ > pid\nexec sleep 60\n")
    entry = make_entry(tmp_path, "send_job_rw_timeout#1", lp=f"|{prog}")
    outcome, took = send_bounded(entry, tmp_path, b"x" * size, cancel_after=4.0)
    pid = int((tmp_path / "sd" / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the program was killed (and reaped)
    assert not isinstance(outcome, JobInterrupted), f"hung until cancelled after {took:.1f} s"
    assert isinstance(outcome, TransientError) and took < 4.0, (outcome, took)


@pytest.mark.parametrize(("body", "size"), [
    ("echo $$ > pid\nexec sleep 60\n", 4 << 20),
    ("cat >/dev/null\necho $$ > pid\nexec sleep 60\n", 100)], ids=["sending", "waiting"])
def test_cancel_stops_a_long_send_promptly(tmp_path: Path, body: str, size: int) -> None:
    """interrupted() -> "cancelled" ends the send within a tick and kills the program."""
    entry = make_entry(tmp_path, lp=f"|{script(tmp_path, body)}")
    outcome, took = send_bounded(entry, tmp_path, b"y" * size, cancel_after=0.5)
    assert isinstance(outcome, JobInterrupted) and str(outcome) == "cancelled"
    assert outcome.reason is Interruption.CANCELLED
    assert took < 3.0
    pid = int((tmp_path / "sd" / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)



def test_a_ticket_being_written_is_not_a_job(tmp_path: Path) -> None:
    """A job record being written when its writer was killed (a torn tail; once a ticket's
    ``.tmp-PID-NNNNNN.job``) never shows up as a job (cancel, status), nor does a file
    in jobs/ that is not a job's data; the next appender cuts the torn record off."""
    from lpfilter.spool.journal import encode
    from lpfilter.spool.store import SpoolStore
    sd = tmp_path / "sd"
    sd.mkdir(mode=0o700)
    store = SpoolStore(str(sd), "q")
    store.ensure()
    store.write(Job("000001", "q", "root", "whole", 5, 1.0))
    journal = sd / ".lpfilter" / "journal"
    whole = journal.stat().st_size
    torn = encode(whole, Kind.JOB, Job("000002", "q", "root", "torn", 5, 1.0).to_json().encode())
    with open(journal, "ab") as handle:
        handle.write(torn[:-3])
    (Path(store.jobs_dir) / ".tmp-1-000002.data").write_text("x")
    reader = SpoolStore(str(sd), "q")
    assert [j.id for j in reader.jobs()] == ["000001"] and reader.read("000002") is None
    assert journal.stat().st_size == whole + len(torn) - 3  # a reader cuts nothing
    assert store.recover_orphans("root") == []
    assert store.next_id() == "000002"  # an appender cuts it, then appends
    assert [j.id for j in reader.jobs()] == ["000001"]
    store.close()
    reader.close()


def test_staged_files_are_locked_until_closed(tmp_path: Path) -> None:
    """Recovery removes a staged file only once no process holds it: a submission or a
    received job still being written (a lock per open file, so threads too) is left."""
    make_entry(tmp_path)
    store = SpoolStore(str(tmp_path / "sd"), "q")
    store.ensure()
    fd, staged = store.stage("000001")
    os.write(fd, b"in flight")
    link = os.path.join(store.tmp_dir, "link")
    os.symlink(staged, link)
    assert remove_unlocked(store.tmp_dir) == []
    assert store.recover_orphans("root") == [] and os.path.exists(staged)
    os.close(fd)  # the writer is gone without committing it
    assert remove_unlocked(store.tmp_dir) == [staged]
    assert os.listdir(store.tmp_dir) == ["link"]  # a symbolic link is never followed
    assert store.jobs() == []


def test_threads_sharing_a_store_get_distinct_job_numbers(tmp_path: Path) -> None:
    """The print server receives on many connections at once, with one store per queue:
    its threads share the lock file's descriptor, which flock alone cannot part."""
    make_entry(tmp_path)
    store = SpoolStore(str(tmp_path / "sd"), "q")
    store.ensure()
    got: list[str] = []

    def take() -> None:
        got.extend(store.next_id() for _ in range(25))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    store.close()
    assert len(got) == 200 and len(set(got)) == 200
