"""A small job ``print`` spools keeps its bytes in the queue's journal, just before its JOB
record in the same write (issue 16, spool/jobdata.py): no data file is made, fsynced or
removed for it. The promise holds: a torn write never leaves a job without its bytes, a
compaction keeps the bytes of the jobs not finished, the printer gets them byte-exact, and
queues whose programs could open the data file by name keep files."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from filterkit import MakePrinter, dest, printer, stored  # noqa: F401

from lpfilter.cli import main
from lpfilter.job import Job, JobState
from lpfilter.spool import jobdata, journallimit
from lpfilter.spool.jobindex import replay
from lpfilter.spool.journalformat import (Kind, data_record, decode, encode_all, first_lsn,
                                          job_record)
from lpfilter.spool.store import SpoolStore

EVERY_BYTE = bytes(range(256)) * 4


@pytest.fixture
def queues(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Queues for ``main`` in this process: q (lp=/dev/null) and others, by their name."""
    lines = {"q": "lp=/dev/null", "filtered": "lp=/dev/null:if=/bin/cat",
             "kept": "lp=/dev/null:save_when_done", "piped": "lp=|/bin/cat", "q2": "lp=/dev/null"}
    spools = {}
    for name in lines:
        spools[name] = tmp_path / f"sd-{name}"
        spools[name].mkdir(mode=0o700)
    (tmp_path / "printcap").write_text("".join(
        f"{name}:sd={spools[name]}:{line}\n" for name, line in lines.items()))
    monkeypatch.setenv("LPFILTER_PRINTCAP", str(tmp_path / "printcap"))
    monkeypatch.setenv("LPFILTER_LOCK_DIR", str(tmp_path / "locks"))
    return spools


def _kinds(sd: Path) -> list[int]:
    data = (sd / ".lpfilter" / "journal").read_bytes()
    records, _ = decode(data, first_lsn(data))
    return [record.kind for record in records]


def _data_files(sd: Path) -> list[str]:
    return sorted(os.listdir(sd / ".lpfilter" / "jobs"))


def _file(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_a_small_job_is_in_the_journal_and_printed_byte_exact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, printer: MakePrinter) -> None:
    emulator = printer()
    sd = tmp_path / "sd"
    sd.mkdir(mode=0o700)
    (tmp_path / "printcap").write_text(f"q:sd={sd}:lp={dest(emulator)}\n")
    monkeypatch.setenv("LPFILTER_PRINTCAP", str(tmp_path / "printcap"))
    monkeypatch.setenv("LPFILTER_LOCK_DIR", str(tmp_path / "locks"))
    small, largest = EVERY_BYTE, os.urandom(jobdata.INLINE_MAX)
    files = [_file(tmp_path / "a", small), _file(tmp_path / "b", largest)]
    assert main(["print", "--no-wait", "-P", "q", *files]) == 0
    assert _data_files(sd) == []  # no data file was made
    kinds = _kinds(sd)
    assert kinds.count(Kind.DATA) == 2
    assert [k for k in kinds if k in (Kind.DATA, Kind.JOB)] == [Kind.DATA, Kind.JOB] * 2
    assert main(["watch", "--once", "-q", "-P", "q"]) == 0
    assert stored(emulator, 1) == small and stored(emulator, 2) == largest
    store = SpoolStore(str(sd), "q")
    try:
        jobs = store.jobs()
        assert [job.state for job in jobs] == [JobState.DONE] * 2
        assert [job.size for job in jobs] == [len(small), len(largest)]
        assert not any(store.has_data(job) for job in jobs)  # the bytes of a finished job go
    finally:
        store.close()


@pytest.mark.parametrize("queue", ["filtered", "kept", "piped"])
def test_queues_whose_programs_may_open_the_data_file_keep_files(
        queues: dict[str, Path], tmp_path: Path, queue: str) -> None:
    """A filter, a banner program or an ``lp=|`` program is given the data file's name
    (LPRng's -e, $DATAFILES), and save_when_done keeps it: such queues keep files."""
    assert main(["print", "--no-wait", "-P", queue, _file(tmp_path / "a", b"small")]) == 0
    assert _data_files(queues[queue]) == ["000001.data"]
    assert Kind.DATA not in _kinds(queues[queue])


def test_a_file_over_the_size_or_past_the_budget_gets_a_data_file(
        queues: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = _file(tmp_path / "big", b"x" * (jobdata.INLINE_MAX + 1))
    assert main(["print", "--no-wait", "-P", "q", big, _file(tmp_path / "a", b"a")]) == 0
    assert _data_files(queues["q"]) == ["000001.data"]
    assert _kinds(queues["q"]).count(Kind.DATA) == 1
    monkeypatch.setattr(jobdata, "inline_budget", lambda: 1 + 3)  # "a" is held: room for 3 bytes
    files = [_file(tmp_path / name, b"12") for name in ("b", "c")]
    assert main(["print", "--no-wait", "-P", "q", *files]) == 0
    assert _data_files(queues["q"]) == ["000001.data", "000004.data"]
    assert _kinds(queues["q"]).count(Kind.DATA) == 2
    size = (queues["q"] / ".lpfilter" / "journal").stat().st_size
    monkeypatch.setattr(jobdata, "inline_budget", lambda: 1 << 20)
    monkeypatch.setattr(jobdata, "inline_journal_max", lambda: size + 2)  # the journal's cap
    assert main(["print", "--no-wait", "-P", "q", _file(tmp_path / "d", b"123")]) == 0
    assert _data_files(queues["q"]) == ["000001.data", "000004.data", "000005.data"]


def test_the_budget_counts_the_bytes_of_unfinished_jobs_not_the_journal(
        queues: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Finished jobs (kept a minute for status) make the journal grow; their bytes are no
    longer held, so they leave the budget to the jobs still queued."""
    files = [_file(tmp_path / f"f{n}", b"x" * 1000) for n in range(4)]
    assert main(["print", "--no-wait", "-P", "q", *files]) == 0
    monkeypatch.setattr(jobdata, "inline_budget", lambda: 2500)  # 2 of them are held, not 3
    store = SpoolStore(str(queues["q"]), "q")
    try:
        assert store.inline_room() == 0  # 4000 bytes held
        assert main(["watch", "--once", "-q", "-P", "q"]) == 0
        assert store.inline_room() == 2500  # all done: nothing held
        assert main(["print", "--no-wait", "-P", "q", *files]) == 0
        assert _data_files(queues["q"]) == ["000007.data", "000008.data"]
        assert store.inline_room() == 500
    finally:
        store.close()


def test_the_budget_follows_the_journal_s_limit_as_it_is_now(
        queues: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The budget is a fraction of the limit read when a job is staged (as the journal's
    cap is), so a lower limit (a test's, or a future setting) lowers it too."""
    assert main(["print", "--no-wait", "-P", "q", _file(tmp_path / "a", b"x" * 1000)]) == 0
    store = SpoolStore(str(queues["q"]), "q")
    try:
        assert store.inline_room() == journallimit.LIMIT // 8 - 1000
        monkeypatch.setattr(journallimit, "LIMIT", 8 * (1000 + 300))
        assert store.inline_room() == 300
        monkeypatch.setattr(journallimit, "LIMIT", 8 * 1000)  # all of it held
        assert store.inline_room() == 0
    finally:
        store.close()
    assert main(["print", "--no-wait", "-P", "q", _file(tmp_path / "b", b"y" * 200)]) == 0
    assert _data_files(queues["q"]) == ["000002.data"]  # past the room: a data file


def test_a_torn_write_never_leaves_a_job_without_its_bytes() -> None:
    """Cut anywhere, a batch's write keeps a prefix: each job replayed has its bytes."""
    jobs = [Job(f"{n:06d}", "q", "user", f"f{n}", 3, 1.0) for n in (1, 2)]
    records = [r for job in jobs for r in (data_record(job.id, job.id[-1:].encode() * 3),
                                           job_record(job))]
    whole, _ = encode_all(0, records)
    seen = set()
    for cut in range(len(whole) + 1):
        index = replay(whole[:cut], "q")
        for job_id in index.jobs:
            assert index.data[job_id] == job_id[-1:].encode() * 3
        seen.add(len(index.jobs))
    assert seen == {0, 1, 2}


def test_a_compaction_keeps_the_bytes_of_unfinished_jobs_only(
        queues: dict[str, Path], tmp_path: Path) -> None:
    files = [_file(tmp_path / name, name.encode() * 10) for name in ("a", "b")]
    assert main(["print", "--no-wait", "-P", "q", *files]) == 0
    store = SpoolStore(str(queues["q"]), "q")
    try:
        done = store.read("000001")
        assert done is not None
        done.move_to(JobState.ACTIVE)
        done.move_to(JobState.DONE)
        store.write(done)
        store.compact()
    finally:
        store.close()
    assert _kinds(queues["q"]).count(Kind.DATA) == 1
    again = SpoolStore(str(queues["q"]), "q")
    try:
        assert [job.id for job in again.jobs() if again.has_data(job)] == ["000002"]
        fd = again.open_data("000002")
        assert isinstance(fd, int)
        try:
            assert os.read(fd, 100) == b"b" * 10
            with pytest.raises(PermissionError):  # sealed: a filter cannot change it
                os.pwrite(fd, b"x", 0)
        finally:
            os.close(fd)
    finally:
        again.close()


def test_lpc_move_and_cancel_of_a_job_in_the_journal(
        queues: dict[str, Path], tmp_path: Path) -> None:
    files = [_file(tmp_path / name, name.encode() * 5) for name in ("a", "b")]
    assert main(["print", "--no-wait", "-P", "q", *files]) == 0
    assert main(["lpc", "move", "q", "1", "q2"]) == 0
    moved = queues["q2"] / ".lpfilter" / "jobs" / "000001.data"
    assert moved.read_bytes() == b"aaaaa"  # the target's job has its bytes, as a file
    assert main(["cancel", "-P", "q", "2"]) == 0
    store = SpoolStore(str(queues["q"]), "q")
    try:
        assert all(job.state != JobState.QUEUED for job in store.jobs())
        assert not store._index.data  # nothing of theirs is kept
    finally:
        store.close()


def test_small_files_cost_one_flush_a_batch_and_no_file(
        queues: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """70 small files: two batches (64 and 6), each one fdatasync of the journal; no file
    is staged, synced or made in jobs/ (a data file each made two flushes a batch more
    and one a file)."""
    from test_journal_store import _note_syncs
    files = [_file(tmp_path / f"f{n:02d}", f"page {n}\n".encode()) for n in range(70)]
    synced = _note_syncs(monkeypatch)
    assert main(["print", "--no-wait", "-P", "q", *files]) == 0
    monkeypatch.undo()
    assert capsys.readouterr().out.split() == [f"q-{n:06d}" for n in range(1, 71)]
    assert synced == ["journal", "journal"], synced
    assert _data_files(queues["q"]) == [] and os.listdir(queues["q"] / ".lpfilter" / "tmp") == []


def test_a_data_record_that_names_no_job_id_is_skipped() -> None:
    """A record is untrusted input (the spool's owner may write the journal): bytes whose
    id is no job number are skipped, never kept under a name a path could be built of."""
    job = Job("000001", "q", "user", "f", 1, 1.0)
    bad = [(Kind.DATA, b"../../etc/x\nbytes"), (Kind.DATA, b"\xff\nbytes"),
           (Kind.DATA, b"no newline")]
    whole, _ = encode_all(0, [*bad, data_record(job.id, b"b"), job_record(job)])
    index = replay(whole, "q")
    assert index.skipped == 3 and index.data == {"000001": b"b"}


def test_finished_small_jobs_bytes_do_not_make_a_compaction_due() -> None:
    """A compaction rewrites every kept record: the dead bytes of finished small jobs (up
    to 1/16 of the limit) do not make it due, or a pass of 500 jobs would end with one."""
    job = Job("000001", "q", "user", "f", 4, 1.0)
    records = [data_record(job.id, b"four"), job_record(job)]
    index = replay(encode_all(0, records)[0], "q")
    assert index.dead_data() == 0 and index.live_size() > 4
    done = job.copy()
    done.move_to(JobState.ACTIVE)
    done.move_to(JobState.DONE)
    index = replay(encode_all(0, [*records, job_record(done)])[0], "q")
    assert index.dead_data() == 4 and index.data == {}
    mib = 1 << 20
    assert journallimit.compact_due(2 * mib, 1000)
    assert not journallimit.compact_due(2 * mib, 1000, dead_data=mib + 1)
    assert journallimit.compact_due(8 * mib, 1000, dead_data=7 * mib)  # past the cap
