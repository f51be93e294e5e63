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
- ``void``: its job's commit failed (never acknowledged): the note is taken back, in the
  same write as the GONE record that forgets the job (spool/jobdata.py ``commit_all``).

A queue keeps at most NOTES_MAX notes (the oldest keys go first) and a compaction keeps
those younger than KEEP: a client retries within seconds or minutes (LPRng after 10 s,
CUPS after 30 s), and the index holding them stays a few MiB. A compaction writes them
``seen``, one per line, up to BATCH_BYTES a record: a busy server keeps thousands, and
every command replays the journal (one record each was 40 % of a ``status``'s replay at
6,000; spool/jobindex.py also leaves them unread until a server asks).
"""
from __future__ import annotations

import contextlib
import os
from collections import OrderedDict

from lpfilter.spool.journalformat import Kind

#: Notes kept, in all (about 120 bytes each in the journal, ~350 in memory): 10000 are
#: half a minute of a busy server's jobs, a quarter of an hour of 10 jobs a second.
NOTES_MAX = 10000
#: The most jobs one key remembers (a client repeating one control file for new jobs).
MAX_NOTED = 32
#: A compaction keeps the notes younger than this (seconds).
KEEP = 86400.0
#: The most bytes of notes in one record a compaction writes (a record holds 1 MiB).
BATCH_BYTES = 256 << 10
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


def note_record(key: str, noted: Noted, form: str = NEW) -> tuple[int, bytes]:
    return Kind.NOTE, (f"{key} {noted.job_id} {noted.when:.3f} {noted.digest}"
                       f" {form}").encode("ascii")


def void_of(record: tuple[int, bytes]) -> tuple[int, bytes]:
    """A note written with a job whose commit then failed, taken back."""
    key, noted, _form = parse(record[1])
    return note_record(key, noted, VOID)


def parse(payload: bytes) -> tuple[str, Noted, str]:
    """(key, note, form) of one note (a NOTE record, or a line of a compaction's); a
    ValueError when it is not one."""
    key, job_id, when, digest, form = payload.decode("ascii").split(" ")
    if (len(key) != KEY_LENGTH or not job_id.isdigit() or form not in (NEW, SEEN, VOID)
            or len(job_id) > 12 or len(when) > 32 or len(digest) > 64):  # (a line's bound)
        raise ValueError(f"not a retry note: {payload[:80]!r}")
    return key, Noted(job_id, float(when), digest), form


class Notes:
    """A queue's notes by key, the key written to last at the end (part of the JobIndex).
    Kept small, since a daemon holds them: one string per note (``ID WHEN DIGEST``) in a
    list per key, about 350 bytes a note in all (3.5 MB at NOTES_MAX)."""

    def __init__(self) -> None:
        self.keys: OrderedDict[str, list[str]] = OrderedDict()
        #: job id -> key of the ``new`` notes still waiting for their JOB record.
        self.waiting: dict[str, str] = {}
        self.count = 0

    @property
    def size(self) -> int:
        """About what a compaction writes for them (~120 bytes a note)."""
        return self.count * 120

    def apply(self, payload: bytes) -> None:
        """One NOTE record: a note, or a compaction's notes, one a line (a bad line is
        skipped, the others kept, and its error raised at the end)."""
        error: ValueError | None = None
        for line in payload.split(b"\n") if b"\n" in payload else (payload,):
            try:
                self._apply(line)
            except ValueError as exc:
                error = error or exc
        if error is not None:
            raise error

    def _apply(self, payload: bytes) -> None:
        key, noted, form = parse(payload)
        entries = self.keys.get(key)
        at = _find(entries, noted.job_id) if entries else -1
        if form == VOID:
            if entries is not None and at >= 0:
                self._drop(key, entries, at)
            return
        entry = payload[KEY_LENGTH + 1:payload.rindex(b" ")].decode("ascii")
        if entries is None:
            entries = self.keys[key] = []
        else:
            self.keys.move_to_end(key)
        if at >= 0:
            entries[at] = entry
        else:
            entries.append(entry)
            self.count += 1
            if form == NEW:
                self.waiting[noted.job_id] = key
        if form == SEEN:
            self.waiting.pop(noted.job_id, None)
        if len(entries) > MAX_NOTED:
            self._drop(key, entries, 0)
        while self.count > NOTES_MAX:
            oldest = next(iter(self.keys))
            self._drop(oldest, self.keys[oldest], 0)

    def _drop(self, key: str, entries: list[str], at: int) -> None:
        job_id = entries.pop(at).split(" ", 1)[0]
        if self.waiting.get(job_id) == key:
            del self.waiting[job_id]
        self.count -= 1
        if not entries:
            del self.keys[key]

    def recorded(self, job_id: str) -> None:
        """The JOB record of ``job_id`` was read: its ``new`` note counts from now on."""
        self.waiting.pop(job_id, None)

    def lookup(self, key: str) -> list[Noted]:
        """The notes that count under ``key``, oldest first."""
        return [noted for noted in map(_noted, self.keys.get(key, ()))
                if self.waiting.get(noted.job_id) != key]

    def records(self, now: float) -> list[tuple[int, bytes]]:
        """What a compaction keeps: every note that counts, younger than KEEP, a line each,
        in records of up to BATCH_BYTES."""
        batches: list[list[bytes]] = []
        size = BATCH_BYTES
        for key, entries in self.keys.items():
            for entry in entries:  # (as ``lookup``, without a Noted made for each)
                job_id, when, _digest = entry.split(" ")
                if self.waiting.get(job_id) == key or not now - float(when) < KEEP:
                    continue
                line = f"{key} {entry} {SEEN}".encode("ascii")
                if size + len(line) >= BATCH_BYTES:
                    batches.append([])
                    size = 0
                batches[-1].append(line)
                size += len(line) + 1
        return [(Kind.NOTE, b"\n".join(lines)) for lines in batches]


def _find(entries: list[str], job_id: str) -> int:
    """Where the note of ``job_id`` is in a key's list (-1: none)."""
    prefix = job_id + " "
    for at, entry in enumerate(entries):
        if entry.startswith(prefix):
            return at
    return -1


def _noted(entry: str) -> Noted:
    job_id, when, digest = entry.split(" ")
    return Noted(job_id, float(when), digest)


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
