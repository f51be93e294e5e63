"""The hot folder's intents (spool/intents.py): a kill between the intake's renames into
jobs/ and the batch's records is settled at once by the next lease holder, with each file's
name and dropper; an intent of a running process waits for the orphan rule; the replay
keeps intents (untrusted input: checked) until a JOB or GONE record spends them.

The kill is real: the intake runs in a child process that SIGKILLs itself from a hook at a
point the test chooses (after the third file was taken, or in the middle of the third
file's take, renamed but not yet made the queue owner's); the recovery is the store's."""
from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lpfilter import printcap
from lpfilter.job import Job, JobState
from lpfilter.locks import process_start
from lpfilter.spool import jobindex, journalformat, journallimit, recovery
from lpfilter.spool.intake import Intake
from lpfilter.spool.intents import RECOVERED
from lpfilter.spool.journalformat import Kind, decode, encode_all
from lpfilter.spool.journallimit import JournalFull
from lpfilter.spool.records import QueueRecords
from lpfilter.spool.store import SpoolStore

DROPPER = pwd.getpwnam("nobody")
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="drops files as another user")

#: The child: the intake of one queue, SIGKILLed by a hook at the third file.
CHILD = """
import os, signal, sys, time
from lpfilter import printcap
from lpfilter.spool import intake
from lpfilter.spool.records import QueueRecords
from lpfilter.spool.store import SpoolStore

printcap_path, sd, where = sys.argv[1:]
entry = printcap.load([printcap_path]).lookup("lp")
store = SpoolStore(sd, "lp")
store.ensure("watch")
calls = []


def die_at_third() -> None:
    calls.append(1)
    if len(calls) == 3:
        os.kill(os.getpid(), signal.SIGKILL)


if where == "after-take":
    real_take = intake.Intake._take

    def take(self, *args):
        taken = real_take(self, *args)
        die_at_third()
        return taken

    intake.Intake._take = take
else:  # renamed into jobs/, not yet checked nor made the owner's
    real_take_over = intake.take_over

    def take_over(*args):
        die_at_third()
        return real_take_over(*args)

    intake.take_over = take_over
intake.Intake(entry, store, QueueRecords(entry), settle=0.0, clock=time.time).adopt()
sys.exit("the hook did not kill the intake")
"""


def queue(tmp_path: Path, options: str = "") -> tuple[Path, Path]:
    """A queue whose hot folder others may drop files into (sticky, as a shared one)."""
    sd = tmp_path / "sd"
    sd.mkdir()
    sd.chmod(0o1733)
    (tmp_path / "printcap").write_text(f"lp:sd={sd}:lp=/dev/null{options}\n")
    return tmp_path / "printcap", sd


def drop(sd: Path, count: int) -> list[str]:
    """``count`` files of the dropper, oldest first (the intake takes them in that order)."""
    names = [f"f{n}.txt" for n in range(count)]
    for n, name in enumerate(names):
        path = sd / name
        path.write_bytes(f"page {n}\n".encode() * (n + 1))
        os.chown(path, DROPPER.pw_uid, DROPPER.pw_gid)
        os.utime(path, (1e9 + n, 1e9 + n))
    return names


def intake_of(printcap_path: Path, store: SpoolStore) -> Intake:
    entry = printcap.load([str(printcap_path)]).lookup("lp")
    return Intake(entry, store, QueueRecords(entry), settle=0.0, clock=time.time)


@ROOT_ONLY
@pytest.mark.parametrize("where", ["after-take", "in-take"])
def test_a_kill_between_take_and_commit_is_recovered_at_once_with_names_and_users(
        tmp_path: Path, where: str) -> None:
    printcap_path, sd = queue(tmp_path)
    names = drop(sd, 5)
    child = subprocess.run([sys.executable, "-c", CHILD, str(printcap_path), str(sd), where],
                           capture_output=True, text=True, timeout=60, check=False)
    assert child.returncode == -signal.SIGKILL, child.stderr
    store = SpoolStore(str(sd), "lp")
    jobs_dir = Path(store.jobs_dir)
    assert store.jobs() == [] and len(list(jobs_dir.glob("*.data"))) == 3  # no record yet
    assert sorted(i["name"] for i in store.intents().values()) == names  # all five intended
    if where == "in-take":  # the third was renamed, not yet made the owner's
        assert sorted(p.stat().st_uid for p in jobs_dir.glob("*.data")) == [
            0, 0, DROPPER.pw_uid]

    jobs = store.recover_orphans("root")  # young files: no waiting out ORPHAN_AGE

    assert [(j.name, j.user, j.state, j.last_error) for j in jobs] == [
        (name, "nobody", JobState.QUEUED, RECOVERED) for name in names[:3]]
    assert [j.size for j in jobs] == [len(f"page {n}\n") * (n + 1) for n in range(3)]
    assert {p.stat().st_uid for p in jobs_dir.glob("*.data")} == {0}  # the owner's now
    assert store.intents() == {}  # the two never renamed: spent
    assert sorted(os.listdir(sd)) == [".lpfilter", *names[3:]]  # still to be taken
    intake_of(printcap_path, store).adopt()
    assert [(j.name, j.user) for j in store.jobs()] == [(name, "nobody") for name in names]
    assert {j.id for j in store.jobs()} == {p.name[:-5] for p in jobs_dir.glob("*.data")}
    assert store.intents() == {}
    store.close()


def test_an_intent_of_a_running_writer_waits_for_the_orphan_rule(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process is between a rename and its record, as far as recovery can tell: the
    file waits ORPHAN_AGE (a record may come yet), then takes the intent's name."""
    _, sd = queue(tmp_path)
    store = SpoolStore(str(sd), "lp")
    store.ensure("watch")
    job_id = store.next_id()
    me = (os.getpid(), process_start(os.getpid()))
    intent = {"name": "report.pdf", "uid": DROPPER.pw_uid, "size": 5, "at": 1e9,
              "pid": me[0], "start": me[1], "held": True, "limit": 0}
    store.note([journalformat.intent_record(job_id, intent)])
    Path(store.data_path(job_id)).write_bytes(b"hello")
    assert store.recover_orphans("root") == [] and store.intents() == {job_id: intent}
    monkeypatch.setattr(recovery, "ORPHAN_AGE", 0.0)
    (job,) = store.recover_orphans("root")
    assert (job.id, job.name, job.user, job.size, job.state, job.submitted) == (
        job_id, "report.pdf", "nobody", 5, JobState.HELD, 1e9)
    assert store.intents() == {} and store.read(job_id) == job
    store.close()


def test_an_intent_of_a_writer_gone_without_its_data_file_is_spent(tmp_path: Path) -> None:
    """The kill came before the rename (or a power cut took it back): nothing to take in;
    the intent is spent, so that no compaction carries it on."""
    _, sd = queue(tmp_path)
    store = SpoolStore(str(sd), "lp")
    store.ensure("watch")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True, timeout=60)
    intent = {"name": "a", "uid": 0, "size": 1, "at": 1.0, "pid": int(dead.stdout),
              "start": 1.0, "held": False, "limit": 0}
    store.note([journalformat.intent_record(store.next_id(), intent)])
    assert len(store.intents()) == 1
    assert store.recover_orphans("root") == [] and store.intents() == {}
    store.close()


@ROOT_ONLY
def test_the_intake_spends_the_intent_of_a_file_it_refuses(tmp_path: Path) -> None:
    """A file refused once renamed (its dropper may not write the spool directory) is no
    job: its intent is spent at the batch's commit, not left for a compaction to carry."""
    printcap_path, sd = queue(tmp_path)
    sd.chmod(0o700)
    store = SpoolStore(str(sd), "lp")
    store.ensure("watch")
    (name,) = drop(sd, 1)
    intake_of(printcap_path, store).adopt()
    assert store.jobs() == [] and store.intents() == {}
    assert os.listdir(store.refused_dir) == [name]
    store.close()


# --- the replay -----------------------------------------------------------------------------
GOOD = {"name": "f.txt", "uid": 1000, "size": 3, "at": 5.0, "pid": 42, "start": 7.5,
        "held": False, "limit": 0}


def replay(*records: tuple[int, bytes]) -> jobindex.JobIndex:
    data, _ = encode_all(0, list(records))
    return jobindex.replay(data, "lp")


def test_the_replay_keeps_an_intent_until_a_job_or_gone_names_its_job() -> None:
    one = journalformat.intent_record("000001", GOOD)
    two = journalformat.intent_record("000002", GOOD)
    assert replay(one, two).intents == {"000001": GOOD, "000002": GOOD}
    job = Job("000001", "lp", "u", "f.txt", 3, 5.0)
    spent = replay(one, two, journalformat.job_record(job), journalformat.gone_record(["000002"]))
    assert spent.intents == {} and list(spent.jobs) == ["000001"]


def test_a_compaction_keeps_the_intents_not_yet_spent() -> None:
    index = replay(journalformat.intent_record("000003", GOOD))
    head, records = index.compacted(10)
    data, _ = encode_all(0, [(Kind.HEAD, head), *records])
    assert jobindex.replay(data, "lp").intents == {"000003": GOOD}


@pytest.mark.parametrize("change", [
    {"id": "12a"}, {"id": "1" * 13}, {"name": "a/b"}, {"name": ""}, {"name": ".."},
    {"name": "x" * 256}, {"name": "a\0b"}, {"name": 7}, {"uid": -1}, {"uid": 1.5},
    {"uid": True}, {"size": 1 << 63}, {"at": float("inf")}, {"at": "now"}, {"pid": None},
    {"held": 1}, {"limit": -5}, {"start": float("nan")}])
def test_an_intent_that_does_not_check_is_skipped(change: dict[str, object]) -> None:
    """A spool's owner may write any record: a bad intent is skipped, with a line."""
    fields = {"id": "000001", **GOOD, **change}
    index = replay((Kind.INTENT, json.dumps(fields).encode()))
    assert index.intents == {} and index.skipped == 1


def test_an_intent_without_a_field_is_skipped() -> None:
    fields = {"id": "000001", **GOOD}
    del fields["pid"]
    index = replay((Kind.INTENT, json.dumps(fields).encode()))
    assert index.intents == {} and index.skipped == 1


def test_a_crowded_journal_takes_no_intent_and_no_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Live jobs fill 3/4 of the journal (limit lowered): the intents of dropped files are
    refused as their jobs would be (JournalFull), before any file leaves the hot folder;
    they do not eat the last quarter, kept for what removes jobs."""
    monkeypatch.setattr(journallimit, "LIMIT", 4 << 20)
    printcap_path, sd = queue(tmp_path)
    sd.chmod(0o700)
    store = SpoolStore(str(sd), "lp")
    store.ensure("watch")
    numbers = iter(range(1, 100_000))
    for title in ("t" * 100_000, ""):  # big jobs, then small ones: no room for a job left
        with contextlib.suppress(JournalFull):
            for n in numbers:
                store.write(Job(f"{n:06d}", "lp", "u", "f", 1, 1.0, title=title),
                            durable=False)
    names = sorted(f"f{n}.txt" for n in range(3))
    for name in names:
        (sd / name).write_text(name)
    with pytest.raises(JournalFull):
        intake_of(printcap_path, store).adopt()
    assert sorted(p.name for p in sd.iterdir() if p.suffix == ".txt") == names
    journal = Path(store.state) / "journal"
    records, _ = decode(journal.read_bytes(), 0)
    assert [r for r in records if r.kind == Kind.INTENT] == []
    assert store.intents() == {} and list(Path(store.jobs_dir).glob("*.data")) == []
    store.close()
