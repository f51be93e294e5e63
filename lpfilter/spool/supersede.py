"""JOB records that a later record of the same read replaces, passed over undecoded.

Every command replays its queue's journal, and a job that was sent leaves two JOB records:
the queued ticket that ``print`` or the server wrote, and the worker's outcome. Until a
compaction the journal keeps both (a ``watch --once`` pass leaves it as it is, and a queue
keeps its last jobs for ``status``), and decoding a ticket is most of what a replay costs
(json, then a Job: ~110 K instructions). When one read gives both records, the first is
passed over if:

* the last JOB record of that job in the read decodes to a valid, *finished* ticket of the
  queue: the job's data, its place among the unfinished and its fields are then what that
  record says, whatever came between (a START, a MARK, a GONE, a DATA);
* the index did not know the job before the read: no record between the two then changes
  a job object that some caller holds (a START before the last record finds no job, where
  it would have changed one that the last record replaces).

The START, FIRST and END records of such a job before its last JOB record are passed over
too, without their json: each would find no job (the records before the last are passed
over), and a record that finds none changes nothing. A sent job leaves a START and a FIRST
(round 14 of bench/README.md: with the RESERVE records read without json, 3.6 M of the
~34 M instructions that a ``print`` spent replaying 100 such jobs).

A job that a later GONE record of the same read removes (a ``watch --once`` pass removes
all but the last finished jobs, and leaves its journal uncompacted below 1 MiB) is passed
over the same way: its JOB, START, FIRST and END records before that GONE, undecoded. A
GONE undoes everything they would have done, and it keeps the job's number from being
given again as its JOB record would have (``JobIndex`` raises ``last_id`` by a GONE's ids).
Only a GONE whose ids are all valid counts (one that is not is applied, and skipped, as
before), and none while retry notes are being read (a JOB record tells a note that its job
came: ``notes_waiting``).

The id is read without json: the payload's one ``"id": "DIGITS"``. ``Job.to_json`` writes
every ticket's id that way, once, at the top level; an ``extra`` holding an "id" of its own
makes two, and such a record is decoded as before. A record spelled otherwise (lpfilter
never writes one) is decoded as before too. A hand-made record could name one job here and
another in its JSON: it would hide a record of its own journal, which its writer can do
with a GONE record anyway. A first record that would have been skipped as damaged is now
passed over without its warning line: the last record decides the job either way.
"""
from __future__ import annotations

from lpfilter import jsontext
from lpfilter.errors import ImpossibleTransition
from lpfilter.job import FINISHED, Job
from lpfilter.spool.journalformat import Kind, Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Container

_KEY = b'"id": "'
_JOB, _GONE, _NOTE = Kind.JOB, Kind.GONE, Kind.NOTE
#: Records that change a job the index knows, and nothing when it knows none.
_CHANGES = frozenset({Kind.START, Kind.FIRST, Kind.END})


def quick_id(payload: bytes) -> str | None:
    """The job id a ticket's JSON gives in its one ``"id": "DIGITS"``, or None."""
    at = payload.find(_KEY)
    if at < 0 or payload.find(_KEY, at + 1) >= 0:
        return None
    start = at + len(_KEY)
    end = payload.find(b'"', start)
    value = payload[start:end]
    return value.decode("ascii") if end > 0 and 0 < len(value) <= 12 and value.isdigit() \
        else None


def gone_ids(payload: bytes) -> list[str]:
    """The ids a GONE record removes, if every one is a job's id in ASCII digits (as
    ``quick_id`` reads them), else none: a GONE the index would apply in part, or that
    names a number spelled otherwise, is not one to plan by."""
    try:
        data = jsontext.loads(payload.decode("utf-8"))
    except ValueError:
        return []
    ids = data.get("ids") if type(data) is dict else None
    if type(ids) is not list or not all(
            type(job_id) is str and job_id.isascii() and job_id.isdigit() and len(job_id) <= 12
            for job_id in ids):
        return []
    return ids


def plan(records: list[Record], known: Container[str],
         decode: Callable[[Record], Job], *, notes_waiting: bool = False
         ) -> dict[int, Job | None]:
    """Of one read's ``records``: the places of the records to pass over (None), and of
    each JOB record that replaces them, its job, decoded and checked by ``decode``
    (``JobIndex._job`` takes it as it is). ``known``: the ids the index knew before the
    read; ``notes_waiting``: the index holds retry notes (no GONE is planned by then)."""
    places: dict[str, list[int]] = {}
    changes: list[tuple[int, str]] = []
    removed: dict[str, int] = {}  # job id -> the place of the last GONE naming it
    for at, record in enumerate(records):
        if (kind := record.kind) == _JOB:
            if (job_id := quick_id(record.payload)) is not None:
                places.setdefault(job_id, []).append(at)
        elif kind in _CHANGES and (job_id := quick_id(record.payload)) is not None:
            changes.append((at, job_id))
        elif kind == _GONE:
            removed.update(dict.fromkeys(gone_ids(record.payload), at))
        elif kind == _NOTE:
            notes_waiting = True
    if notes_waiting:
        removed.clear()
    chosen: dict[int, Job | None] = {}
    last: dict[str, int] = {}  # job id -> the changes before this place are passed over
    for job_id, found in places.items():
        if job_id in known:
            continue
        if (gone := removed.get(job_id, -1)) > found[0]:
            chosen.update(dict.fromkeys(at for at in found if at < gone))
            last[job_id] = gone
            found = [at for at in found if at > gone]
        if len(found) >= 2 and (job := _finished(records[found[-1]], job_id, decode)):
            chosen.update(dict.fromkeys(found[:-1]))
            chosen[found[-1]] = job
            last[job_id] = found[-1]
    for at, job_id in changes:  # they find no job: the records before the last passed over
        if at < last.get(job_id, -1):
            chosen[at] = None
    return chosen


def _finished(record: Record, job_id: str, decode: Callable[[Record], Job]) -> Job | None:
    """The job of a JOB record that replaces the ones before it: valid, this job, finished."""
    try:
        job = decode(record)
    except (ValueError, TypeError, KeyError, AttributeError, ImpossibleTransition):
        return None  # applied in its turn, and skipped with its line, as before
    return job if job.id == job_id and job.state in FINISHED else None
