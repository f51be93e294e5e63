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

The id is read without json: the payload's one ``"id": "DIGITS"``. ``Job.to_json`` writes
every ticket's id that way, once, at the top level; an ``extra`` holding an "id" of its own
makes two, and such a record is decoded as before. A record spelled otherwise (lpfilter
never writes one) is decoded as before too. A hand-made record could name one job here and
another in its JSON: it would hide a record of its own journal, which its writer can do
with a GONE record anyway. A first record that would have been skipped as damaged is now
passed over without its warning line: the last record decides the job either way.
"""
from __future__ import annotations

from lpfilter.errors import ImpossibleTransition
from lpfilter.job import FINISHED, Job
from lpfilter.spool.journalformat import Kind, Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Container

_KEY = b'"id": "'
_JOB = Kind.JOB
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


def plan(records: list[Record], known: Container[str],
         decode: Callable[[Record], Job]) -> dict[int, Job | None]:
    """Of one read's ``records``: the places of the JOB records to pass over (None), and
    of each record that replaces them, its job, decoded and checked by ``decode``
    (``JobIndex._job`` takes it as it is). ``known``: the ids the index knew before the
    read. Empty when no job has two JOB records here."""
    places: dict[str, list[int]] = {}
    changes: list[tuple[int, str]] = []
    for at, record in enumerate(records):
        if (kind := record.kind) == _JOB:
            if (job_id := quick_id(record.payload)) is not None:
                places.setdefault(job_id, []).append(at)
        elif kind in _CHANGES and (job_id := quick_id(record.payload)) is not None:
            changes.append((at, job_id))
    chosen: dict[int, Job | None] = {}
    last: dict[str, int] = {}
    if len(places) == sum(map(len, places.values())):
        return chosen  # every job once: nothing replaced
    for job_id, found in places.items():
        if len(found) < 2 or job_id in known:
            continue
        try:
            job = decode(records[found[-1]])
        except (ValueError, TypeError, KeyError, AttributeError, ImpossibleTransition):
            continue  # applied in its turn, and skipped with its line, as before
        if job.id != job_id or job.state not in FINISHED:
            continue
        chosen.update(dict.fromkeys(found[:-1]))
        chosen[found[-1]] = job
        last[job_id] = found[-1]
    for at, job_id in changes:  # they find no job: the records before the last passed over
        if at < last.get(job_id, -1):
            chosen[at] = None
    return chosen
