"""The spool through its commands and its worker, in-process (``lpfilter.cli.main``) with
real files and real pipe programs: print, the queue worker, status, cancel, hold, release,
requeue, watch --once (signals, concurrency and chaos are in test_spool_processes.py)."""
from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
from spoolkit import in_process_queue  # noqa: F401

from lpfilter import printcap
from lpfilter.cli import main
from lpfilter.commands.exits import for_pass
from lpfilter.job import Job, JobState
from lpfilter.spool import worker as worker_module
from lpfilter.spool.store import SpoolStore
from lpfilter.spool.worker import QueueWorker
from lpfilter.status import ExitStatus


class Queue:
    """Queue ``q``: a printcap in LPFILTER_PRINTCAP, its sd, a pipe program, and the CLI."""

    def __init__(self, tmp: Path, capsys: pytest.CaptureFixture[str], options: str) -> None:
        self.tmp, self.capsys = tmp, capsys
        self.sd, self.prog, self.printed = tmp / "sd", tmp / "prog.sh", tmp / "printed"
        self.program("cat >> printed_path\n")
        self.printcap = tmp / "printcap"
        self.printcap.write_text(  # the tests read lpfilter's own accounting line; the
            # program, in root's 0700 tmp_path, runs as user=root (default: daemon)
            f"q:sd={self.sd}:lp=|{self.prog}:accounting_format=keyvalue:user=root:{options}\n")

    def program(self, body: str) -> None:
        """(Re)write the pipe program; ``printed_path`` names the file it may print to."""
        self.prog.write_text("#!/bin/sh\n" + body.replace("printed_path", str(self.printed)))
        self.prog.chmod(0o755)

    def cli(self, *argv: str) -> tuple[int, str, str]:
        """``lpfilter ARGV`` in-process: (exit status, stdout, stderr)."""
        rc = main(list(argv))
        out, err = self.capsys.readouterr()
        return rc, out, err

    def doc(self, data: bytes = b"hello\n", name: str = "doc.txt") -> str:
        (self.tmp / name).write_bytes(data)
        return str(self.tmp / name)

    def spool(self, count: int = 1) -> None:
        """Submit ``count`` jobs ("job 0\\n", ...) with print --no-wait: ids 000001 on."""
        for n in range(count):
            rc, out, err = self.cli("print", "--no-wait", self.doc(b"job %d\n" % n))
            assert (rc, out) == (0, f"q-{n + 1:06d}\n"), err

    def jobs(self) -> dict[str, Job]:
        return {job.id: job for job in SpoolStore(str(self.sd), "q").jobs()}

    def has_data(self, job_id: str) -> bool:
        return (self.sd / ".lpfilter" / "jobs" / f"{job_id}.data").exists()

    def worker(self) -> QueueWorker:
        entry = printcap.load([str(self.printcap)]).lookup("q")
        return QueueWorker(entry, lock_dir=str(self.tmp / "locks"))


MakeQueue = Callable[..., Queue]
#: What release and requeue add when no process serves queue q.
NO_WATCHER = (", but no watcher serves q now: it prints when a running 'lpfilter watch', the"
              " next 'lpfilter watch --once' or another 'lpfilter print -P q' finds the"
              " printer ready")


@pytest.fixture
def make_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
               capsys: pytest.CaptureFixture[str]) -> Iterator[MakeQueue]:
    """A factory: make_queue(options, sd=True, stdin=None) -> Queue (lp=|prog.sh)."""
    monkeypatch.setenv("LPFILTER_LOCK_DIR", str(tmp_path / "locks"))
    opened: list[BinaryIO] = []

    def make(options: str = "", sd: bool = True, stdin: bytes | None = None) -> Queue:
        queue = Queue(tmp_path, capsys, options)
        monkeypatch.setenv("LPFILTER_PRINTCAP", str(queue.printcap))
        if sd:
            queue.sd.mkdir()
        if stdin is not None:  # a pipe, small enough to fill before reading
            read_fd, write_fd = os.pipe()
            os.write(write_fd, stdin)
            os.close(write_fd)
            opened.append(os.fdopen(read_fd, "rb"))
            monkeypatch.setattr(sys, "stdin", opened[-1])
        return queue

    yield make
    for stream in opened:
        stream.close()


# --- submitting -----------------------------------------------------------------------
@pytest.mark.parametrize(("options", "argv", "state", "no_banner"), [
    ("mc#0", ["--no-wait"], "queued", False), ("mc#0", ["--no-wait", "-h"], "queued", True),
    ("mc#0", ["--hold"], "held", False), ("mc#0", ["--hold", "-h"], "held", True),
    ("mc#0:ah", [], "held", False)])
def test_print_records_options(make_queue: MakeQueue, options: str, argv: list[str],
                               state: str, no_banner: bool) -> None:
    """-J, -T, -#, -C and (as root) -U are kept in the ticket; --hold and ah hold the job;
    -h is LPRng's "no banner page", recorded, and holds nothing."""
    q = make_queue(options)
    assert q.cli("print", *argv, "-J", "report", "-T", "Q3", "-#", "3", "-U", "bob",
                 "-C", "finance", q.doc(b"x" * 5000)) == (0, "q-000001\n", "")
    job = q.jobs()["000001"]
    assert (job.name, job.title, job.copies, job.user, job.size, job.state) == (
        "report", "Q3", 3, "bob", 5000, state)
    assert (job.job_class, job.no_banner) == ("finance", no_banner)
    assert (q.sd / ".lpfilter/jobs/000001.data").read_bytes() == b"x" * 5000
    assert not q.printed.exists()


def test_print_h_prints_without_a_banner_instead_of_holding(make_queue: MakeQueue) -> None:
    """`print -h file` (lpr's "no banner") prints the job at once; only --hold holds."""
    q = make_queue()
    assert q.cli("print", "-h", q.doc(b"no banner\n")) == (0, "q-000001\n", "")
    job = q.jobs()["000001"]
    assert (job.state, job.no_banner) == ("done", True)
    assert q.printed.read_bytes() == b"no banner\n"
    status = json.loads(q.cli("status", "--json")[1])
    assert [(j["no_banner"], j["job_class"]) for j in status["jobs"]] == [(True, "")]


def test_print_K_is_copies_as_in_lprng(make_queue: MakeQueue) -> None:
    """-K N is -# N: the same copies, the same mc limit and refusal."""
    q = make_queue("mc#3")
    assert q.cli("print", "-K", "3", q.doc(b"copy\n")) == (0, "q-000001\n", "")
    assert q.jobs()["000001"].copies == 3
    assert q.printed.read_bytes() == b"copy\n" * 3
    rc, out, err = q.cli("print", "--no-wait", "-K", "4", q.doc())
    assert (rc, out, err) == (ExitStatus.USAGE, "", "lpfilter: queue q allows at most 3 copies"
                              " (mc#3 in the printcap); you asked for 4\n")
    assert list(q.jobs()) == ["000001"]


MAIL = ("lpfilter: -m: lpfilter does not send mail; nothing was printed (leave out -m:"
        " 'print --wait' or 'status' tell how a job ended)\n")


@pytest.mark.parametrize("argv", [["-m"], ["-m", "ann@example.org"], ["-mann"],
                                  ["-P", "nosuchqueue", "-m"]])
def test_print_m_is_refused_in_one_line(make_queue: MakeQueue, argv: list[str]) -> None:
    """Mail on completion is not supported: one line, usage status, nothing spooled (the
    refusal comes before the queue is even looked up)."""
    q = make_queue()
    assert q.cli("print", *argv, q.doc()) == (ExitStatus.USAGE, "", MAIL)
    assert q.jobs() == {}
    assert not q.printed.exists()


def test_a_ticket_written_before_class_and_banner_loads() -> None:
    """Tickets of an older lpfilter have neither job_class nor no_banner: defaults."""
    old = {"id": "000007", "queue": "q", "user": "ann", "name": "n", "size": 3,
           "submitted": 1.0e9, "state": "queued"}
    job = Job.from_json(json.dumps(old))
    assert (job.job_class, job.no_banner, job.extra) == ("", False, {})
    again = Job.from_json(job.to_json())
    assert (again.job_class, again.no_banner) == ("", False)


MX = "larger than queue q's limit of 1 KiB (mx in the printcap)"
MC = "queue q allows at most {} (mc#{} in the printcap); you asked for {}"


@pytest.mark.parametrize(("options", "argv", "what", "rc", "message"), [
    ("mx#1", [], "1024", 0, ""), ("mx#1", [], "stdin 1024", 0, ""),
    ("mx#1", [], "1025", 6, f"{{path}}: {MX}"),
    ("mx#1", [], "stdin 1025", 6, f"(standard input): {MX}"),
    ("", ["-#", "2"], "doc", 2, MC.format("1 copy", 1, 2)),
    ("mc#3", ["-#", "4"], "doc", 2, MC.format("3 copies", 3, 4)),
    ("mc#0", ["-#", "0"], "doc", 2, "-# 0: the number of copies must be at least 1"),
    ("", ["-#", "1"], "doc", 0, ""), ("mc#0", ["-#", "99"], "doc", 0, ""),
    ("mc#3", ["-#", "3"], "doc", 0, ""),
    ("", [], "missing", 5, "{path}: no such file; nothing was printed"),
    ("", [], "directory", 5, "{path}: is a directory, not a file to print; nothing was printed"),
    ("", [], "no sd", 5, "queue q: spool directory {sd} does not exist;"
                         " run 'lpfilter checkpc --fix' to create it"),
    ("", [], "empty", 6, "{path}: empty file; nothing to print"),
    ("", [], "stdin empty", 6, "(standard input): empty; nothing to print")])
def test_print_limits_and_refusals(make_queue: MakeQueue, tmp_path: Path, options: str,
                                   argv: list[str], what: str, rc: int, message: str) -> None:
    """mx (KiB, files and stdin), mc (default 1; 0: no limit), missing, directory and empty
    input, a missing sd: one clear line, nothing spooled; within limits, spooled whole."""
    size = 0 if "empty" in what else int(what.split()[-1]) if what[-1].isdigit() else 6
    stdin = what.startswith("stdin")
    q = make_queue(options, sd=what != "no sd", stdin=b"m" * size if stdin else None)
    path = str(tmp_path / "input")
    if what == "directory":
        os.mkdir(path)
    elif what != "missing":
        Path(path).write_bytes(b"m" * size)
    got, out, err = q.cli("print", "--no-wait", *argv, *([] if stdin else [path]))
    assert (got, out, err) == (rc, "" if rc else "q-000001\n",
                               f"lpfilter: {message.format(path=path, sd=q.sd)}\n" if rc else "")
    assert [(j.size, j.name) for j in q.jobs().values()] == (
        [] if rc else [(size, "stdin" if stdin else "input")])
    assert not list(q.sd.glob(".lpfilter/tmp/*"))


def test_lpr_leaves_out_a_file_it_cannot_read_and_prints_the_others(
        make_queue: MakeQueue, tmp_path: Path) -> None:
    """As LPRng's lpr (checked against it: 'Warning - Cannot open file', the others one
    job, exit 0; none left: 'nothing to print', exit 1): each file that cannot be read is
    a line and the rest print, exit 0; none left, refused (5). print and lp refuse it all."""
    q = make_queue()
    a, b = q.doc(b"A\n", "a"), q.doc(b"B\n", "b")
    missing, folder = str(tmp_path / "missing"), str(tmp_path / "folder")
    os.mkdir(folder)
    assert q.cli("print", "--no-wait", a, missing, b) == (
        5, "", f"lpfilter: {missing}: no such file; nothing was printed\n")
    assert q.cli("lp", "-d", "q", a, missing) == (
        5, "", f"lpfilter: {missing}: no such file; nothing was printed\n")
    assert q.jobs() == {}
    assert q.cli("lpr", "--no-wait", a, missing, folder, b) == (0, "q-000001\nq-000002\n", (
        f"lpfilter: {missing}: no such file; left out (the other files print)\n"
        f"lpfilter: {folder}: is a directory, not a file to print; left out (the other"
        " files print)\n"))
    assert sorted(j.name for j in q.jobs().values()) == ["a", "b"]
    assert q.cli("lpr", "--no-wait", missing, folder) == (
        5, "", f"lpfilter: {missing}: no such file; nothing was printed\n")


NOBODY = ("import os, sys, lpfilter.cli as cli, lpfilter.printcap as pc\n"
          "import lpfilter.commands.print_cmd, lpfilter.spool.submit\n"
          "import lpfilter.commands.daemonclient, lpfilter.commands.daemonprint\n"
          "import lpfilter.commands.environment\n"
          "import lpfilter.spool.store, lpfilter.spool.worker, lpfilter.locks\n"
          "cli.build_parser(); pc.load([os.environ['LPFILTER_PRINTCAP']])\n"
          "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
          "sys.exit(cli.main(sys.argv[1:]))\n")


NO_DAEMON = ("; and no print server answers on {sock} (No such file or directory) to do it for"
             " you: start one with 'lpfilter watch' (as root or the spool's owner), or set"
             " LPFILTER_SOCKET to its socket")


@pytest.mark.parametrize(("mode", "argv", "rc", "message"), [
    (0o700, [], 5, "queue q: you (uid 65534) may not write the spool directory {sd};"
                   " ask its owner, or print as them"),
    (0o1777, ["-U", "bob"], 2, "-U bob: only root may print for another user")])
def test_print_as_nobody(mode: int, argv: list[str], rc: int, message: str) -> None:
    """As uid 65534: a root-owned 0700 sd is refused in one line; so is -U another user."""
    if os.getuid() != 0:
        pytest.skip("needs root to run a child as nobody")
    world = Path(tempfile.mkdtemp(prefix="lpfilter-nobody-"))
    try:
        world.chmod(0o755)
        (world / "sd").mkdir(mode)
        (world / "sd").chmod(mode)
        (world / "printcap").write_text(f"q:sd={world / 'sd'}:lp=/dev/null\n")
        (world / "doc").write_text("hello\n")
        env = dict(os.environ, LPFILTER_PRINTCAP=str(world / "printcap"), HOME=str(world),
                   LPFILTER_NO_CACHE="1", LPFILTER_LOCK_DIR=str(world / "locks"),
                   LPFILTER_SOCKET=str(world / "none.sock"))
        if rc == 5:  # no print server runs to spool it for nobody: the line says so
            message += NO_DAEMON.format(sock=world / "none.sock")
        # The interpreter may be where nobody cannot read it (/root/.pyenv): the child
        # imports as root, then drops to nobody before lpfilter runs.
        done = subprocess.run([sys.executable, "-c", NOBODY, "print", "--no-wait", *argv,
                               str(world / "doc")], env=env, cwd=world, timeout=30,
                              capture_output=True, text=True, check=False)
        assert (done.returncode, done.stdout, done.stderr) == (
            rc, "", f"lpfilter: {message.format(sd=world / 'sd')}\n")
    finally:
        shutil.rmtree(world)


# --- the worker -----------------------------------------------------------------------
@pytest.mark.parametrize(("options", "decide", "state", "attempts", "data"), [
    ("send_try#2", None, "failed", 2, True),
    ("send_try#2:send_failure_action=remove", None, "removed", 2, False),
    ("send_try#1:send_failure_action=hold", None, "held", 1, True),
    ("send_try#2:send_failure_action=|DECIDE", 6, "held", 2, True),
    ("send_try#1:send_failure_action=|DECIDE", 0, "removed", 1, False)])
def test_transient_failures_then_failure_action(make_queue: MakeQueue, tmp_path: Path,
                                                options: str, decide: int | None, state: str,
                                                attempts: int, data: bool) -> None:
    """Exit 1 is retried send_try times, then send_failure_action (or its program) decides."""
    program = tmp_path / "decide.sh"
    program.write_text(f"#!/bin/sh\ncat > {tmp_path}/count\nexit {decide}\n")
    program.chmod(0o755)
    q = make_queue(options.replace("DECIDE", str(program)) + ":connect_interval#0")
    q.program(f"cat >/dev/null\necho try >> {tmp_path}/tries\nexit 1\n")
    q.spool()
    q.worker().serve(burst=True)
    job = q.jobs()["000001"]
    assert (job.state, job.attempts, q.has_data("000001")) == (state, attempts, data)
    assert (tmp_path / "tries").read_text() == "try\n" * attempts
    assert "exited 1 (JFAIL)" in job.last_error
    if decide is not None:  # the program got the attempt count on stdin
        assert (tmp_path / "count").read_text() == f"{attempts}\n"


@pytest.mark.parametrize(("options", "acct", "kept", "with_data"), [
    ("done_jobs#2", True, ["000003", "000004"], False), ("done_jobs#0", False, [], False),
    ("", False, ["000004"], False),
    ("save_when_done:done_jobs#0", True, ["000001", "000002", "000003", "000004"], True)])
def test_done_jobs_accounting_and_pruning(make_queue: MakeQueue,
                                          monkeypatch: pytest.MonkeyPatch, options: str,
                                          acct: bool, kept: list[str], with_data: bool) -> None:
    """Printed jobs: data dropped unless save_when_done, the newest done_jobs tickets kept,
    a log line each, and an af line each only if the af file exists (never created)."""
    monkeypatch.setattr(worker_module, "KEEP_RECENT", 0.0)
    q = make_queue(options)
    if acct:
        (q.sd / "acct").write_text("")
    q.spool(4)
    assert for_pass(q.worker().serve(burst=True)) == ExitStatus.OK
    assert q.printed.read_text() == "job 0\njob 1\njob 2\njob 3\n" and sorted(q.jobs()) == kept
    assert all((j.state, j.attempts, j.bytes_sent, j.delivery, q.has_data(i)) == (
        "done", 1, 6, "sent", with_data) for i, j in q.jobs().items())
    assert (q.sd / "log").read_text().count(": done: prog.sh took 6 bytes\n") == 4
    if acct:
        lines = (q.sd / "acct").read_text().splitlines()
        assert [line.split()[2:4] for line in lines] == [
            ["queue=q", f"job=00000{n}"] for n in range(1, 5)]
        assert all(" user=root bytes=6 " in line and line.endswith(
            " outcome=done attempts=1 duplicate=no delivery=sent") for line in lines)
    else:
        assert not (q.sd / "acct").exists()


@pytest.mark.parametrize(("options", "second"), [("", "queued"), ("fifo@", "done")])
def test_fifo_and_watch_once_pending(make_queue: MakeQueue, options: str, second: str) -> None:
    """A job waiting to retry blocks the next one (fifo, on by default) or not (fifo@);
    watch --once then exits 8: jobs are still pending."""
    q = make_queue(f"connect_interval#100:{options}")
    q.program('cat >> printed_path\n[ "$LPFILTER_JOB" = 000001 ] && exit 1\nexit 0\n')
    q.spool(2)
    rc, _, err = q.cli("watch", "--once", "-P", "q")
    assert rc == ExitStatus.JOB_PENDING, err
    first, later = q.jobs()["000001"], q.jobs()["000002"]
    assert first.state == "queued" and first.attempts == 1
    assert 55 < first.next_try - time.time() <= 60  # capped: max_connect_interval#60
    assert later.state == second


def test_recover_requeues_active_jobs_and_flags_duplicates(make_queue: MakeQueue) -> None:
    """An active ticket left by a crash is queued again; possible duplicate if bytes left."""
    q = make_queue()
    (q.sd / "acct").write_text("")
    store = SpoolStore(str(q.sd), "q")
    store.ensure()
    for job_id, started in (("000001", True), ("000002", False)):
        Path(store.data_path(job_id)).write_bytes(f"{job_id}\n".encode())
        store.write(Job(job_id, "q", "root", "n", 7, time.time(), state=JobState.ACTIVE, attempts=1,
                        worker=(2 ** 22 + 1, 1.0), send_started=started))
    worker = q.worker()
    worker.recover()
    worker.close()
    assert [(j.state, j.possible_duplicate, j.worker) for j in q.jobs().values()] == [
        ("queued", True, None), ("queued", False, None)]
    assert all("interrupted" in j.last_error for j in q.jobs().values())
    q.worker().serve(burst=True)
    assert [(j.state, j.attempts) for j in q.jobs().values()] == [("done", 2), ("done", 2)]
    lines = (q.sd / "acct").read_text().splitlines()
    assert "duplicate=yes" in lines[0] and "duplicate=no" in lines[1]


def test_cancel_stops_an_active_pipe_job(make_queue: MakeQueue) -> None:
    """cancel of a job being printed: its worker kills the program and records cancelled."""
    q = make_queue("save_on_error")
    (q.sd / "acct").write_text("")
    q.spool()
    running = q.tmp / "running"
    q.program(f"cat >/dev/null\necho $$ > {running}\nexec sleep 60\n")
    worker = q.worker()
    thread = threading.Thread(target=worker.serve, kwargs={"burst": True}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not (running.exists() and running.read_text().strip()):
            assert time.monotonic() < deadline, "the pipe program did not start"
            time.sleep(0.02)
        start = time.monotonic()
        assert q.cli("cancel", "1")[:2] == (
            0, "q-000001: being printed: its worker stops it and removes it\n")
        thread.join(10)
        assert time.monotonic() - start < 3.0
    finally:
        if thread.is_alive():  # put it back and stop, whatever went wrong
            worker.stop_deadline = time.time()
            worker.stop.set()
            thread.join(10)
        assert not thread.is_alive()
        if running.exists():
            with pytest.raises(ProcessLookupError):  # the program must be gone already
                os.kill(int(running.read_text()), 9)
    assert q.jobs()["000001"].state == "cancelled" and not q.has_data("000001")
    assert "outcome=cancelled" in (q.sd / "acct").read_text()


def test_a_spent_cancel_request_does_not_cancel_a_requeued_job(make_queue: MakeQueue) -> None:
    """A cancel that came as the job ended leaves its request; requeued, the job prints."""
    q = make_queue("save_when_done")
    q.spool()
    q.worker().serve(burst=True)
    # What `cancel` leaves when the program exits 0 between two of the worker's checks.
    SpoolStore(str(q.sd), "q").request_cancel("000001")
    assert q.cli("requeue", "1")[:2] == (0, f"q-000001: queued again{NO_WATCHER}\n")
    q.worker().serve(burst=True)
    assert q.jobs()["000001"].state == "done" and q.printed.read_text() == "job 0\njob 0\n"


# --- steering and looking -------------------------------------------------------------
def test_hold_release_requeue_cancel(make_queue: MakeQueue) -> None:
    """Each command's message per job state, and its exit status."""
    q = make_queue()
    (q.sd / "acct").write_text("")
    q.spool(3)
    for argv, rc, out, err in [
            (("hold", "1"), 0, "q-000001: held\n", ""),
            (("hold", "1"), 0, "q-000001: not queued (held)\n", ""),
            (("release", "q-000001"), 0, f"q-000001: released{NO_WATCHER}\n", ""),
            (("release", "000001"), 0, "q-000001: not held (queued)\n", ""),
            (("requeue", "2"), 0, "q-000002: already queued\n", ""),
            (("lprm", "3"), 0, "q-000003: cancelled\n", ""),
            (("cancel", "3"), 1, "", "lpfilter: q-000003: no such job\n"),
            (("hold",), 2, "", "lpfilter: hold: name the jobs (their ids or their users) or"
                               " give --all\n"),
            (("hold", "x7"), 1, "", "lpfilter: no job of user x7 to hold (a job id is written"
                                    " as print showed it, e.g. lp-000012)\n"),
            (("hold", "x-\u00b2"), 2, "", "lpfilter: not a job id: x-\u00b2 (write it as print"
                                         " showed it, e.g. q-000012)\n"),
            (("hold", "1"), 0, "q-000001: held\n", "")]:
        assert q.cli(*argv) == (rc, out, err), argv
    assert sorted(q.jobs()) == ["000001", "000002"] and not q.has_data("000003")
    q.program("cat >/dev/null\nexit 2\n")
    q.worker().serve(burst=True)
    assert q.jobs()["000002"].state == "failed"
    assert q.cli("requeue", "1", "2") == (
        0, f"q-000001: queued again{NO_WATCHER}\nq-000002: queued again{NO_WATCHER}\n", "")
    assert [(j.state, j.attempts) for j in q.jobs().values()] == [("queued", 0), ("queued", 0)]
    assert q.cli("cancel", "--all") == (0, "q-000001: cancelled\nq-000002: cancelled\n", "")
    assert q.jobs() == {} and os.listdir(q.sd / ".lpfilter/jobs") == []
    outcomes = [line.split("outcome=")[1].split()[0]
                for line in (q.sd / "acct").read_text().splitlines()]
    assert outcomes == ["cancelled", "failed", "cancelled", "cancelled"]


def test_failed_job_and_status(make_queue: MakeQueue) -> None:
    """A refused job stays failed with data and reason; status (text and --json) shows
    it, the program's output as printer status, and no watcher."""
    q = make_queue()
    q.program("cat >/dev/null\necho PAPER JAM\nexit 2\n")
    assert q.cli("print", q.doc(b"z" * 2048, "report.ps"))[:2] == (6, "q-000001\n")
    assert q.cli("print", "--hold", "-U", "carol", q.doc())[0] == 0
    job = q.jobs()["000001"]
    assert job.state == "failed" and q.has_data("000001")
    assert job.last_error == "lp filter prog.sh exited 2 (JABORT): PAPER JAM"
    assert (q.sd / "status").read_text().endswith(" PAPER JAM\n")
    rc, out, _ = q.cli("status")
    assert rc == 0 and out.startswith(f"Queue q: lp=|{q.prog}, spool {q.sd}\n"
                                      f"  log file: {q.sd / 'log'}\n  not served")
    assert "\n  printer: " in out and out.count("PAPER JAM") == 2
    rows = [line.split() for line in out.splitlines()[5:]]
    assert [r[:7] for r in rows] == [
        ["000001", "root", "report.ps", "2.0", "KiB", "failed", "1"],
        ["000002", "carol", "doc.txt", "6", "B", "held", "0"]]
    rc, out, _ = q.cli("lpq", "--json")
    data = json.loads(out)
    assert rc == 0 and data["served_by"] is None and data["queue"] == "q"
    assert data["printer_status"].endswith("PAPER JAM")
    assert [(j["id"], j["state"], j["size"]) for j in data["jobs"]] == [
        ("000001", "failed", 2048), ("000002", "held", 6)]


@pytest.mark.parametrize(("options", "body", "rc", "state"), [
    ("", "cat >/dev/null", 0, "done"),
    ("", "cat >/dev/null; exit 2", 6, "failed"),
    ("", "cat >/dev/null; exit 3", 6, "removed"),
    ("send_try#2:connect_interval#0", "cat >/dev/null; exit 1", 6, "failed"),
    ("", "cat >/dev/null; exit 6", 7, "held")])
def test_print_in_the_foreground_exits_with_the_result(make_queue: MakeQueue, options: str,
                                                       body: str, rc: int, state: str) -> None:
    """With no watcher, print sends the job itself and exits with the job's result."""
    q = make_queue(options)
    q.program(body + "\n")
    got, out, err = q.cli("print", q.doc())
    assert (got, out, q.jobs()["000001"].state) == (rc, "q-000001\n", state)
    if rc:  # (a retried job whose bytes had reached the program is flagged)
        assert re.fullmatch(rf"lpfilter: q-000001: {state}( \(possible duplicate\))?: "
                            r"lp filter prog\.sh exited \d \(.*\)\n", err), err
    else:
        assert err == ""


HOLDER = ("import sys, time\nfrom lpfilter.locks import ProcessLock\n"
          "lock = ProcessLock(sys.argv[1], 'test holder')\nassert lock.acquire()\n"
          "print('locked', flush=True)\ntime.sleep(60)\n")


def test_watch_once_on_a_busy_queue(make_queue: MakeQueue) -> None:
    """Another process holds the queue lock: watch --once says who and exits 9; status
    shows that process; print leaves the job to it."""
    q = make_queue()
    q.spool()
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(q.sd / ".lpfilter/queue.lock")],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert select.select([child.stdout], [], [], 15)[0], "the lock holder did not start"
        assert child.stdout.readline() == "locked\n"
        rc, _, err = q.cli("watch", "--once", "-P", "q")
        assert rc == ExitStatus.QUEUE_BUSY and f"served by pid {child.pid} (test holder" in err
        served = json.loads(q.cli("status", "--json")[1])["served_by"]
        assert (served["pid"], served["purpose"]) == (child.pid, "test holder")
        assert q.cli("print", q.doc())[:2] == (0, "q-000002\n")
        assert [j.state for j in q.jobs().values()] == ["queued", "queued"]
    finally:
        child.kill()
        child.wait(10)
        child.stdout.close()  # type: ignore[union-attr]
    assert q.cli("watch", "--once", "-P", "q")[0] == 0
    assert [j.state for j in q.jobs().values()] == ["done", "done"]


def test_print_wait_takes_over_when_the_watcher_goes_away(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`print --wait` never waits for a watcher that died: it serves the queue itself."""
    import os
    import subprocess
    import sys
    import time as clock
    sd = tmp_path / "sd"
    sd.mkdir(mode=0o700)
    out = tmp_path / "out"
    out.touch()
    printcap = tmp_path / "printcap"
    printcap.write_text(f"q:lp={out}:sd={sd}\n")
    monkeypatch.setenv("LPFILTER_PRINTCAP", str(printcap))
    monkeypatch.setenv("LPFILTER_LOCK_DIR", str(tmp_path / "locks"))
    (tmp_path / "f").write_text("taken over\n")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import os, sys, time\n"
         "from lpfilter.locks import ProcessLock\n"
         "from lpfilter.spool.store import SpoolStore\n"
         f"s = SpoolStore({str(sd)!r}, 'q'); s.ensure()\n"
         "lock = ProcessLock(os.path.join(s.state, 'queue.lock'), 'watch')\n"
         "lock.acquire(); print('held', flush=True); time.sleep(1.5)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        started = clock.monotonic()
        assert main(["print", "--wait", str(tmp_path / "f")]) == 0
        assert clock.monotonic() - started < 10
        assert out.read_text() == "taken over\n"
    finally:
        holder.kill()
        holder.wait(timeout=10)
        holder.stdout.close()  # type: ignore[union-attr]
    assert os.path.exists(sd / ".lpfilter" / "queue.lock")


def test_print_in_process_leaves_no_descriptor_open(
        tmp_path: Path, in_process_queue: Path) -> None:
    """``main(["print", ...])`` closes the spool's journal and its lock however it ends: run
    many times in one process (a test run, a program embedding it), each call left two."""
    (tmp_path / "f").write_text("one\n")
    assert main(["print", "--no-wait", "-P", "q", str(tmp_path / "f")]) == 0  # imports, caches
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        assert main(["print", "--no-wait", "-P", "q", str(tmp_path / "f")]) == 0
        assert main(["print", "-P", "q", str(tmp_path / "f")]) == 0  # printed in the foreground
    assert len(os.listdir("/proc/self/fd")) == before


def test_watch_once_over_a_printcap_without_queues_says_so(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    """An audit's cron job: the printcap emptied (or only comments left), watch --once
    exited 0 and said nothing, where EXIT STATUS gives 3 when the printcap defines no
    queue (status says so)."""
    printcap = tmp_path / "printcap"
    printcap.write_text("# every queue moved to the new server\n")
    rc = main(["--printcap", str(printcap), "watch", "--once"])
    assert (rc, capsys.readouterr().err) == (ExitStatus.CONFIG, (
        "lpfilter: the printcap defines no queue: watch --once has nothing to serve"
        " (lpfilter printcap --all lists the queues)\n"))
