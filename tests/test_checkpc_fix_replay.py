"""``checkpc --fix`` and the good records after the damage (issue 16, review 2): what they
say (a job taken, its bytes sent, its outcome) is replayed on top of the records before
it, and every unfinished job the damaged bytes may have changed is flagged as a possible
duplicate; nothing sent is queued again unflagged, no job recorded after the damage comes
back as a nameless recovered-N."""
from __future__ import annotations

import os
from pathlib import Path

from spoolkit import Kit, journal_path, kit  # noqa: F401 - the fixture
from test_journal_lock_wait import Holder, holder_of  # noqa: F401 - the fixture
from test_journal_refusals import damage

from lpfilter.job import JobState
from lpfilter.spool.journalformat import (Kind, decode, encode_all, first_lsn, first_record,
                                          mark_record, start_record)
from lpfilter.spool.store import SpoolStore


def _queue(kit: Kit, jobs: int) -> Path:
    sd = kit.queue("lp", "/dev/null", accounting=False)
    for _ in range(jobs):
        assert kit.run("print", "--no-wait", "-P", "lp", str(kit.printcap)).returncode == 0
    return sd


def _rot(sd: Path, job_id: str) -> None:
    """Bit rot inside a job's (first) JOB record: good records before and after it."""
    path = journal_path(sd)
    data = bytearray(path.read_bytes())
    base = first_lsn(bytes(data))
    records, _ = decode(bytes(data), base)
    record = next(r for r in records if r.kind == Kind.JOB and f'"{job_id}"'.encode()
                  in r.payload)
    at = record.lsn - base + 20
    data[at:at + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))


def _fix(kit: Kit) -> str:
    done = kit.run("checkpc", "--fix")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stdout.splitlines()
    return line


def test_fix_keeps_what_a_job_recorded_after_the_damage_says(kit: Kit) -> None:
    """Review 2's case: job 1 sent, the printer failed at the end, a retry pending
    (possible duplicate) is recorded after a damaged region: it stays flagged."""
    sd = _queue(kit, 2)
    store = SpoolStore(str(sd), "lp")
    job = store.read("000001")
    assert job is not None
    job.move_to(JobState.ACTIVE)
    job.attempts, job.send_started = 1, True
    job.move_to(JobState.QUEUED)
    job.possible_duplicate, job.last_error = True, "connection reset; retrying"
    job.bytes_sent = job.size
    store.write(job)
    store.close()
    _rot(sd, "000002")
    line = _fix(kit)
    after = kit.tickets("lp")
    assert after["000001"]["possible_duplicate"], after["000001"]
    assert after["000001"]["attempts"] == 1 and after["000001"]["send_started"]
    assert after["000001"]["last_error"] == "connection reset; retrying"
    assert "keeps the 1 jobs its good records name" in line, line
    assert "1 of them flagged as possible duplicates" in line, line
    assert "; 1 data files in jobs/ no record names come back" in line, line  # job 2's


def test_fix_flags_a_job_whose_send_began_after_the_damage(kit: Kit) -> None:
    """A batch's MARK, START and FIRST of job 1 after the damage, no outcome: its bytes
    may have left; it comes back flagged (and says why), job 2 (not named) is not."""
    sd = _queue(kit, 2)
    store = SpoolStore(str(sd), "lp")
    job = store.read("000001")
    store.close()
    assert job is not None
    job.attempts = 1
    damage(sd)
    path = journal_path(sd)
    data = path.read_bytes()
    more, _ = encode_all(first_lsn(data) + len(data), [
        mark_record(["000001"], "another-boot"), start_record(job, os.getpid()),
        first_record(job)])
    with path.open("ab") as handle:
        handle.write(more)
    line = _fix(kit)
    after = kit.tickets("lp")
    assert after["000001"]["possible_duplicate"], after["000001"]
    assert "checkpc --fix" in after["000001"]["last_error"]
    assert not after["000002"]["possible_duplicate"], after["000002"]
    assert "keeps the 2 jobs" in line and "1 of them flagged" in line, line


def test_fix_keeps_a_job_recorded_only_after_the_damage_under_its_own_name(
        kit: Kit) -> None:
    """Job 3's JOB record is in a good run after the damage: it comes back as 000003 of
    its user (not as recovered-N, nor lost); only job 2's data file is an orphan."""
    sd = _queue(kit, 3)
    user = kit.tickets("lp")["000003"]["user"]
    _rot(sd, "000002")
    line = _fix(kit)
    after = kit.tickets("lp")
    assert set(after) == {"000001", "000003"}, after
    assert after["000003"]["user"] == user and after["000003"]["state"] == "queued"
    assert "; 1 data files in jobs/ no record names come back" in line, line
    run = kit.run("print", "--no-wait", "-P", "lp", str(kit.printcap))
    assert run.stdout.split() == ["lp-000004"], run.stdout + run.stderr


def test_fix_waits_a_bounded_time_for_a_held_lock_and_changes_nothing(
        kit: Kit, holder_of: list[Holder]) -> None:
    """Another process holds the journal's lock (an appender, or a stuck one): --fix waits
    at most its LOCK_WAIT (5 s), says so in one line, and leaves the journal as it was;
    once the lock is let go, it mends."""
    sd = _queue(kit, 1)
    damage(sd)
    before = journal_path(sd).read_bytes()
    holder_of.append(Holder(Path(str(journal_path(sd)) + ".lock")))
    done = kit.run("checkpc", "--fix")
    assert "Traceback" not in done.stderr
    assert "is being written (its lock held 5 s); not mended" in done.stdout, done.stdout
    assert journal_path(sd).read_bytes() == before
    holder_of[0].let_go()
    assert "moved aside to" in _fix(kit)
