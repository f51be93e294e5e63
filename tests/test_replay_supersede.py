"""A read's JOB records that a later one replaces, or a later GONE removes, are passed
over undecoded (lpfilter.spool.supersede): the index a store builds that way is the one a
replay of every record builds, for any sequence of the records lpfilter writes (and GONE
records it does not), read at once or in several reads. A RESERVE's or HEAD's number is
read without json, as json reads it. No files here: records are built, framed and decoded
in memory."""
from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lpfilter.job import FINISHED, Job, JobState
from lpfilter.spool import journalformat as jf
from lpfilter.spool.jobindex import JobIndex, _last_number
from lpfilter.spool.notes import KEY_LENGTH, NEW, SEEN, Noted, note_record
from lpfilter.spool.supersede import gone_ids, plan, quick_id

PROPERTY = settings(max_examples=1000, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
IDS = ["000001", "000002"]
QUEUE = "q"


def _job(job_id: str, state: JobState, *, queue: str = QUEUE, extra_id: bool = False) -> Job:
    return Job(job_id, queue, "user", f"file {job_id}", 10, 1.0, state=state,
               extra={"id": "000009"} if extra_id else None)


_ID = st.sampled_from(IDS)
_STATE = st.sampled_from(list(JobState))
_TICKET = st.builds(lambda i, s, x: jf.job_record(_job(i, s, extra_id=x)), _ID, _STATE,
                   st.booleans())
_DATA = st.builds(lambda i: jf.data_record(i, b"bytes of " + i.encode()), _ID)
_RECORD = st.one_of(  # (tickets and data more often: what the shortcut must get right)
    _TICKET, _TICKET, _TICKET, _DATA,
    st.builds(lambda i, s: jf.job_record(_job(i, s, queue="other")), _ID, _STATE),
    st.builds(lambda i, s, cut: (jf.Kind.JOB, jf.job_record(_job(i, s))[1][:cut]), _ID,
              _STATE, st.integers(0, 120)),  # a torn or damaged ticket
    st.builds(lambda i, a: jf.start_record(_job(i, JobState.ACTIVE), 4242 if a else 0), _ID,
              st.booleans()),
    st.builds(lambda i: jf.first_record(_job(i, JobState.ACTIVE)), _ID),
    st.builds(lambda i, s: jf.end_record(_job(i, s)), _ID, _STATE),
    st.builds(lambda ids: jf.mark_record(ids, "boot"), st.lists(_ID, max_size=3)),
    st.builds(lambda ids: jf.gone_record(ids), st.lists(_ID, min_size=1, max_size=2)),
    st.builds(lambda ids: jf.gone_record(ids), st.lists(_ID, min_size=1, max_size=2)),
    st.sampled_from([(jf.Kind.GONE, b'{"ids": "12"}'), (jf.Kind.GONE, b'{"ids": 1}'),
                     (jf.Kind.GONE, b'{"ids": ["000001", "x"]}'), (jf.Kind.GONE, b"[1]"),
                     (jf.Kind.GONE, b'{"ids": ["000002", 2]}'), (jf.Kind.GONE, b"{")]),
    st.builds(lambda k, i, f: note_record(k * KEY_LENGTH, Noted(i, 1.0), f),
              st.sampled_from("ab"), _ID, st.sampled_from([NEW, SEEN])),
    st.builds(jf.cancel_record, _ID, st.booleans()),
    st.builds(jf.reserve_record, st.integers(1, 20)),
)


def _records(pairs: list[tuple[int, bytes]]) -> list[jf.Record]:
    data, _ = jf.encode_all(0, pairs)
    records, _ = jf.decode(data, 0)
    assert len(records) == len(pairs)
    return records


def _state(index: JobIndex) -> dict[str, Any]:
    """Everything a replay leaves, but ``skipped`` (a replaced record that was damaged is
    passed over without its warning)."""
    return {"jobs": {i: (type(j), j.to_dict()) for i, j in index.jobs.items()},
            "unfinished": set(index.unfinished), "marked": dict(index.marked),
            "cancels": set(index.cancels), "sizes": dict(index.sizes),
            "intents": dict(index.intents), "data": dict(index.data),
            "data_held": index.data_held, "data_read": index.data_read,
            "last_id": index.last_id, "notes": dict(index.notes.keys),
            "waiting": dict(index.notes.waiting)}


def _each(records: list[jf.Record]) -> JobIndex:
    index = JobIndex(QUEUE)
    for record in records:
        index.apply(record)
    return index


@PROPERTY
@given(pairs=st.lists(_RECORD, min_size=6, max_size=40),
       cuts=st.lists(st.integers(0, 40), max_size=3))
@example(pairs=[jf.data_record("000001", b"x"), jf.job_record(_job("000001", JobState.QUEUED)),
                jf.start_record(_job("000001", JobState.ACTIVE), 7),
                jf.job_record(_job("000001", JobState.DONE))], cuts=[])
@example(pairs=[jf.job_record(_job("000001", JobState.DONE)), jf.data_record("000001", b"x"),
                jf.job_record(_job("000001", JobState.QUEUED))], cuts=[])
@example(pairs=[jf.data_record("000001", b"x"), jf.job_record(_job("000001", JobState.DONE)),
                jf.job_record(_job("000001", JobState.QUEUED))], cuts=[])
@example(pairs=[jf.job_record(_job("000001", JobState.QUEUED)),
                jf.job_record(_job("000001", JobState.QUEUED)),
                jf.start_record(_job("000001", JobState.ACTIVE), 7),
                jf.job_record(_job("000001", JobState.DONE))], cuts=[1])
@example(pairs=[note_record("a" * KEY_LENGTH, Noted("000001", 1.0), NEW),
                jf.job_record(_job("000001", JobState.QUEUED)), jf.gone_record(["000001"]),
                jf.job_record(_job("000002", JobState.QUEUED))], cuts=[])
@example(pairs=[note_record("a" * KEY_LENGTH, Noted("000001", 1.0), NEW),
                jf.job_record(_job("000001", JobState.QUEUED)), jf.gone_record(["000001"]),
                jf.job_record(_job("000002", JobState.QUEUED))], cuts=[1])
def test_reads_build_the_index_a_replay_of_every_record_builds(
        pairs: list[tuple[int, bytes]], cuts: list[int]) -> None:
    """The same index at the end, and at each read's end the jobs a caller took before it
    changed alike (a record between the two a job has in a read must not change a job
    object the index gave out before)."""
    records = _records(pairs)
    expected, index = _each([]), JobIndex(QUEUE)
    start = 0
    for cut in sorted(cuts) + [len(records)]:  # reads as a catching-up process makes them
        read, start = records[start:max(cut, start)], max(cut, start)
        held, held_expected = dict(index.jobs), dict(expected.jobs)  # as callers took them
        for record in read:
            expected.apply(record)
        index.apply_all(read)
        assert {i: j.to_dict() for i, j in held.items()} == {
            i: j.to_dict() for i, j in held_expected.items()}
    assert _state(index) == _state(expected) == _state(_each(records))


def test_a_sent_jobs_queued_ticket_is_passed_over_undecoded() -> None:
    """What the module is for: of a job queued then done in one read, only the outcome is
    decoded (its START before it is passed over too); a job seen once, or whose last ticket
    is not finished, is decoded as before."""
    done = _records([jf.job_record(_job("000001", JobState.QUEUED)),
                     jf.start_record(_job("000001", JobState.ACTIVE), 7),
                     jf.job_record(_job("000001", JobState.DONE)),
                     jf.job_record(_job("000002", JobState.QUEUED)),
                     jf.job_record(_job("000003", JobState.DONE)),
                     jf.job_record(_job("000003", JobState.QUEUED))])
    fresh = JobIndex(QUEUE)
    chosen = plan(done, fresh.jobs, fresh.decode_job)
    assert sorted(chosen) == [0, 1, 2] and chosen[0] is None is chosen[1]  # and its START
    job = chosen[2]
    assert job is not None and job.id == "000001" and job.state in FINISHED
    known = JobIndex(QUEUE)
    known.apply_all(done[:1])
    assert plan(done, known.jobs, known.decode_job) == {}  # known before: all decoded


def test_a_job_a_gone_removes_in_the_same_read_is_not_decoded() -> None:
    """What a ``watch --once`` pass leaves: each printed job's queued ticket, START, FIRST
    and outcome, then one GONE for all but the last. None of the removed jobs' records is
    decoded, and their numbers are not given again; a read with a retry note in it is
    replayed as before (a JOB record tells a note its job came)."""
    pairs: list[tuple[int, bytes]] = []
    for n in range(1, 6):
        job_id = f"{n:06d}"
        pairs += [jf.job_record(_job(job_id, JobState.QUEUED)),
                  jf.start_record(_job(job_id, JobState.ACTIVE), 7),
                  jf.first_record(_job(job_id, JobState.ACTIVE)),
                  jf.job_record(_job(job_id, JobState.DONE))]
    pairs.append(jf.gone_record(["000001", "000002", "000003", "000004"]))
    records = _records(pairs)
    decoded: list[str] = []

    def decode(record: jf.Record) -> Job:
        job = Job.from_json(record.payload.decode())
        decoded.append(job.id)
        return job

    chosen = plan(records, {}, decode)
    assert decoded == ["000005"]  # only the outcome of the job that stays
    assert sorted(chosen) == list(range(20)) and chosen[19] is not None
    assert {at for at, job in chosen.items() if job is None} == set(range(16)) | {16, 17, 18}
    index = JobIndex(QUEUE)
    index.apply_all(records)
    assert list(index.jobs) == ["000005"] and index.last_id == 5
    assert index.next_id() == "000006"
    decoded.clear()
    noted = _records([note_record("k" * KEY_LENGTH, Noted("000001", 1.0), NEW), *pairs])
    for read, waiting in ((noted, False), (records, True)):  # each job's outcome decoded
        chosen = plan(read, {}, decode, notes_waiting=waiting)
        assert decoded == ["000001", "000002", "000003", "000004", "000005"]
        assert len([job for job in chosen.values() if job is not None]) == 5
        decoded.clear()


@given(payload=st.one_of(st.binary(max_size=40), st.builds(
    lambda ids: json.dumps({"ids": ids}).encode(),
    st.lists(st.one_of(st.text(max_size=13), st.integers(), st.none()), max_size=3))))
@example(payload=b'{"ids": ["\\u0661"]}')  # a digit to str.isdigit: applied, not planned by
@example(payload=b'{"ids": ["\\u00b2"]}')  # a digit to isdigit that int() refuses
@example(payload=b'{"ids": ["1234567890123"]}')
@example(payload=b'{"ids": ["000007", "000003"]}')
def test_a_gone_planned_by_is_one_the_index_applies_whole(payload: bytes) -> None:
    """The ids ``gone_ids`` gives are those of a GONE the index applies whole, each number
    then never given again; a GONE it would fail on part way gives none."""
    index = JobIndex(QUEUE)
    ids = gone_ids(payload)
    try:
        index._apply(jf.Record(0, jf.Kind.GONE, payload))
    except (ValueError, TypeError, KeyError, AttributeError):
        assert ids == []
        return
    if ids:
        assert ids == json.loads(payload)["ids"]
        assert index.last_id == max(map(int, ids))


@given(job_id=st.from_regex(r"[0-9]{1,12}", fullmatch=True), name=st.text(max_size=20),
       extra=st.dictionaries(st.text(max_size=5), st.text(max_size=8), max_size=3))
@example(job_id="000001", name='"id": "000002"', extra={})
@example(job_id="000001", name="x", extra={"id": "000002"})
def test_the_id_read_without_json_is_the_tickets_own(job_id: str, name: str,
                                                      extra: dict[str, str]) -> None:
    """``to_json`` writes every ticket's id once as ``"id": "DIGITS"``; an ``extra`` with
    an "id" of its own makes the quick read give up, and no text a user gives (a name,
    a title) can look like the key."""
    job = Job(job_id, QUEUE, "user", name, 10, 1.0, title=name, extra=dict(extra))
    found = quick_id(jf.job_record(job)[1])
    assert found == (None if "id" in extra else job_id)


def _number(read: Any, payload: bytes) -> int | str:
    """What the replay takes from a RESERVE with this payload: the number, or the error."""
    try:
        return _last_number(read(payload))
    except (ValueError, TypeError) as exc:
        return type(exc).__name__


def _by_json(payload: bytes) -> object:
    """The replay's read before round 14 (json, always)."""
    data = json.loads(payload.decode("utf-8")) if payload else {}
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data.get("last_id", 0)


@given(payload=st.one_of(
    st.builds(lambda n: jf.reserve_record(n)[1], st.integers(0, 10**13)),
    st.builds(lambda t: b'{"last_id": "' + t.encode("utf-8", "surrogatepass") + b'"}',
              st.text(max_size=14)),
    st.builds(lambda v: json.dumps({"last_id": v}).encode(),
              st.one_of(st.integers(-3, 10**13), st.text(max_size=14), st.none())),
    st.binary(max_size=30)))
@example(payload=b'{"last_id": "0012"}')
@example(payload=b'{"last_id": ""}')
@example(payload=b'{"last_id": "1\\"}')
@example(payload=rb'{"last_id": "\u0031"}')  # json reads "1"
@example(payload=b'{"last_id": "\xd9\xa1"}')  # an Arabic-Indic one: json, as before
def test_a_last_number_read_without_json_is_the_one_json_reads(payload: bytes) -> None:
    assert _number(jf.last_given, payload) == _number(_by_json, payload)
