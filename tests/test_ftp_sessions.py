"""FTP sessions over time and across processes: the host-wide slot limit (slots held by
another process), the server's 421, idle sessions cut by the server or dropped by
lpfilter (``ftp_idle``), and cancel while waiting or sending. lpfilter runs as a separate
process where another process must act meanwhile, else in this process (``main`` or a
``QueueWorker`` driven batch by batch). The emulator itself is checked where the tests
rely on it. Real servers on 127.0.0.1 only; every wait bounded."""
from __future__ import annotations

import ftplib
import io
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ftpkit import (  # noqa: F401
    FtpQueue,
    MakeServer,
    Server,
    ftp_queue,
    ftp_server,
    hang_guard,
    holding,
    wait_until,
)
from spoolkit import Kit, kit_at, wait_served

from lpfilter.backends.ftpsession import slot_paths
from lpfilter.job import Job, user_name
from lpfilter.printcap import load
from lpfilter.spool.outcome import WorkSummary
from lpfilter.spool.store import SpoolStore
from lpfilter.spool.submit import JobOptions, submit
from lpfilter.spool.worker import QueueWorker
from lpfilter.status import ExitStatus

WAITING = "waiting for an FTP session"


@pytest.fixture
def kit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Kit]:
    """lpfilter as child processes (killed at the end); HOME has no .netrc."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NETRC", raising=False)
    with kit_at(tmp_path) as made:
        yield made


def ftp_queue_in(kit: Kit, server: Server, **options: object) -> SpoolStore:
    kit.queue("q", server.lp(), connect_interval=1, max_connect_interval=1,
              connect_timeout=3, stall_timeout=5, **options)
    return SpoolStore(str(kit.sd("q")), "q")


def only_job(store: SpoolStore) -> Job:
    (job,) = store.jobs()
    return job


def status_of(kit: Kit) -> str:
    path = kit.sd("q") / "status"
    return path.read_text() if path.exists() else ""


# --- the slot limit ---------------------------------------------------------------------
@pytest.mark.parametrize("sessions", [3, 1])
def test_all_slots_busy_the_job_waits_then_prints_on_its_first_attempt(
        kit: Kit, ftp_server: MakeServer, sessions: int) -> None:
    server = ftp_server()
    options = {} if sessions == 3 else {"ftp_sessions": sessions}  # 3 is the default
    store = ftp_queue_in(kit, server, **options)
    doc = kit.root / "doc"
    doc.write_bytes(b"waited for a session\n")
    paths = slot_paths(str(kit.lock_dir), "127.0.0.1", server.port, sessions)
    with holding(paths) as holder:
        proc = kit.start("print", "-P", "q", str(doc))
        wait_until(lambda: WAITING in status_of(kit), what="the job to wait for a slot")
        status = status_of(kit)
        assert f"all {sessions} are in use" in status and str(holder.pid) in status, status
        time.sleep(1.5)  # longer than connect_interval: no retry, no failure meanwhile
        job = only_job(store)
        assert (job.state, job.attempts, job.last_error) == ("active", 1, "")
        assert proc.popen.poll() is None
        assert server.seen.logins == [] and server.printer.peak_sessions == 0
        lpq = kit.run("status", "-P", "q")
        assert WAITING in lpq.stdout, lpq.stdout
        holder.release(sessions - 1)
        assert proc.wait(20) == 0, proc.stderr()
    job = only_job(store)
    assert (job.state, job.attempts, job.possible_duplicate) == ("done", 1, False)
    assert [Path(j.path).read_bytes() for j in server.files(1)] == [doc.read_bytes()]
    assert server.printer.peak_sessions == 1 and "retrying" not in kit.sd("q").joinpath(
        "log").read_text()


def test_cancel_while_waiting_for_a_slot_ends_the_job_at_once(kit: Kit,
                                                               ftp_server: MakeServer) -> None:
    server = ftp_server()
    store = ftp_queue_in(kit, server)
    doc = kit.root / "doc"
    doc.write_bytes(b"never sent\n")
    with holding(slot_paths(str(kit.lock_dir), "127.0.0.1", server.port, 3)):
        proc = kit.start("print", "-P", "q", str(doc))
        wait_until(lambda: WAITING in status_of(kit), what="the job to wait for a slot")
        cancel = kit.run("cancel", "-P", "q", "q-000001")
        assert cancel.returncode == 0 and "being printed" in cancel.stdout, cancel
        assert proc.wait(10) == ExitStatus.JOB_FAILED  # promptly, and not printed
    job = only_job(store)
    assert (job.state, job.bytes_sent) == ("cancelled", 0)
    assert server.seen.logins == [] and server.printer.jobs == []


def test_cancel_during_a_slow_transfer_stops_it(kit: Kit, ftp_server: MakeServer) -> None:
    server = ftp_server(slow=256 * 1024)
    store = ftp_queue_in(kit, server)
    doc = kit.root / "big"
    doc.write_bytes(os.urandom(32 << 20))  # two minutes at this rate
    proc = kit.start("print", "-P", "q", str(doc))
    wait_until(lambda: store.jobs() and only_job(store).send_started, what="bytes to go out")
    cancel = kit.run("cancel", "-P", "q", "q-000001")
    assert "being printed" in cancel.stdout, cancel
    assert proc.wait(10) == ExitStatus.JOB_FAILED
    job = only_job(store)
    assert job.state == "cancelled" and 0 < job.bytes_sent < 32 << 20
    assert not store.has_data(job)
    wait_until(lambda: server.printer.active_sessions == 0, what="the session to close")
    assert server.complete() == []


# --- the server gone mid-transfer -------------------------------------------------------
def test_server_gone_mid_transfer_requeues_as_possible_duplicate(
        ftp_queue: FtpQueue, ftp_server: MakeServer) -> None:
    """The server hangs up (data and control) after 256 KiB of an 8 MiB file."""
    server = ftp_server(drop_after=256 * 1024)
    ftp_queue.setup(server.lp(), "connect_interval#60")
    assert ftp_queue.print(os.urandom(8 << 20), args=("--no-wait",)).rc == 0
    run = ftp_queue.run("watch", "--once", "-P", "q")
    job = ftp_queue.job()
    assert not server.complete(), "the server took the whole file: nothing was dropped"
    assert (job.state, job.attempts) == ("queued", 1), job.last_error
    assert job.possible_duplicate and job.send_started and job.bytes_sent > 0
    assert f"127.0.0.1:{server.port}" in job.last_error
    assert "(possible duplicate)" in ftp_queue.text("log")
    assert run.rc != 0  # not every job printed
    wait_until(lambda: server.printer.jobs, what="the server to record the cut file")
    assert [j.complete for j in server.printer.jobs] == [False]


# --- the server's own limit: 421 --------------------------------------------------------
def test_server_421_is_busy_and_the_job_prints_on_a_later_pass(
        ftp_queue: FtpQueue, ftp_server: MakeServer) -> None:
    server = ftp_server(sessions=2)
    ftp_queue.setup(server.lp())
    clients = [ftplib.FTP() for _ in range(2)]
    try:
        for client in clients:
            client.connect("127.0.0.1", server.port, timeout=5)
            client.login()
        assert ftp_queue.print(b"busy server\n", args=("--no-wait",)).rc == 0
        run = ftp_queue.run("watch", "--once", "-P", "q")
        job = ftp_queue.job()
        assert (job.state, job.attempts, job.bytes_sent) == ("queued", 1, 0), job.last_error
        assert "421" in job.last_error and "all its sessions are in use" in job.last_error
        assert f"127.0.0.1:{server.port}" in job.last_error and not job.possible_duplicate
        assert "printer busy, retrying in 1 s" in ftp_queue.text("status")
        assert server.printer.refused_sessions == 1 and server.complete() == []
        assert run.rc != 0
    finally:
        for client in clients:
            client.quit()
    wait_until(lambda: server.printer.active_sessions == 0, what="the clients to leave")
    wait_until(lambda: ftp_queue.job().next_try <= time.time(), what="the retry time")
    run = ftp_queue.run("watch", "--once", "-P", "q")
    assert run.rc == 0, run.err
    job = ftp_queue.job()
    assert (job.state, job.attempts, job.possible_duplicate) == ("done", 2, False)
    assert [Path(j.path).read_bytes() for j in server.files(1)] == [b"busy server\n"]


# --- idle sessions ----------------------------------------------------------------------
class Batches:
    """A queue worker driven one batch at a time, as a watcher's loop drives it."""

    def __init__(self, queue: FtpQueue) -> None:
        self.entry = load([str(queue.printcap)]).lookup("q")
        self.worker = QueueWorker(self.entry, lock_dir=str(queue.lock_dir))
        self.worker.store.ensure()
        queue.lock_dir.mkdir(exist_ok=True)
        self.root = queue.root
        self.summary = WorkSummary()

    def send(self, data: bytes) -> Job:
        """Spool one job and run a batch (the session stays open afterwards)."""
        path = self.root / f"doc{len(self.summary.counts)}-{time.monotonic_ns()}"
        path.write_bytes(data)
        job = submit(self.entry, self.worker.store, str(path),
                     JobOptions(user_name(os.getuid())))
        ran, _ = self.worker.run_batch(self.summary)
        assert ran
        done = self.worker.store.read(job.id)
        assert done is not None
        return done


@pytest.fixture
def batches(ftp_queue: FtpQueue) -> Iterator[Batches]:
    made: list[Batches] = []

    def make() -> Batches:
        made.append(Batches(ftp_queue))
        return made[-1]

    yield make  # type: ignore[misc]
    for each in made:
        each.worker.close()


def test_session_cut_by_the_server_when_idle_is_reopened_transparently(
        ftp_queue: FtpQueue, ftp_server: MakeServer, batches: object,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lpfilter")
    server = ftp_server(idle_timeout=1)
    ftp_queue.setup(server.lp())
    queue = batches()  # type: ignore[operator]
    first = queue.send(b"first\n")
    assert (first.state, first.attempts) == ("done", 1)
    assert server.printer.active_sessions == 1  # kept open for the next job
    wait_until(lambda: server.printer.active_sessions == 0, what="the server's idle cut")
    second = queue.send(b"second\n")
    assert (second.state, second.attempts, second.last_error) == ("done", 1, "")
    assert [Path(j.path).read_bytes() for j in server.files(2)] == [b"first\n", b"second\n"]
    assert server.seen.logins == ["anonymous", "anonymous"]
    assert "the kept session was closed by the server; reconnecting" in caplog.text


@pytest.mark.parametrize(("options", "logins"), [("ftp_idle#1", 2), ("", 1)])
def test_ftp_idle_limits_how_old_a_reused_session_may_be(
        ftp_queue: FtpQueue, ftp_server: MakeServer, batches: object, options: str,
        logins: int) -> None:
    server = ftp_server()
    ftp_queue.setup(server.lp(), options)
    queue = batches()  # type: ignore[operator]
    assert queue.send(b"one\n").state == "done"
    time.sleep(1.2)  # more than ftp_idle#1, far less than the default 240 s
    second = queue.send(b"two\n")
    assert (second.state, second.attempts) == ("done", 1)
    assert server.seen.logins == ["anonymous"] * logins
    assert server.seen.verbs().count("QUIT") == logins - 1  # the old one got QUIT
    assert server.printer.peak_sessions == 1


def test_a_watcher_quits_its_session_when_the_queue_runs_dry(kit: Kit,
                                                             ftp_server: MakeServer) -> None:
    """A long-running watcher does not sit on an idle session (the server would cut it, and
    it holds one of the server's few sessions): QUIT once nothing is left to send."""
    server = ftp_server()
    store = ftp_queue_in(kit, server)
    watcher = kit.start("watch", "-P", "q")
    wait_served(kit, "q", watcher)
    docs = [kit.root / f"doc{n}" for n in range(3)]
    for n, doc in enumerate(docs):
        doc.write_bytes(f"watched {n}\n".encode())
    # Held, then released by one command: the watcher finds all three in one batch.
    assert kit.run("print", "--hold", "-P", "q", *map(str, docs)).returncode == 0
    assert kit.run("release", "-P", "q", "--all").returncode == 0
    wait_until(lambda: [j.state for j in store.jobs()] == ["done"] * 3, what="3 jobs done")
    wait_until(lambda: server.printer.active_sessions == 0, what="the session to end")
    assert watcher.popen.poll() is None  # still serving, without a session
    assert server.seen.verbs()[-1] == "QUIT" and server.seen.logins == ["anonymous"]
    assert watcher.stop() == 0


# --- the emulator the tests rely on -----------------------------------------------------
def test_emulator_refuses_a_session_beyond_its_limit_with_421(ftp_server: MakeServer) -> None:
    server = ftp_server(sessions=1)
    with ftplib.FTP() as first:
        first.connect("127.0.0.1", server.port, timeout=5)
        second = ftplib.FTP()
        try:
            with pytest.raises(ftplib.error_temp, match=r"^421"):
                second.connect("127.0.0.1", server.port, timeout=5)
        finally:
            second.close()
        assert server.printer.refused_sessions == 1 and server.printer.active_sessions == 1


def test_emulator_drop_after_cuts_the_data_connection(ftp_server: MakeServer) -> None:
    """FtpBehaviour(drop_after=N) must hang up once N bytes of a file arrived."""
    server = ftp_server(drop_after=64 * 1024)
    client = ftplib.FTP()
    try:
        client.connect("127.0.0.1", server.port, timeout=5)
        client.login()
        client.cwd("PORT1")
        with pytest.raises((ftplib.Error, OSError, EOFError)):
            client.storbinary("STOR dropped", io.BytesIO(os.urandom(16 << 20)))
    finally:
        client.close()
    wait_until(lambda: server.printer.jobs, what="the server to record the file")
    assert [j.complete for j in server.printer.jobs] == [False]
    assert server.printer.jobs[0].size < 16 << 20


def test_two_emulators_in_one_process_are_independent(ftp_server: MakeServer) -> None:
    """Closing one emulator leaves another one (its sessions, its listening socket) alone:
    each needs its own pyftpdlib IOLoop, not the process-wide IOLoop.instance()."""
    first, second = ftp_server(output=False), ftp_server(output=False)
    with ftplib.FTP() as client:
        client.connect("127.0.0.1", second.port, timeout=5)
        client.login()
        first.printer.close()
        assert client.voidcmd("NOOP").startswith("200")
    with ftplib.FTP() as again:
        again.connect("127.0.0.1", second.port, timeout=5)
        assert again.getwelcome().startswith("220")
