"""The worker's batches in the journal (issue 16 phase 2, spool/marks.py): one durable MARK
per batch of due jobs, a covered job's START, FIRST and outcome unsynced, a data file
removed only once its outcome is durable, the recovery by boot id, the status file once a
batch; and a simulated power cut of the real worker at every journal write.

In-process (``lpfilter.cli.main`` and ``QueueWorker``) with real files and real pipe
programs; ``os.fdatasync``/``os.unlink``/``os.write`` are wrapped to watch their order
(they still do their work). Never timed.
"""
from __future__ import annotations

import math
import os
import random
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from lpfilter import printcap
from lpfilter.cli import main
from lpfilter.job import FINISHED, Job, JobState
from lpfilter.spool import idle, journalformat, ledger, marks, outcome
from lpfilter.spool.jobindex import JobIndex, replay
from lpfilter.spool.marks import settle
from lpfilter.spool.journal import Journal
from lpfilter.spool.journalformat import Kind, decode, first_lsn, mark_record
from lpfilter.spool.records import QueueRecords
from lpfilter.spool.store import SpoolStore
from lpfilter.spool.worker import QueueWorker
from lpfilter.status import ExitStatus

#: The printer: each job's bytes appended to OUT/JOB.out (twice printed: twice the bytes).
PRINTER = '#!/bin/sh\ncat >> "{out}/$LPFILTER_JOB.out"\n'


@dataclass
class Spool:
    """Queue q: printcap, spool directory, a pipe printer writing one file per job."""

    root: Path

    def __post_init__(self) -> None:
        self.sd, self.out = self.root / "sd", self.root / "out"
        for path in (self.sd, self.out, self.root / "locks"):
            path.mkdir(mode=0o700)
        self.printcap = self.root / "printcap"
        self.setup(f"|{self.program(PRINTER.format(out=self.out))}")

    def program(self, text: str) -> Path:
        path = self.root / "printer.sh"
        path.write_text(text)
        path.chmod(0o755)
        return path

    def setup(self, lp: str, options: str = "") -> None:
        self.printcap.write_text(f"q:sd={self.sd}:lp={lp}:user=root:done_jobs#100000"
                                 f":connect_interval#0:{options}\n")

    def spool(self, count: int, size: int = 1024) -> dict[str, bytes]:
        """``count`` jobs of ``size`` bytes each (different bytes), committed by print:
        their data by job id."""
        files, datas = [], []
        for n in range(count):
            data = (f"job {n:05d} ".encode() * (size // 10 + 1))[:size - 1] + b"\n"
            files.append(self.root / f"f{n}")
            files[-1].write_bytes(data)
            datas.append(data)
        before = len(self.jobs()) if (self.sd / ".lpfilter").exists() else 0
        assert main(["--printcap", str(self.printcap), "print", "--no-wait", "-P", "q",
                     *map(str, files)]) == 0
        return {f"{before + n + 1:06d}": data for n, data in enumerate(datas)}

    def watch_once(self) -> int:
        return main(["--printcap", str(self.printcap), "watch", "--once", "-P", "q"])

    def worker(self) -> QueueWorker:
        entry = printcap.load([str(self.printcap)]).lookup("q")
        return QueueWorker(entry, lock_dir=str(self.root / "locks"))

    def jobs(self) -> dict[str, Job]:
        store = SpoolStore(str(self.sd), "q")
        try:
            return {job.id: job for job in store.jobs()}
        finally:
            store.close()  # many stores in one test: no descriptor left open

    def journal(self) -> Path:
        return self.sd / ".lpfilter" / "journal"

    def data_files(self) -> list[str]:
        return sorted(os.listdir(self.sd / ".lpfilter" / "jobs"))

    def printed(self, job_id: str) -> bytes | None:
        path = self.out / f"{job_id}.out"
        return path.read_bytes() if path.exists() else None


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Spool:
    monkeypatch.setenv("LPFILTER_LOCK_DIR", str(tmp_path / "locks"))
    return Spool(tmp_path)


def _journal_fd(fd: int) -> bool:
    try:
        return os.path.basename(os.readlink(f"/proc/self/fd/{fd}")) == "journal"
    except OSError:
        return False


def _index(spool: Spool) -> JobIndex:
    return replay(spool.journal().read_bytes(), "q")


# --- one durable MARK per batch ---------------------------------------------------------
def _note_syncs(monkeypatch: pytest.MonkeyPatch, *, journal_only: bool = False) -> list[int]:
    """The descriptors fdatasynced from now on (``journal_only``: the journal's), in order."""
    syncs: list[int] = []
    real = os.fdatasync

    def noting(fd: int) -> None:
        if not journal_only or _journal_fd(fd):
            syncs.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", noting)
    return syncs


def _send_begins(store: SpoolStore, job_id: str) -> Job:
    """What the worker records as a send of ``job_id`` begins: START, then the first
    byte's record (``send_started``)."""
    job = store.read(job_id)
    assert job is not None
    job.attempts += 1
    job.move_to(JobState.ACTIVE)
    store.start(job, os.getpid(), 0.0)
    job.send_started = True
    store.first_byte(job)
    return job


def test_watch_once_of_200_jobs_syncs_the_journal_once_a_batch(
        spool: Spool, monkeypatch: pytest.MonkeyPatch) -> None:
    """200 spooled jobs: watch --once fdatasyncs the journal at most ceil(200/64) + 3 times
    (a MARK per 64 jobs, one at the end; before: two per job); every job is done, printed
    exactly once and byte-exact; no data file is left; no mark is left open."""
    datas = spool.spool(200)
    syncs = _note_syncs(monkeypatch, journal_only=True)
    assert spool.watch_once() == ExitStatus.OK
    monkeypatch.undo()
    assert 1 <= len(syncs) <= math.ceil(200 / 64) + 3, len(syncs)
    jobs = spool.jobs()
    assert sorted(jobs) == sorted(datas)
    assert all(job.state == JobState.DONE and job.attempts == 1
               and not job.possible_duplicate for job in jobs.values())
    assert {job_id: spool.printed(job_id) for job_id in datas} == datas
    assert spool.data_files() == []
    index = _index(spool)
    assert index.marked == {} and all(j.state == JobState.DONE for j in index.jobs.values())


def test_jobs_that_come_one_at_a_time_share_the_next_marks_flush(
        spool: Spool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A daemon's jobs that come one at a time (an LPD server's) are a batch each: the
    worker's idle-time flush waits FLUSH_DELAY, and the next batch's MARK makes the last
    job's outcome durable instead: one flush of the journal a job, not two, and one more
    as the worker closes. Each job is printed once, and no data file is left."""
    monkeypatch.setattr(idle, "FLUSH_DELAY", 3600.0)  # never within the test
    worker = spool.worker()
    syncs: list[int] = []
    real = os.fdatasync

    def noting(fd: int) -> None:  # the worker's (this thread's), not print's
        if _journal_fd(fd) and threading.current_thread() is threading.main_thread():
            syncs.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", noting)
    datas: dict[str, bytes] = {}

    def feed() -> None:  # the next job once the last one is printed, as a client would
        for _ in range(5):
            datas.update(spool.spool(1, size=20_000))
            worker.wake()
            for _ in range(2000):
                if worker.stop.is_set() or all(spool.printed(j) for j in datas):
                    break
                threading.Event().wait(0.01)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    worker.serve(burst=False, until=lambda: (len(datas) == 5 and all(
        spool.printed(j) for j in datas)) or not feeder.is_alive())
    feeder.join(20)
    monkeypatch.undo()
    assert {j: spool.printed(j) for j in datas} == datas and len(datas) == 5
    assert len(syncs) == 5 + 1, syncs
    assert spool.data_files() == []


def test_a_data_file_goes_only_once_its_outcome_is_durable(
        spool: Spool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each data file a pass removes: at that moment the journal's durable part (what an
    fdatasync covered) already says its job ended. (Outcomes are written unsynced: a
    removal at once would leave, after a power cut, a queued job whose data is gone.)"""
    datas = spool.spool(100)
    durable = [0]
    removed: list[str] = []
    early: list[tuple[str, object]] = []  # removed while the durable journal said otherwise
    real_sync, real_unlink = os.fdatasync, os.unlink

    def noting_sync(fd: int) -> None:
        size = os.fstat(fd).st_size if _journal_fd(fd) else None
        real_sync(fd)
        if size is not None:
            durable[0] = size

    def checking_unlink(path: str | bytes | os.PathLike[str], *args: object,
                        **kwargs: object) -> None:
        name = os.fsdecode(path)
        if name.endswith(".data") and os.path.dirname(name) == str(
                spool.sd / ".lpfilter" / "jobs"):
            job_id = os.path.basename(name)[:-5]
            said = replay(spool.journal().read_bytes()[:durable[0]], "q").jobs.get(job_id)
            if said is None or said.state not in FINISHED:
                early.append((job_id, said and said.state))
            removed.append(job_id)
        real_unlink(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "fdatasync", noting_sync)
    monkeypatch.setattr(os, "unlink", checking_unlink)
    assert spool.watch_once() == ExitStatus.OK
    monkeypatch.undo()
    assert early == []
    assert sorted(removed) == sorted(datas) and spool.data_files() == []


# --- recovery by boot id ---------------------------------------------------------------
def _forge_mark(spool: Spool, ids: list[str], boot: str) -> None:
    """A MARK as a worker of ``boot`` left it (durable), through the journal's own API."""
    index = JobIndex("q")
    journal = Journal(str(spool.sd / ".lpfilter"), os.getuid(), index.apply, index.reset)
    try:
        with journal.locked():
            end = journal.append([mark_record(ids, boot)])
        journal.sync_to(end)
    finally:
        journal.close()


def test_a_mark_of_another_boot_flags_its_jobs_and_they_print_again(spool: Spool) -> None:
    """A power cut after a batch's MARK (another boot now): the jobs it names may have
    sent bytes whose FIRST was lost: queued again, flagged possible duplicates, logged,
    printed; a job outside the mark is not flagged; the recovery spends the mark."""
    datas = spool.spool(3)
    _forge_mark(spool, ["000001", "000002"], "a-boot-before-the-power-cut")
    assert spool.watch_once() == ExitStatus.OK
    jobs = spool.jobs()
    assert [(j.state, j.possible_duplicate, j.attempts)
            for j in jobs.values()] == [("done", True, 1), ("done", True, 1), ("done", False, 1)]
    assert {job_id: spool.printed(job_id) for job_id in datas} == datas
    log = (spool.sd / "log").read_text() if (spool.sd / "log").exists() else ""
    assert log.count("requeued after a power cut during its batch (possible duplicate") == 2, log
    assert _index(spool).marked == {}


def test_a_mark_of_this_boot_without_start_is_not_flagged(spool: Spool) -> None:
    """A worker killed (same boot) after its MARK, before any START: its page cache is the
    file, so nothing was sent: the jobs print once, not flagged; the mark is spent."""
    datas = spool.spool(2)
    _forge_mark(spool, ["000001", "000002"], journalformat.boot_id())
    assert _index(spool).marked == {"000001": journalformat.boot_id(),
                                    "000002": journalformat.boot_id()}
    worker = spool.worker()
    worker.store.ensure("watch")
    worker.recover()
    worker.close()
    index = _index(spool)
    assert index.marked == {}  # spent by the recovery's one write
    assert [(j.state, j.possible_duplicate) for j in index.jobs.values()] == [
        ("queued", False), ("queued", False)]
    assert spool.watch_once() == ExitStatus.OK
    assert {job_id: spool.printed(job_id) for job_id in datas} == datas
    assert not any(j.possible_duplicate for j in spool.jobs().values())


# --- the status file --------------------------------------------------------------------
@pytest.mark.parametrize(("every", "expected"), [
    (0.0, ["job 000064 done", "job 000070 failed", "job 000128 done", "job 000130 done"]),
    (3600.0, ["job 000064 done", "job 000070 failed", "job 000130 done"])])
def test_the_status_file_is_written_once_a_batch_and_a_failure_at_once(
        spool: Spool, monkeypatch: pytest.MonkeyPatch, every: float,
        expected: list[str]) -> None:
    """Jobs done are news for the status file once a batch (the last one), and while
    batches follow each other at most every STATUS_EVERY seconds (the last one is said
    when the queue goes idle); a failed job is said at once, and not overwritten by an
    older "done"."""
    monkeypatch.setattr(ledger, "STATUS_EVERY", every)
    spool.spool(130)
    os.unlink(spool.sd / ".lpfilter" / "jobs" / "000070.data")  # fails: no data
    said: list[str] = []
    real = QueueRecords.status

    def noting(self: QueueRecords, message: str) -> None:
        said.append(message)
        real(self, message)

    monkeypatch.setattr(QueueRecords, "status", noting)
    assert spool.watch_once() == ExitStatus.JOB_FAILED
    monkeypatch.undo()
    assert [line.split(":")[0] for line in said] == expected, said
    assert "job 000070 failed: its spooled data file is missing" in said


def test_a_daemons_last_status_line_is_written_when_due(
        spool: Spool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Jobs that come one at a time (an LPD server's, a batch each) are said at most every
    STATUS_EVERY seconds: the second job's line waits, and the idle worker wakes for it
    when it is due (no new job, no wake-up needed)."""
    monkeypatch.setattr(ledger, "STATUS_EVERY", 0.5)
    said: list[str] = []
    real = QueueRecords.status

    def noting(self: QueueRecords, message: str) -> None:
        said.append(message.split(":")[0])
        real(self, message)

    monkeypatch.setattr(QueueRecords, "status", noting)
    spool.spool(1)
    worker = spool.worker()
    spooled: list[bool] = []

    def second() -> bool:  # the worker's loop asks this: the first job is said at once
        if said == ["job 000001 done"] and not spooled:
            spooled.append(bool(spool.spool(1)))
            worker.wake()
        return said[-1:] == ["job 000002 done"]

    done = threading.Event()
    thread = threading.Thread(target=lambda: (worker.serve(burst=False, until=second),
                                              done.set()), daemon=True)
    thread.start()
    if not done.wait(30):
        worker.stop.set()
        thread.join(10)
    assert said == ["job 000001 done", "job 000002 done"]


# --- a power cut of the real worker ------------------------------------------------------
@dataclass
class Moment:
    """What a power cut at one instant could leave: the journal as written (the page
    cache), how much of it an fdatasync had made durable, the data files still there, and
    the jobs whose first byte may have left."""

    journal: bytes
    durable: int
    data: list[str]
    started: set[str]


def _record_moments(spool: Spool, monkeypatch: pytest.MonkeyPatch) -> list[Moment]:
    """Wrap os.write, os.fdatasync, os.unlink and the store's first_byte: a Moment after
    each journal write and data-file removal, and before each journal fdatasync."""
    moments: list[Moment] = []
    durable, started = [spool.journal().stat().st_size], set[str]()  # print synced it
    real_write, real_sync, real_unlink = os.write, os.fdatasync, os.unlink
    real_first = SpoolStore.first_byte

    def note() -> None:
        moments.append(Moment(spool.journal().read_bytes(), durable[0], spool.data_files(),
                              set(started)))

    def writing(fd: int, data: bytes) -> int:
        done = real_write(fd, data)
        if _journal_fd(fd):
            note()
        return done

    def syncing(fd: int) -> None:
        journal = _journal_fd(fd)
        if journal:
            note()
            size = os.fstat(fd).st_size
        real_sync(fd)
        if journal:
            durable[0] = size

    def unlinking(path: str | bytes | os.PathLike[str], *args: object, **kwargs: object) -> None:
        real_unlink(path, *args, **kwargs)  # type: ignore[arg-type]
        if os.fsdecode(path).endswith(".data"):
            note()

    def first_byte(store: SpoolStore, job: Job) -> None:
        started.add(job.id)
        real_first(store, job)

    monkeypatch.setattr(os, "write", writing)
    monkeypatch.setattr(os, "fdatasync", syncing)
    monkeypatch.setattr(os, "unlink", unlinking)
    monkeypatch.setattr(SpoolStore, "first_byte", first_byte)
    return moments


def _cuts(moment: Moment, rng: random.Random) -> list[int]:
    """Where the journal may end after the cut: a record boundary from the durable end to
    the written end (the durable end, one between, the written end)."""
    base = first_lsn(moment.journal)
    records, _ = decode(moment.journal, base)
    ends = [r.end - base for r in records if r.end - base >= moment.durable]
    between = ends[1:-1]
    return sorted({ends[0], ends[-1], *([rng.choice(between)] if between else [])})


def _restart(root: Path, moment: Moment, cut: int,
             datas: dict[str, bytes]) -> dict[str, tuple[Job, bool]]:
    """A spool as the cut left it, recovered by a new worker (another boot): its jobs."""
    sd = root / "sd"
    shutil.rmtree(sd, ignore_errors=True)
    (sd / ".lpfilter" / "jobs").mkdir(parents=True, mode=0o700)
    sd.chmod(0o700)
    (sd / ".lpfilter").chmod(0o700)
    (sd / ".lpfilter" / "journal").write_bytes(moment.journal[:cut])
    (sd / ".lpfilter" / "journal").chmod(0o600)
    for name in moment.data:
        (sd / ".lpfilter" / "jobs" / name).write_bytes(datas[name[:-5]])
    (root / "printcap").write_text(f"q:sd={sd}:lp=/dev/null\n")
    worker = QueueWorker(printcap.load([str(root / "printcap")]).lookup("q"),
                         lock_dir=str(root / "locks"))
    try:
        worker.store.ensure("watch")
        worker.recover()
    finally:
        worker.close()
    store = SpoolStore(str(sd), "q")
    try:
        return {job.id: (job, store.has_data(job)) for job in store.jobs()}
    finally:
        store.close()


def test_a_power_cut_at_any_moment_of_the_real_worker_loses_no_job(
        spool: Spool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The real worker sends 20 jobs in batches of 8 (so three MARKs). At each journal
    write, fdatasync and data-file removal the journal is taken as a power cut would leave
    it (the durable part and any whole records after it) with the data files still there;
    a new worker (another boot) recovers it: every job is there; none active; a job not
    done still has its data; one whose first byte may have left is flagged."""
    monkeypatch.setattr(marks, "BATCH_JOBS", 8)
    monkeypatch.setattr(journalformat, "boot_id", lambda: "the-boot-before-the-cut")
    datas = spool.spool(20)
    moments = _record_moments(spool, monkeypatch)
    assert spool.watch_once() == ExitStatus.OK
    monkeypatch.undo()
    assert {job_id: spool.printed(job_id) for job_id in datas} == datas
    monkeypatch.setenv("LPFILTER_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setattr(journalformat, "boot_id", lambda: "the-boot-after-the-cut")
    (tmp_path / "after").mkdir()
    rng = random.Random(16)
    restarts = 0
    for moment in moments:
        for cut in _cuts(moment, rng):
            jobs = _restart(tmp_path / "after", moment, cut, datas)
            restarts += 1
            assert sorted(jobs) == sorted(datas), cut
            for job_id, (job, has_data) in jobs.items():
                where = (job_id, cut, moment.durable, len(moment.journal), job.state)
                assert job.state in (JobState.DONE, JobState.QUEUED), where
                if job.state == JobState.DONE:
                    assert job_id in moment.started, where
                    continue
                assert has_data, where  # never a queued job whose data is gone
                if job_id in moment.started:
                    assert job.possible_duplicate, where
    assert restarts > len(moments) > 60


# --- covered or not ---------------------------------------------------------------------
def test_a_job_whose_mark_was_spent_keeps_the_durable_path(
        spool: Spool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job marked by this store, whose mark another process's JOB record spent since
    (an lpc change), is no longer covered: its "maybe sent" is a durable JOB record (an
    fdatasync before the first byte), not an unsynced FIRST a power cut could lose; a job
    still covered writes its FIRST without one."""
    spool.spool(2)
    store = SpoolStore(str(spool.sd), "q")
    store.mark(store.jobs())
    assert store.covered("000001") and store.covered("000002")
    other = SpoolStore(str(spool.sd), "q")
    changed = other.read("000001")
    assert changed is not None
    changed.job_class = "B"
    other.write(changed, durable=False)  # another process: the mark of 000001 is spent
    other.close()
    syncs = _note_syncs(monkeypatch)
    for job_id in ("000002", "000001"):
        _send_begins(store, job_id)
        if job_id == "000002":
            assert syncs == []  # covered: START and FIRST unsynced
    monkeypatch.undo()
    assert len(syncs) == 1
    store.close()
    index = _index(spool)
    assert {j.id: (j.state, j.send_started) for j in index.jobs.values()} == {
        "000001": ("active", True), "000002": ("active", True)}
    assert index.marked == {"000002": journalformat.boot_id()}


def test_the_recovery_writes_every_interrupted_job_back_with_one_sync(
        spool: Spool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Five jobs left active by a crash (two had sent bytes): the recovery requeues them
    all, flags the two, logs each as before, in one write and one fdatasync (before: one
    of each per job)."""
    spool.spool(5)
    store = SpoolStore(str(spool.sd), "q")
    for job in store.jobs():
        job.attempts = 1
        job.move_to(JobState.ACTIVE)
        job.worker = (2 ** 22 + 1, 1.0)
        job.send_started = job.id in ("000002", "000004")
        store.write(job)
    store.close()
    worker = spool.worker()
    worker.store.ensure("watch")
    syncs = _note_syncs(monkeypatch, journal_only=True)
    worker.recover()
    monkeypatch.undo()
    worker.close()
    assert len(syncs) == 1
    assert {j.id: (j.state, j.possible_duplicate, j.worker) for j in spool.jobs().values()} == {
        f"00000{n}": ("queued", n in (2, 4), None) for n in range(1, 6)}
    log = (spool.sd / "log").read_text()
    assert log.count("requeued after an interrupted send") == 5
    assert log.count("requeued after an interrupted send (possible duplicate: bytes had"
                     " reached the printer)") == 2


def test_progress_records_during_a_send_keep_the_job_flagged_and_its_outcome_durable(
        spool: Spool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long send writes JOB records of its progress (ProgressRecorder): they carry
    "sending started", so a power cut anywhere after the MARK leaves the job flagged
    (whether they survive or not); they spend the job's mark, so its outcome is then
    written durably (one fdatasync), as a job no mark covers."""
    monkeypatch.setattr(outcome, "PROGRESS_EVERY", 0.0)
    spool.spool(1)
    store = SpoolStore(str(spool.sd), "q")
    store.mark(store.jobs())
    durable = spool.journal().stat().st_size  # the MARK's fdatasync covered it all
    job = _send_begins(store, "000001")
    recorder = outcome.ProgressRecorder(store, job)
    recorder.sent = 512
    recorder.record()  # a JOB record: active, 512 bytes, sending started
    assert not store.covered("000001")
    written = spool.journal().read_bytes()
    records, _ = decode(written, first_lsn(written))
    assert [r.kind for r in records][-3:] == [Kind.START, Kind.FIRST, Kind.JOB]
    for cut in [r.end - first_lsn(written) for r in records if r.end > durable - 1]:
        index = replay(written[:cut], "q")
        [settled] = settle(index, "another-boot")
        assert (settled.state, settled.possible_duplicate) == (JobState.QUEUED, True), cut
    syncs = _note_syncs(monkeypatch)
    job.move_to(JobState.DONE)
    store.outcome(job)
    monkeypatch.undo()
    store.close()
    assert len(syncs) == 1
