"""The journal's limits and failure paths (issue 16's review, helper JFIX): a journal
lpfilter writes never grows past what readers accept; a commit whose sync fails leaves no
job without data; forged numbers and planted files are one-line refusals, never exit 70.
"""
from __future__ import annotations

import errno
import os
import sys
import time
from pathlib import Path

import pytest
from spoolkit import Kit, forge_job, forge_record, journal_path, kit, write_files  # noqa: F401

from lpfilter.cli import main
from lpfilter.errors import AccessError, SpoolFull
from lpfilter.job import Job
from lpfilter.spool import journallimit
from lpfilter.spool.jobdata import INLINE_MAX
from lpfilter.spool.journalformat import JOURNAL_MAX, Kind, encode
from lpfilter.spool.journallimit import JournalFull
from lpfilter.spool.store import SpoolStore
from lpfilter.status import ExitStatus


def _store(tmp_path: Path, queue: str = "q") -> tuple[SpoolStore, Path]:
    sd = tmp_path / "sd"
    sd.mkdir(mode=0o700)
    store = SpoolStore(str(sd), queue)
    store.ensure()
    return store, sd


def test_big_live_journal_is_compacted_before_it_passes_journal_max(tmp_path: Path) -> None:
    """~20 MiB of live jobs rewritten three times (a worker's retries): prune and the
    append path compact in time; the journal never passes JOURNAL_MAX and stays readable."""
    store, sd = _store(tmp_path)
    title = "t" * 200_000
    jobs = [Job(f"{n:06d}", "q", "u", "f", 1, time.time(), title=title) for n in range(1, 101)]
    store.write_all(jobs, durable=False)
    biggest = 0
    for round_ in range(3):
        for job in jobs:
            job.attempts = round_ + 1
            store.write(job, durable=False)
            biggest = max(biggest, journal_path(sd).stat().st_size)
        store.prune(keep=100, max_age=0, now=time.time(), keep_recent=0)
    assert biggest <= JOURNAL_MAX * 3 // 4
    fresh = SpoolStore(str(sd), "q")
    assert [j.attempts for j in fresh.jobs()] == [3] * 100
    store.close()
    fresh.close()


def test_append_past_the_limit_is_refused_before_writing(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Live jobs filling the journal (limit lowered to 4 MiB): the job that would pass 3/4
    of it, even compacted, is refused in one line naming the journal (SpoolFull: exit 10),
    nothing of it written; removing jobs still works and makes room."""
    monkeypatch.setattr(journallimit, "LIMIT", 4 << 20)
    store, sd = _store(tmp_path)
    title = "t" * 100_000
    written: list[Job] = []
    refused = None
    for n in range(1, 61):
        job = Job(f"{n:06d}", "q", "u", "f", 1, time.time(), title=title)
        try:
            store.write(job, durable=False)
        except SpoolFull as exc:
            refused = (job, exc)
            break
        written.append(job)
    assert refused is not None
    job, error = refused
    assert isinstance(error, JournalFull) and str(journal_path(sd)) in str(error)
    assert "\n" not in str(error)
    size = journal_path(sd).stat().st_size
    assert size <= (4 << 20) * 3 // 4
    fresh = SpoolStore(str(sd), "q")
    assert [j.id for j in fresh.jobs()] == [j.id for j in written]
    store.remove(written[0])
    for gone in written[1:4]:
        store.remove(gone)
    store.write(job, durable=False)
    assert job.id in [j.id for j in SpoolStore(str(sd), "q").jobs()]
    assert journal_path(sd).stat().st_size <= 4 << 20
    store.close()
    fresh.close()


def _no_room(fd: int) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def _staged(store: SpoolStore, count: int) -> list[tuple[Job, str]]:
    staged = []
    for n in range(count):
        job_id = store.next_id()
        fd, path = store.stage(job_id)
        os.write(fd, b"data")
        os.close(fd)
        staged.append((Job(job_id, "q", "u", f"f{n}", 4, time.time()), path))
    return staged


@pytest.mark.parametrize("fault", [_no_room, KeyboardInterrupt])
def test_commit_all_whose_sync_fails_leaves_no_job_without_data(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: object) -> None:
    """The JOB records are appended (the page cache is the file), then the fdatasync fails
    (ENOSPC at writeback) or SIGINT arrives: commit_all removes the data, so the journal
    must not name the jobs either (print reports them as not spooled)."""
    store, sd = _store(tmp_path)
    staged = _staged(store, 2)
    monkeypatch.setattr(os, "fdatasync", fault if fault is _no_room else
                        lambda fd: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises((SpoolFull, KeyboardInterrupt)):
        store.commit_all(staged)
    monkeypatch.undo()
    fresh = SpoolStore(str(sd), "q")
    assert [(j.id, fresh.has_data(j)) for j in fresh.jobs()] == []
    assert os.listdir(sd / ".lpfilter" / "jobs") == []
    assert fresh.next_id() == "000003"  # the numbers given stay given
    store.close()
    fresh.close()


def test_hot_folder_batch_whose_sync_fails_goes_back_and_is_no_job(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> None:
    """watch --once takes two dropped files, their records are appended, the fdatasync
    fails (ENOSPC): the files go back to the hot folder and the journal names no job."""
    kit = Kit(tmp_path)
    sd = kit.queue("q", "/dev/null", accounting=False)
    for name in ("a.txt", "b.txt"):
        (sd / name).write_text(name)
    monkeypatch.setenv("LPFILTER_PRINTCAP", str(kit.printcap))
    monkeypatch.setenv("LPFILTER_LOCK_DIR", str(kit.lock_dir))
    monkeypatch.setattr(os, "fdatasync", _no_room)
    assert main(["watch", "--once", "-P", "q"]) == ExitStatus.SPOOL_FULL
    monkeypatch.undo()
    capsys.readouterr()
    assert sorted(p.name for p in sd.iterdir() if p.suffix == ".txt") == ["a.txt", "b.txt"]
    store = SpoolStore(str(sd), "q")
    assert [(j.id, store.has_data(j)) for j in store.jobs()] == []
    store.close()


#: ``lpfilter print`` whose Nth fdatasync first sends the process a real SIGINT (Ctrl-C
#: arriving while a batch is being made durable: the moment the review's random tries hit).
_SIGINT_AT_SYNC = """
import os, signal, sys
from lpfilter.cli import main
real, count = os.fdatasync, [0]
def sync(fd):
    count[0] += 1
    if count[0] == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGINT)
    real(fd)
os.fdatasync = sync
sys.exit(main(sys.argv[2:]))
"""


def test_sigint_of_print_never_leaves_a_job_without_data(kit: Kit) -> None:
    """Ctrl-C (a real SIGINT) of ``print FILE x 150`` while its 1st..3rd fdatasync is due:
    print exits 130, every id it printed is in the queue, and every job in the queue has
    its data, and the queue holds no other (3 tries)."""
    sd = kit.queue("q", "/dev/null", accounting=False)
    files = [str(path) for path in write_files(kit.root, 150)]
    for nth in range(1, 4):  # 3 batches (64, 64, 22): 3 fdatasyncs
        proc = kit.spawn([sys.executable, "-c", _SIGINT_AT_SYNC, str(nth), "print",
                          "--no-wait", "-P", "q", *files])
        assert proc.wait(60) == ExitStatus.INTERRUPTED, proc.stderr()
        store = SpoolStore(str(sd), "q")
        jobs = {job.id: job for job in store.jobs()}
        assert [i for i, job in jobs.items() if not store.has_data(job)] == [], nth
        told = {line.removeprefix("q-") for line in proc.stdout().split()}
        assert told == set(jobs), nth  # told of exactly what was made durable
        for job in jobs.values():
            store.remove(job)
        store.close()


def test_forged_head_lsn_near_2_64_is_one_line_not_an_internal_error(kit: Kit) -> None:
    """The spool's owner writes a journal whose HEAD claims an LSN near 2**64 (the next
    append could not be encoded): print refuses in one line naming the journal (exit 5)."""
    sd = kit.queue("q", "/dev/null", accounting=False)
    doc = kit.root / "doc"
    doc.write_text("x\n")
    assert kit.run("print", "--no-wait", "-P", "q", str(doc)).returncode == 0
    journal_path(sd).write_bytes(encode((1 << 64) - 40, Kind.HEAD, b'{"last_id": "1"}'))
    run = kit.run("print", "--no-wait", "-P", "q", str(doc))
    assert run.returncode == ExitStatus.ACCESS, run.stderr
    assert "Traceback" not in run.stderr and str(journal_path(sd)) in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_a_forged_reserve_of_the_last_12_digit_number_is_skipped(kit: Kit) -> None:
    """A RESERVE of 999999999999 (after which no 12-digit number is left) is not taken:
    the next print gets an ordinary number and its job is in the queue."""
    sd = kit.queue("q", "/dev/null", accounting=False)
    doc = kit.root / "doc"
    doc.write_text("x\n")
    assert kit.run("print", "--no-wait", "-P", "q", str(doc)).returncode == 0
    forge_record(sd, Kind.RESERVE, b'{"last_id": "999999999999"}')
    run = kit.run("print", "--no-wait", "-P", "q", str(doc))
    assert run.returncode == 0 and run.stdout.split() == ["q-000002"], run.stderr
    store = SpoolStore(str(sd), "q")
    assert [job.id for job in store.jobs()] == ["000001", "000002"]
    store.close()


def test_a_job_with_the_last_12_digit_number_stops_numbering_in_one_line(kit: Kit) -> None:
    """A JOB record numbered 999999999999: no number is left, print refuses in one line
    naming the queue and the journal (exit 5) instead of a 13-digit id the replay skips."""
    sd = kit.queue("q", "/dev/null", accounting=False)
    doc = kit.root / "doc"
    doc.write_text("x\n")
    assert kit.run("print", "--no-wait", "-P", "q", str(doc)).returncode == 0
    fields = kit.tickets("q")["000001"] | {"id": "999999999999"}
    forge_job(sd, fields)
    run = kit.run("print", "--no-wait", "-P", "q", str(doc))
    assert run.returncode == ExitStatus.ACCESS, run.stderr
    assert str(journal_path(sd)) in run.stderr and "queue q" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert run.stdout == ""


def test_a_directory_planted_at_journal_next_is_refused_in_one_line(tmp_path: Path) -> None:
    """The spool's owner makes ``journal.next`` a directory: compaction refuses in one line
    naming it (an AccessError, not an IsADirectoryError: exit 5, not 70); jobs are kept."""
    store, sd = _store(tmp_path)
    store.write(Job("000001", "q", "u", "f", 1, time.time()))
    planted = sd / ".lpfilter" / "journal.next"
    planted.mkdir()
    with pytest.raises(AccessError) as caught:
        store.compact()
    assert str(planted) in str(caught.value) and "\n" not in str(caught.value)
    assert planted.is_dir()
    assert [job.id for job in SpoolStore(str(sd), "q").jobs()] == ["000001"]
    store.close()


def test_a_compaction_failing_on_a_full_disk_leaves_no_journal_next(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The compacted file cannot be made durable (ENOSPC): it is removed, not left holding
    the free space; the journal is untouched and the compaction can run again later."""
    store, sd = _store(tmp_path)
    jobs = [Job(f"{n:06d}", "q", "u", "f" * 200, 1, time.time()) for n in range(1, 51)]
    store.write_all(jobs, durable=False)
    before = journal_path(sd).read_bytes()
    monkeypatch.setattr(os, "fdatasync", _no_room)
    with pytest.raises(SpoolFull):
        store.compact()
    monkeypatch.undo()
    assert sorted(os.listdir(sd / ".lpfilter")) == ["jobs", "journal", "journal.lock",
                                                    "refused", "tmp"]
    assert journal_path(sd).read_bytes() == before
    store.compact()
    assert len(SpoolStore(str(sd), "q").jobs()) == 50
    store.close()


def test_a_new_journal_numbers_after_the_one_moved_aside_and_the_data_files(
        kit: Kit) -> None:
    """Three jobs printed (their data gone), one left queued; the journal is damaged and
    moved aside by the admin: the new journal's numbers go on after the highest the spool
    still shows (the moved-aside journal's, the data files'): no number is given twice."""
    sd = kit.queue("q", "/dev/null", accounting=False)
    doc = kit.root / "doc"
    doc.write_text("x\n" * INLINE_MAX)  # a data file of its own (not in the journal)
    for _ in range(3):
        assert kit.run("print", "-P", "q", str(doc)).returncode == 0
    path = journal_path(sd)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # the last record damaged: the earlier ones still read
    path.write_bytes(bytes(data))
    path.rename(sd / ".lpfilter" / "journal.damaged")
    run = kit.run("print", "--no-wait", "-P", "q", str(doc))
    assert run.stdout.split() == ["q-000004"], run.stderr
    jobs = sd / ".lpfilter" / "jobs"
    (jobs / "000004.data").rename(jobs / "000009.data")  # a data file numbered higher
    path.rename(sd / ".lpfilter" / "journal.damaged2")
    run = kit.run("print", "--no-wait", "-P", "q", str(doc))
    assert run.stdout.split() == ["q-000010"], run.stderr
