"""A queue's jobs as its journal says: the replay, and what a crash leaves to settle
(spool/marks.py ``settle`` does it).

The last word on each job wins: a JOB record sets all of it (a ticket's fields), the
small records change what they name. ``SpoolStore`` writes JOB, CANCEL (on or off), GONE
and RESERVE (a job number given out) records, HEAD at a compaction (their bytes built in
spool/journalformat.py); its in-memory index is a ``JobIndex``. A small job's bytes may
be a DATA record just before its JOB record, in the same write (spool/jobdata.py): kept
in ``data`` while the job is not finished. An INTENT (a hot-folder file about to be
renamed to a job's data file, spool/intents.py) is kept aside in ``intents`` until a JOB
or GONE names its job. NOTE records are the LPD server's retry notes (spool/notes.py),
kept unread until ``notes`` is first asked for.

The worker (phase 2, bench/JOURNAL-DESIGN.md §2.4-2.5, spool/marks.py) commits one MARK
for a batch of jobs before the first byte of any of them leaves ("these may be sent from
now on", durable), then for each job START (the attempt began) and FIRST (its first byte
is about to leave), and the outcome as a JOB record, none of them synced (END is replayed
too: tests/journalkit.py writes it). So after a crash:

* same boot (the process was killed: every record it wrote is in the file): a job with a
  FIRST and no END was in flight: queued again, a possible duplicate; a job only MARKed
  or STARTed never sent a byte: queued, not flagged;
* another boot (a power cut may have taken unsynced records): every job a MARK covers
  and no outcome (a JOB or END record) closes may have sent bytes: queued again, a
  possible duplicate.

A record is untrusted input (a spool owner may write anything into their journal, and
root's watcher reads it): job ids are digits (an id names a data file), the queue must be
this queue, a damaged record is skipped with a line in the log.
"""
from __future__ import annotations

import time

from lpfilter import jsontext, logs
from lpfilter.errors import ImpossibleTransition
from lpfilter.job import FINISHED, Job, JobState
from lpfilter.spool.journalformat import (END_FIELDS, JOURNAL_MAX, Kind, Record, cancel_record,
                                          data_record, decode, first_lsn, intent_record,
                                          job_record, last_given, mark_record)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lpfilter.spool.notes import Notes

log = logs.getLogger(__name__)

#: The kinds by plain names: ``Kind.JOB`` is an attribute of the enum's class, looked up
#: at 70 ns, and the replay compares each record's kind with several of them (every
#: command replays its queue's journal).
(_JOB, _DATA, _NOTE, _MARK, _GONE, _INTENT, _CANCEL, _START, _FIRST, _END) = (
    Kind.JOB, Kind.DATA, Kind.NOTE, Kind.MARK, Kind.GONE, Kind.INTENT, Kind.CANCEL,
    Kind.START, Kind.FIRST, Kind.END)
_UNUSED = frozenset({Kind.MOVE, Kind.PROGRESS})
_NUMBERS = frozenset({Kind.HEAD, Kind.RESERVE})
#: NOTE records (and JOB ids after them) kept unread at most (``JobIndex.notes``).
UNREAD_MAX = 1 << 14


def payload(record: Record) -> Any:
    return jsontext.loads(record.payload.decode("utf-8"))


#: The highest job number (12 digits: a longer id is no job's, see ``_job_id``).
ID_MAX = 10**12 - 1
#: The highest pid a Linux kernel gives (pid_max at most 2**22).
PID_MAX = 1 << 22


def _job_id(value: object) -> str:
    if not isinstance(value, str) or not value.isdigit() or len(value) > 12:
        raise ValueError(f"not a job id: {value!r}")
    return value


#: An INTENT's fields and their types (spool/intents.py says what each means).
INTENT_FIELDS: dict[str, type] = {"name": str, "uid": int, "size": int, "at": float, "pid": int,
                                  "start": float, "held": bool, "limit": int}


def _intent(data: dict[str, Any]) -> dict[str, Any]:
    """An INTENT's fields, checked: each of its type, numbers from 0 to 2**63, the name one
    a file may have (untrusted input, like every record: an error shows no value of it,
    which could be long or hold control characters)."""
    fields: dict[str, Any] = {}
    for name, kind in INTENT_FIELDS.items():
        value: Any = data[name]
        if kind is float and type(value) is int:
            value = float(value)
        wrong = type(value) is not kind
        if wrong or (kind is not str and not 0 <= value < 1 << 63):
            raise ValueError(f"an intent's {name} is no {kind.__name__} from 0 to 2**63")
        fields[name] = value
    name = fields["name"]
    if not 0 < len(name) <= 255 or "/" in name or "\0" in name or name in (".", ".."):
        raise ValueError(f"an intent's name ({len(name)} characters) is no file's name")
    return fields


def _last_number(value: object) -> int:
    """A RESERVE's or HEAD's last number given: one after which a number is left (a last
    of ID_MAX would make every later job's id one the replay skips)."""
    number = int(_job_id(str(value)))
    if number >= ID_MAX:
        raise ValueError(f"a last job number of {number}: no number is left after it")
    return number


class JobIndex:
    """What one queue's journal says about its jobs; ``apply`` each record in order. (A
    plain class, not a dataclass: ``status`` and ``print`` build one.)"""

    def __init__(self, queue: str, *, any_queue: bool = False) -> None:
        self.queue = queue
        self.jobs: dict[str, Job] = {}
        #: The ids of the jobs not finished: a worker's batch lists these, not the finished
        #: tickets kept beside them (thousands, in a burst).
        self.unfinished: set[str] = set()
        #: Jobs a MARK covers and no END has closed since: id -> the boot of that MARK.
        self.marked: dict[str, str] = {}
        #: Jobs asked to stop (a CANCEL on): id -> True to put back (lpc abort), False to cancel.
        self.cancels: dict[str, bool] = {}
        #: The size of each job's last JOB record (compaction weighs the live jobs by it).
        self.sizes: dict[str, int] = {}
        #: Hot-folder files named before their rename to a job's data file, whose job no JOB
        #: or GONE has named since: id -> the INTENT's fields (``INTENT_FIELDS``).
        self.intents: dict[str, dict[str, Any]] = {}
        #: The bytes of small jobs held in the journal (DATA records), while not finished.
        self.data: dict[str, bytes] = {}
        #: Their size in all (the memory they hold: ``print`` inlines within a budget).
        self.data_held = 0
        #: The bytes of every DATA record replayed (kept or not: a compaction's measure).
        self.data_read = 0
        #: The LPD server's retry notes (spool/notes.py), made when first asked for. Until
        #: then ``unread`` keeps the NOTE records, and the id of each JOB record after
        #: the first (a note counts once its job's record follows): every command replays
        #: a journal, a busy server's holds thousands of notes, and only a server asks.
        self._notes: Notes | None = None
        self.unread: list[Record | str] = []
        #: JOB records this process is appending: id(payload) -> (payload, a copy of the
        #: job it was made of), taken back instead of decoded (``expect``).
        self.made: dict[int, tuple[bytes, Job]] = {}
        self.last_id = 0
        self.skipped = 0
        #: Any queue's jobs (tests and tools reading a journal); a store takes only its own.
        self.any_queue = any_queue

    @property
    def notes(self) -> Notes:
        return self._notes if self._notes is not None else self._read_notes()

    def _read_notes(self) -> Notes:
        """The notes made from the records kept unread, in the order read (a bad one is
        skipped and logged as any record is)."""
        from lpfilter.spool.notes import Notes  # (see __init__)
        self._notes, unread, self.unread = Notes(), self.unread, []
        for item in unread:
            if isinstance(item, str):
                self._notes.recorded(item)
            else:
                self.apply(item)
        return self._notes

    def decode_job(self, record: Record) -> Job:
        """A JOB record's job, checked (its id, its queue): this process's own record is
        taken back, not decoded (``expect``)."""
        made = self.made.get(id(record.payload))
        job = (made[1] if made is not None and made[0] is record.payload
               else Job.from_json(record.payload.decode("utf-8")))
        _job_id(job.id)
        if job.queue != self.queue and not self.any_queue:
            raise ValueError(f"job {job.id} of queue {job.queue!r}")
        return job

    def _job(self, record: Record, job: Job | None = None) -> None:
        job = self.decode_job(record) if job is None else job
        self.jobs[job.id] = job
        self._track(job)
        self.sizes[job.id] = len(record.payload)
        self.marked.pop(job.id, None)
        self.intents.pop(job.id, None)
        if self._notes is not None or self.unread:
            self._note(job.id)
        self.last_id = max(self.last_id, int(job.id))

    def _note(self, item: Record | str) -> None:
        """A NOTE record, or the id of a JOB record after one (its note counts from now
        on): taken in when the notes are read, else kept unread."""
        if self._notes is None:
            self.unread.append(item)
            if len(self.unread) > UNREAD_MAX:  # a long journal of notes: read as they come
                self._read_notes()
        elif isinstance(item, str):
            self._notes.recorded(item)
        else:
            self._notes.apply(item.payload)

    def apply_all(self, records: list[Record]) -> None:
        """``apply`` one read's records in order, but a JOB record a later one replaces or
        a GONE removes (spool/supersede.py: imported only for a read with two JOB records)."""
        chosen: dict[int, Job | None] = {}
        if sum(record.kind == _JOB for record in records) > 1:
            from lpfilter.spool.supersede import plan  # (0.5 M instructions otherwise)
            chosen = plan(records, self.jobs, self.decode_job,
                          notes_waiting=self._notes is not None or bool(self.unread))
        for at, record in enumerate(records):
            if at not in chosen:
                self.apply(record)
            elif (job := chosen[at]) is not None:
                self._job(record, job)  # (decoded and checked: nothing left to fail)

    def apply(self, record: Record) -> None:
        try:
            self._apply(record)
        except (ValueError, TypeError, KeyError, AttributeError, ImpossibleTransition) as exc:
            self.skipped += 1
            log.warning("queue %s: journal record at %d skipped: %s", self.queue,
                        record.lsn, exc)

    def _apply(self, record: Record) -> None:
        if (kind := record.kind) == _JOB:
            self._job(record)
            return
        if kind == _DATA:
            name, _, data = record.payload.partition(b"\n")
            job_id = _job_id(name.decode("ascii"))
            self._drop_data(job_id)
            self.data[job_id] = data
            self.data_held += len(data)
            self.data_read += len(data)
            return
        if kind == _NOTE:
            self._note(record)
            return
        if kind in _UNUSED:
            return  # not written
        if kind in _NUMBERS:  # numbers never given again
            self.last_id = max(self.last_id, _last_number(last_given(record.payload)))
            return
        data = payload(record) if record.payload else {}
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if kind == _MARK:
            boot = str(data["boot"])
            for job_id in data["ids"]:
                if _job_id(job_id) in self.jobs:
                    self.marked[job_id] = boot
        elif kind == _GONE:  # (its ids' numbers are not given again, as their JOB's)
            for job_id in data["ids"]:
                self.jobs.pop(_job_id(job_id), None)
                if job_id.isascii():
                    self.last_id = max(self.last_id, int(job_id))
                self.unfinished.discard(job_id)
                self._drop_data(job_id)
                self.sizes.pop(job_id, None)
                self.marked.pop(job_id, None)
                self.cancels.pop(job_id, None)
                self.intents.pop(job_id, None)
        elif kind == _INTENT:
            self.intents[_job_id(data["id"])] = _intent(data)
        elif kind == _CANCEL:
            job_id = _job_id(data["id"])
            if data.get("on", True):
                self.cancels[job_id] = data.get("requeue") is True
            else:
                self.cancels.pop(job_id, None)
        else:
            self._change(kind, data)

    def expect(self, records: list[tuple[int, bytes]], jobs: list[Job]) -> None:
        """The JOB records about to be appended, and the jobs they were made of (in order):
        a record read back as this very payload is taken as a copy of its job (its own
        ``extra``), as decoding it would give."""
        made = [payload for kind, payload in records if kind == Kind.JOB]
        for payload, job in zip(made, jobs):
            own = job.copy()
            own.extra = dict(job.extra)
            self.made[id(payload)] = (payload, own)

    def _track(self, job: Job) -> None:
        if job.state in FINISHED:  # its bytes are not needed any more: a compaction drops them
            self.unfinished.discard(job.id)
            self._drop_data(job.id)
        else:
            self.unfinished.add(job.id)

    def _drop_data(self, job_id: str) -> None:
        self.data_held -= len(self.data.pop(job_id, b""))

    def _change(self, kind: int, data: dict[str, Any]) -> None:
        job = self.jobs.get(_job_id(data["id"]))
        if job is None:
            return
        if kind == _START:
            if job.state != JobState.ACTIVE:
                job.move_to(JobState.ACTIVE)
            job.attempts = int(data["attempts"])
            job.started = float(data["started"])
            pid = int(data["pid"])
            if not 0 < pid <= PID_MAX:
                raise ValueError(f"a START's pid {pid}: no process has it")
            job.worker = (pid, float(data.get("since", 0.0)))
            if "server" in data:
                job.extra = {**job.extra, "server": str(data["server"])}
            job.bytes_sent = 0  # this attempt's, as the send goes (the worker's process)
            if job.send_started:  # a try after one that may have printed
                job.possible_duplicate = True
        elif kind == _FIRST:
            job.send_started = True
        elif kind == _END:
            state = JobState(data["state"])
            if state != job.state:  # a record of a change that cannot happen is skipped
                job.move_to(state)
            for name, value in data.items():
                if name in END_FIELDS and name != "state":
                    setattr(job, name, value)
            job.worker = None
            self.marked.pop(job.id, None)
        self._track(job)

    def reset(self) -> None:
        """Before a compacted journal is replayed from its start (the last number stays)."""
        for held in (self.jobs, self.unfinished, self.marked, self.cancels, self.sizes,
                     self.intents, self.data):
            held.clear()
        self.data_held = self.data_read = 0
        self._notes, self.unread = None, []

    def live_size(self) -> int:
        """About what a compaction would write: the jobs' last JOB records, the bytes of
        the unfinished jobs held in the journal, and the retry notes (``notes_size``)."""
        return sum(self.sizes.values()) + self.data_held + self.notes_size()

    def notes_size(self) -> int:
        """About what a compaction writes of the retry notes (unread: their records)."""
        if self._notes is not None:
            return self._notes.size
        return sum(len(item.payload) for item in self.unread if not isinstance(item, str))

    def dead_data(self) -> int:
        """The bytes of DATA records the journal holds for jobs no longer keeping them."""
        return self.data_read - self.data_held

    def compacted(self, keep: int) -> tuple[bytes, list[tuple[int, bytes]]]:
        """What a compaction writes: the HEAD's payload, one JOB record per job still kept
        (every unfinished one, after its bytes when the journal holds them; the ``keep``
        newest finished ones), then the MARKs still
        open (a power cut after the compaction must still flag what they cover), every
        intent not yet spent (only the lease holder's recovery knows whose writer is gone;
        it spends those, spool/intents.py), and the LPD server's recent retry notes."""
        finished = sorted((j for j in self.jobs.values() if j.state in FINISHED),
                          key=lambda j: j.finished or 0.0, reverse=True)[:keep]
        newest = {job.id for job in finished}  # by id: comparing jobs is slow (quadratic)
        kept = [j for j in self.jobs.values()
                if j.state not in FINISHED or j.id in newest]
        head = jsontext.dumps({"last_id": str(self.last_id)}).encode()
        records: list[tuple[int, bytes]] = []
        for job in sorted(kept, key=lambda j: int(j.id)):
            if job.id in self.data:
                records.append(data_record(job.id, self.data[job.id]))
            records.append(job_record(job))
        boots: dict[str, list[str]] = {}
        for job_id, boot in self.marked.items():
            boots.setdefault(boot, []).append(job_id)
        records += [cancel_record(i, True, self.cancels[i]) for i in sorted(self.cancels)]
        records += [intent_record(job_id, fields) for job_id, fields in self.intents.items()]
        records += (self.notes.records(time.time()) if self._notes is not None or self.unread
                    else [])
        return head, records + [mark_record(ids, boot) for boot, ids in boots.items()]

    def next_id(self) -> str:
        return f"{self.last_id + 1:06d}"

    def queued(self) -> list[Job]:
        return [job for job in self.open_jobs() if job.state == JobState.QUEUED]

    def open_jobs(self) -> list[Job]:
        """The jobs not finished (in no particular order)."""
        return [self.jobs[job_id] for job_id in self.unfinished]


def replay(data: bytes, queue: str | None = None) -> JobIndex:
    """A journal's bytes replayed (a pure function; ``queue`` None: any queue's jobs)."""
    index = JobIndex(queue or "", any_queue=queue is None)
    records, _ = decode(data[:JOURNAL_MAX], first_lsn(data))
    for record in records:
        index.apply(record)
    return index


def replay_file(path: str, queue: str | None = None) -> dict[str, dict[str, Any]]:
    """Every job a journal file names, as the dicts its JOB records hold (the tickets'
    fields: what tests and tools read), by id, in arrival order."""
    with open(path, "rb") as handle:
        index = replay(handle.read(JOURNAL_MAX), queue)
    ordered = sorted(index.jobs.values(), key=lambda j: (len(j.id), j.id))
    return {job.id: jsontext.loads(job.to_json()) for job in ordered}
