"""Retry notes as journal records: what the LPD server remembers of each job it received,
so that a client's resend after a lost final acknowledgement is known (server/retries.py
decides what a resend is; this module only keeps what it noted).

Why records (issue 16): a note was a file of its own, ``received/KEY``, written durably
before each commit: a new file, an fsync of it and one of its folder per received job,
about a third of the receiving thread's time. A ``NOTE`` record goes in the job's own
write, just before its ``DATA`` and ``JOB`` records, and the same fdatasync makes it
durable.

A record's payload is ``KEY ID WHEN DIGEST FORM`` in ASCII: KEY the 40 hex digits of what
makes a job the same on the wire, ID the job's number, WHEN its time, DIGEST the sha256
of its data (40 hex digits) or ``-`` when not known yet. FORM says how far it counts:

- ``new``: written before its job's ``JOB`` record, in the same write. It counts only
  once that ``JOB`` record follows: a torn write or a power cut may keep a prefix of the
  write, and a note of a job that never was would make the job's resend (the client was
  never told "received") be taken for a retry and dropped: a lost job.
- ``seen``: its job was recorded (a digest noted after the acknowledgement, or a
  compaction keeping the note of a job already printed and dropped).
- ``void``: its job's commit failed (never acknowledged): the note is taken back.

A queue keeps at most NOTES_MAX notes (the oldest keys go first) and a compaction keeps
those younger than KEEP: a client retries within seconds or minutes (LPRng after 10 s,
CUPS after 30 s), and the index holding them stays a few MiB.
"""
from __future__ import annotations

import contextlib
import os
from collections import OrderedDict

from lpfilter.spool.journalformat import Kind

#: Notes kept, in all (about 100 bytes each in the journal, ~300 in memory).
NOTES_MAX = 20000
#: The most jobs one key remembers (a client repeating one control file for new jobs).
MAX_NOTED = 32
#: A compaction keeps the notes younger than this (seconds).
KEEP = 86400.0
UNKNOWN = "-"
KEY_LENGTH = 40
NEW, SEEN, VOID = "new", "seen", "void"
#: What the notes were before they were records (a spool's old form), removed at recovery.
OLD_FOLDER, OLD_FILES = "received", ("received.swept", "receive.lock")


class Noted:
    """A job received before with the same key: its id, when, and its data's digest. (A
    plain class: every command reads the journal, and ``dataclasses`` costs 4-6 ms to
    import, tests/test_startup.py.)"""

    __slots__ = ("digest", "job_id", "when")
    _NAMES = ("job_id", "when", "digest")

    def __init__(self, job_id: str, when: float, digest: str = UNKNOWN) -> None:
        self.job_id, self.when, self.digest = job_id, when, digest

    def _fields(self) -> tuple[str, float, str]:
        return self.job_id, self.when, self.digest

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Noted) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return f"Noted({self.job_id!r}, {self.when!r}, {self.digest!r})"

    def replace(self, **changes: str | float) -> Noted:
        """A copy with ``changes`` (job_id, when, digest)."""
        fields = dict(zip(self._NAMES, self._fields(), strict=True))
        fields.update(changes)
        return Noted(**fields)  # type: ignore[arg-type]


def note_record(key: str, noted: Noted, form: str = NEW) -> tuple[int, bytes]:
    return Kind.NOTE, (f"{key} {noted.job_id} {noted.when:.3f} {noted.digest}"
                       f" {form}").encode("ascii")


def parse(payload: bytes) -> tuple[str, Noted, str]:
    """(key, note, form) of a NOTE record; ValueError when it is not one."""
    key, job_id, when, digest, form = payload.decode("ascii").split(" ")
    if len(key) != KEY_LENGTH or not job_id.isdigit() or form not in (NEW, SEEN, VOID):
        raise ValueError(f"not a retry note: {payload[:80]!r}")
    return key, Noted(job_id, float(when), digest), form


class Notes:
    """A queue's notes by key, in the order they were written (part of the JobIndex)."""

    def __init__(self) -> None:
        #: key -> {job id: [note, counts]}; ``counts`` False while a ``new`` note waits
        #: for its JOB record.
        self.keys: OrderedDict[str, dict[str, list]] = OrderedDict()
        #: job id -> key of the ``new`` notes waiting for their JOB record.
        self.waiting: dict[str, str] = {}
        self.count = 0

    @property
    def size(self) -> int:
        """About what a compaction writes for them (a record is ~120 bytes)."""
        return self.count * 120

    def apply(self, payload: bytes) -> None:
        key, noted, form = parse(payload)
        jobs = self.keys.get(key)
        if form == VOID:
            if jobs is not None and jobs.pop(noted.job_id, None) is not None:
                self.count -= 1
            self.waiting.pop(noted.job_id, None)
            return
        if jobs is None:
            jobs = self.keys[key] = {}
        else:
            self.keys.move_to_end(key)
        was = jobs.get(noted.job_id)
        if was is None:
            self.count += 1
        counts = form == SEEN or (was is not None and was[1])
        jobs[noted.job_id] = [noted, counts]
        if counts:
            self.waiting.pop(noted.job_id, None)
        else:
            self.waiting[noted.job_id] = key
        if len(jobs) > MAX_NOTED:
            self._drop(jobs, next(iter(jobs)))
        while self.count > NOTES_MAX:
            _oldest, jobs = self.keys.popitem(last=False)
            for job_id in list(jobs):
                self._drop(jobs, job_id)

    def _drop(self, jobs: dict[str, list], job_id: str) -> None:
        del jobs[job_id]
        self.waiting.pop(job_id, None)
        self.count -= 1

    def recorded(self, job_id: str) -> None:
        """The JOB record of ``job_id`` was read: its ``new`` note counts from now on."""
        key = self.waiting.pop(job_id, None)
        if key is not None:
            self.keys[key][job_id][1] = True

    def lookup(self, key: str) -> list[Noted]:
        """The notes that count under ``key``, oldest first."""
        return [noted for noted, counts in self.keys.get(key, {}).values() if counts]

    def records(self, now: float) -> list[tuple[int, bytes]]:
        """What a compaction keeps: every note that counts, younger than KEEP."""
        return [note_record(key, noted, SEEN) for key, jobs in self.keys.items()
                for noted, counts in jobs.values() if counts and now - noted.when < KEEP]

    def clear(self) -> None:
        self.keys.clear()
        self.waiting.clear()
        self.count = 0


def retire_old(state: str) -> None:
    """Remove the notes an older lpfilter kept as files (``received/KEY``): never a link
    followed (the folder opened with O_NOFOLLOW, its entries unlinked by name in it)."""
    path = os.path.join(state, OLD_FOLDER)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return  # none (or not a folder: not ours to remove)
    try:
        for name in os.listdir(fd):
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=fd)
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.rmdir(path)
    for name in OLD_FILES:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(state, name))
