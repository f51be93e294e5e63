"""``print`` of many files looks things up once, not once a file (issue 16: a third of
its time for 1000 files): job numbers reserved a batch at a time by one record, the
queue's lpc state read again only when its file changed, and the batch's data files
fsynced from a few threads at once, all before their records are written. The promise
holds as before: no record names a job whose data is not durable, and a file refused
stops the rest after the ones before it are spooled."""
from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest
from spoolkit import Kit, in_process_queue, job_ids, kit, write_files  # noqa: F401

from lpfilter import printcap
from lpfilter.cli import main
from lpfilter.job import Job
from lpfilter.spool import submit
from lpfilter.spool.jobdata import INLINE_MAX
from lpfilter.spool.control import QueueControl, write_control
from lpfilter.spool.journalformat import Kind, decode, first_lsn
from lpfilter.spool.store import SpoolStore
from lpfilter.status import ExitStatus


#: A file too big for the journal: its job gets a data file of its own (spool/jobdata.py).
FILE_SIZED = INLINE_MAX + 1


@pytest.fixture
def queue(in_process_queue: Path) -> Path:
    return in_process_queue


def _records(sd: Path, kind: Kind) -> int:
    data = (sd / ".lpfilter" / "journal").read_bytes()
    records, _ = decode(data, first_lsn(data))
    return sum(record.kind == kind for record in records)


def test_numbers_are_reserved_a_batch_at_a_time_and_stay_consecutive(
        queue: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = write_files(tmp_path / "in", 150)
    assert main(["print", "--no-wait", "-P", "q", *map(str, files)]) == 0
    told = capsys.readouterr().out.split()
    assert told == [f"q-{n:06d}" for n in range(1, 151)]
    assert _records(queue, Kind.RESERVE) == 3  # 64, 64, 22: one record a batch
    assert main(["print", "--no-wait", "-P", "q", str(files[0])]) == 0
    assert capsys.readouterr().out.split() == ["q-000151"]  # no number left unused


def test_a_foreground_print_lends_its_store_to_the_worker_no_job_is_parsed_again(
        queue: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """``print -P q FILE...`` that serves the queue itself: its worker had a store of its
    own, which replayed every job the print had just written, and the print's store then
    read every record the worker wrote (two JSON parses a job, and more: ~10 % of 1000
    files' time). The worker now uses the print's store: the records each writes are
    taken in as they are written, never read back and parsed."""
    parsed = [0]
    real = Job.from_json.__func__  # type: ignore[attr-defined]

    def from_json(cls: type[Job], text: str) -> Job:
        parsed[0] += 1
        return real(cls, text)

    monkeypatch.setattr(Job, "from_json", classmethod(from_json))
    files = write_files(tmp_path / "in", 100)
    assert main(["print", "-P", "q", *map(str, files)]) == 0
    assert len(capsys.readouterr().out.split()) == 100
    assert parsed[0] < 10, parsed[0]
    store = SpoolStore(str(queue), "q")
    try:
        assert sorted(job.state.value for job in store.jobs()) == ["done"] * 100
    finally:
        store.close()


def test_next_ids_passes_over_a_data_file_a_crash_left(tmp_path: Path) -> None:
    store = SpoolStore(str(tmp_path), "q")
    store.ensure("print")
    try:
        assert store.next_id() == "000001"
        Path(store.data_path("000003")).write_bytes(b"left by a crash")
        assert store.next_ids(3) == ["000002", "000004", "000005"]
        assert store.next_id() == "000006"
    finally:
        store.close()


def test_the_lpc_state_is_read_again_when_its_file_changes(queue: Path) -> None:
    """A print of many files looks at the lpc state before each (one stat): a state written
    by lpc between two files is seen."""
    entry = printcap.load([os.environ["LPFILTER_PRINTCAP"]]).lookup("q")
    state = queue / ".lpfilter"
    state.mkdir(mode=0o700, exist_ok=True)
    store = SpoolStore(str(queue), "q")
    control = submit._Spooling(entry, store, 1).control
    try:
        assert not control.read().spooling_disabled
        write_control(str(state), QueueControl(spooling_disabled=True), os.getuid())
        assert control.read().spooling_disabled
        write_control(str(state), QueueControl(hold_all=True), os.getuid())
        assert control.read().hold_all and not control.read().spooling_disabled
    finally:
        store.close()


def test_every_data_file_is_synced_before_any_record_names_it(
        queue: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: set[int] = set()
    lock = threading.Lock()
    real_fsync, real_commit = os.fsync, SpoolStore.commit_all
    unsynced: list[str] = []

    def fsync(fd: int) -> None:
        real_fsync(fd)
        with lock:
            synced.add(os.fstat(fd).st_ino)

    def commit_all(self: SpoolStore, staged: list[tuple[object, str]]) -> None:
        unsynced.extend(path for _, path in staged if os.stat(path).st_ino not in synced)
        real_commit(self, staged)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(SpoolStore, "commit_all", commit_all)
    files = write_files(tmp_path / "in", 70, size=FILE_SIZED)
    assert main(["print", "--no-wait", "-P", "q", *map(str, files)]) == 0
    assert unsynced == []
    assert len(synced) >= 70


def test_a_sync_that_fails_spools_nothing_of_its_batch_and_leaves_no_file(
        queue: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """ENOSPC from one thread's fsync (a full disk at writeback): exit 10, the batches
    before it spooled and printed, none of its own, nothing left in tmp/."""
    real_fsync, calls = os.fsync, [0]
    lock = threading.Lock()

    def fsync(fd: int) -> None:
        with lock:
            calls[0] += 1
            nth = calls[0]
        if nth == submit.BATCH + 10:  # in the second batch
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    files = write_files(tmp_path / "in", 100, size=FILE_SIZED)
    assert main(["print", "--no-wait", "-P", "q", *map(str, files)]) == ExitStatus.SPOOL_FULL
    out, err = capsys.readouterr()
    assert out.split() == [f"q-{n:06d}" for n in range(1, submit.BATCH + 1)]
    assert "full file system" in err and "Traceback" not in err, err
    monkeypatch.undo()
    store = SpoolStore(str(queue), "q")
    try:
        assert sorted(job.id for job in store.jobs()) == [f"{n:06d}" for n in
                                                          range(1, submit.BATCH + 1)]
        assert all(store.has_data(job) for job in store.jobs())
        assert os.listdir(store.tmp_dir) == []
    finally:
        store.close()


def test_a_foreground_print_of_many_files_reads_each_job_a_few_times_not_once_per_job(
        queue: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """``print -P q FILE...`` serves the queue until its jobs are final, asking before each
    job it sends whether they all are: it read every job each time (200 files: 40,000
    reads; 1000 files: a million, 8.7 s of 9). Now a job found final is not read again."""
    reads = [0]
    real_read = SpoolStore.read

    def read(self: SpoolStore, job_id: str) -> object:
        reads[0] += 1
        return real_read(self, job_id)

    monkeypatch.setattr(SpoolStore, "read", read)
    files = write_files(tmp_path / "in", 200)
    assert main(["print", "-P", "q", *map(str, files)]) == 0
    capsys.readouterr()
    store = SpoolStore(str(queue), "q")
    try:
        assert sorted(job.state.value for job in store.jobs()) == ["done"] * 200
    finally:
        store.close()
    assert reads[0] < 10 * 200, reads[0]


def test_a_file_refused_in_the_middle_says_what_became_of_the_rest(kit: Kit) -> None:  # noqa: F811
    """print a b c, b larger than mx: a is spooled (its id printed), and the one line about
    b says that it and the file after it were not spooled (it said only b's reason)."""
    kit.queue("q", "/dev/null", mx=1)
    for name, size in (("a", 10), ("b", 5000), ("c", 10)):
        (kit.root / name).write_bytes(b"x" * size)
    done = kit.run("print", "--no-wait", "-P", "q", *(str(kit.root / n) for n in "abc"))
    assert done.returncode == 6 and len(job_ids(done.stdout, "q")) == 1, done
    assert done.stderr == (f"lpfilter: {kit.root / 'b'}: larger than queue q's limit of 1 KiB"
                           " (mx in the printcap); it and the 1 file(s) after it were not"
                           " spooled\n")
    done = kit.run("print", "--no-wait", "-P", "q", *(str(kit.root / n) for n in "ba"))
    assert done.returncode == 6 and done.stdout == "", done
    assert done.stderr.endswith("(mx in the printcap); nothing was printed\n"), done.stderr
