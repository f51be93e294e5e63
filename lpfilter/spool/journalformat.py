"""A journal's records as bytes: pure functions that build and check them.

A record on disk::

    u32 length of the body | u32 crc32 of the body | body = u64 lsn, u8 kind, payload

``lsn`` is the record's place in the journal (its offset, counted from the journal's first
generation: a compacted journal starts with a HEAD whose LSN goes on from the old end), so
a record found anywhere else is not one. The payload is UTF-8 JSON (a ticket's fields for a
JOB record). Every byte is untrusted input for root (the spool's owner may write the
file): lengths are bounded, the checksum and the LSN checked, and the payload goes through
``Job.from_json`` and the replay's own checks (``jobindex``). The payloads of the records
lpfilter writes are built here too (``job_record`` and the others).
"""
from __future__ import annotations

import binascii  # crc32 as zlib computes it, without loading zlib (quick commands import this)
import os
import struct
import time

from lpfilter import jsontext
from lpfilter.enums import IntEnum
from lpfilter.errors import AccessError
from lpfilter.spool import JOURNAL as JOURNAL  # (defined there: see its docstring)
from lpfilter.structs import FrozenStruct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lpfilter.job import Job

_HEAD = struct.Struct("<II")
_BODY = struct.Struct("<QB")
#: The largest record body: a ticket (TICKET_MAX) and its framing.
RECORD_MAX = (1 << 20) + _BODY.size
#: The most one ``append`` writes: a torn write is never longer (see JournalDamaged).
BATCH_MAX = 8 << 20
#: A journal is read at most this far (a spool owner could make it any size).
JOURNAL_MAX = 64 << 20
#: The highest LSN a journal's first record may have: LSNs count the bytes ever appended,
#: so a journal never gets near it; a forged one nearer 2**64 would overflow ``encode``.
LSN_MAX = 1 << 62
#: When this module was loaded: with the pid, a process's own "boot" when the real one is
#: unknown (``boot_id``).
_LOADED = time.time_ns()


class Kind(IntEnum):
    """What a record says (bench/JOURNAL-DESIGN.md §2.2; phase 1 writes HEAD, JOB, CANCEL,
    GONE, RESERVE and INTENT; the replay knows the others)."""

    HEAD = 1
    JOB = 2
    MARK = 3
    START = 4
    END = 5
    PROGRESS = 6
    CANCEL = 7
    GONE = 8
    NOTE = 9
    MOVE = 10
    FIRST = 11
    #: A small job's bytes, in the same write as its JOB (design §2.9, phase 2).
    DATA = 12
    #: A job number given out (``next_id``), so that no other process gives it again.
    RESERVE = 13
    #: A hot-folder file about to be renamed to a job's data file, and what its JOB record
    #: will say (spool/intents.py): a crash before that record is settled at once.
    INTENT = 14


class Record(FrozenStruct):
    """One record as read back: where it starts, its kind and its payload (a
    ``FrozenStruct``, not a dataclass: ``status`` imports this module)."""

    __slots__ = _fields = ("lsn", "kind", "payload")
    lsn: int
    kind: int
    payload: bytes

    def __init__(self, lsn: int, kind: int, payload: bytes) -> None:
        object.__setattr__(self, "lsn", lsn)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "payload", payload)

    @property
    def end(self) -> int:
        return self.lsn + _HEAD.size + _BODY.size + len(self.payload)


class JournalDamaged(AccessError):
    """Records that do not check, followed by good ones or by more than a torn write can
    leave: not cut (that would drop what others were told), refused with one line."""


def encode(lsn: int, kind: int, payload: bytes) -> bytes:
    """One record's bytes, to be written at LSN ``lsn``."""
    body = _BODY.pack(lsn, kind) + payload
    if len(body) > RECORD_MAX:
        raise ValueError(f"a journal record of {len(body)} bytes: more than {RECORD_MAX}")
    return _HEAD.pack(len(body), binascii.crc32(body)) + body


def encode_all(lsn: int, records: list[tuple[int, bytes]]) -> tuple[bytes, int]:
    """``(kind, payload)`` records as one write starting at ``lsn``, and the LSN after."""
    chunks = []
    for kind, payload in records:
        chunks.append(encode(lsn, kind, payload))
        lsn += len(chunks[-1])
    return b"".join(chunks), lsn


def _one(data: bytes | memoryview, pos: int, lsn: int) -> Record | None:
    """The record at ``pos`` of ``data`` if one checks there (its LSN ``lsn``). (Every
    command runs this for every record of its queue's journal: the sizes are constants
    and the struct's methods bound once.)"""
    if pos + _HEAD_SIZE > len(data):
        return None
    length, crc = _unpack_head(data, pos)
    start = pos + _HEAD_SIZE
    if not _BODY_SIZE <= length <= RECORD_MAX or start + length > len(data):
        return None
    body = data[start:start + length]
    if _crc32(body) != crc:
        return None
    found, kind = _unpack_body(body)
    if found != lsn:
        return None
    return Record(lsn, kind, bytes(body[_BODY_SIZE:]))


_HEAD_SIZE, _BODY_SIZE = _HEAD.size, _BODY.size
_unpack_head, _unpack_body, _crc32 = _HEAD.unpack_from, _BODY.unpack_from, binascii.crc32


def decode(data: bytes, base: int) -> tuple[list[Record], int]:
    """The whole records in ``data`` (read from LSN ``base``), and the LSN where they end:
    the first record that is short, too long, at the wrong offset or fails its checksum
    ends them (a torn tail, or damage: ``good_after`` tells which)."""
    records: list[Record] = []
    pos = 0
    view = memoryview(data)
    while (record := _one(view, pos, base + pos)) is not None:
        records.append(record)
        pos = record.end - base
    return records, base + pos


def good_after(data: bytes, base: int) -> int | None:
    """The offset in ``data`` (read from LSN ``base``, starting with bytes that are no
    record) of the first good record after them, or None: a torn write leaves only a
    prefix of one batch, never a whole record after a broken one."""
    view = memoryview(data)
    for pos in range(1, len(data) - _HEAD.size - _BODY.size + 1):
        if _BODY.unpack_from(view, pos + _HEAD.size)[0] == base + pos and (
                _one(view, pos, base + pos) is not None):
            return pos
    return None


def first_lsn(data: bytes) -> int:
    """The LSN of a journal's first byte: a journal that compaction started begins with a
    HEAD record whose LSN goes on from the one before (LSNs never go back); else 0."""
    if len(data) < _HEAD.size + _BODY.size:
        return 0
    lsn, kind = _BODY.unpack_from(data, _HEAD.size)
    return lsn if kind == Kind.HEAD else 0


def boot_id() -> str:
    """This boot of the kernel: what a killed process wrote is in the file for the whole
    boot; only a crash of the kernel or a power cut (a new boot) loses unsynced records."""
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as handle:  # no codec to import
            return handle.read(64).decode("ascii", "replace").strip()  # (after dropping root)
    except OSError:  # unknown (/proc/sys hidden): each process is another boot, so every
        return f"unknown-{os.getpid()}-{_LOADED}"  # mark a dead one left is flagged


# --- the records lpfilter writes (the replay reads them: spool/jobindex.py) -----------
#: The fields an END record may set (the outcome of an attempt, Ledger.finish's).
END_FIELDS = frozenset({"state", "finished", "bytes_sent", "pages", "delivery",
                        "last_error", "next_try", "possible_duplicate", "attempts"})


def start_record(job: Job, pid: int, since: float = 0.0) -> tuple[int, bytes]:
    """An attempt began (``since``: the sending process's start time, as ``Job.worker``
    says it, so ``lpc``/``cancel`` can tell whether that process still runs)."""
    data = {"id": job.id, "attempts": job.attempts, "started": job.started, "pid": pid,
            "since": since}
    if "server" in job.extra:  # the pool's server sending it (status: "on q2: sending")
        data["server"] = job.extra["server"]
    return Kind.START, jsontext.dumps(data).encode()


def first_record(job: Job) -> tuple[int, bytes]:
    return Kind.FIRST, jsontext.dumps({"id": job.id}).encode()


def end_record(job: Job) -> tuple[int, bytes]:
    data = {name: getattr(job, name) for name in END_FIELDS}
    data["id"] = job.id
    return Kind.END, jsontext.dumps(data).encode()


def mark_record(ids: list[str], boot: str) -> tuple[int, bytes]:
    return Kind.MARK, jsontext.dumps({"ids": ids, "boot": boot}).encode()


def job_record(job: Job) -> tuple[int, bytes]:
    return Kind.JOB, job.to_json().encode("utf-8")


def data_record(job_id: str, data: bytes) -> tuple[int, bytes]:
    """A small job's bytes (its id, a newline, the bytes), written just before its JOB."""
    return Kind.DATA, job_id.encode("ascii") + b"\n" + data


def cancel_record(job_id: str, on: bool, requeue: bool = False) -> tuple[int, bytes]:
    """A request to stop a job's send (``on``) or its end; ``requeue``: put the job back
    (lpc abort) rather than cancel it."""
    fields = {"id": job_id, "on": on, **({"requeue": True} if requeue else {})}
    return Kind.CANCEL, jsontext.dumps(fields).encode()


def gone_record(ids: list[str]) -> tuple[int, bytes]:
    return Kind.GONE, jsontext.dumps({"ids": ids}).encode()


def intent_record(job_id: str, fields: dict[str, Any]) -> tuple[int, bytes]:
    return Kind.INTENT, jsontext.dumps({"id": job_id, **fields}).encode()


def reserve_record(number: int) -> tuple[int, bytes]:
    return Kind.RESERVE, jsontext.dumps({"last_id": str(number)}).encode()


_LAST = b'{"last_id": "'


def last_given(payload: bytes) -> object:
    """A RESERVE's or HEAD's last number given, as its payload says. ``reserve_record``
    and a compaction's HEAD write exactly ``{"last_id": "DIGITS"}``, read here without
    a JSON parse (every ``print`` writes a RESERVE, and every command replays them); any
    other payload is parsed (ValueError: not a JSON object)."""
    if payload.startswith(_LAST) and payload.endswith(b'"}') and (
            number := payload[len(_LAST):-2]).isdigit():
        return number.decode("ascii")
    data = jsontext.loads(payload.decode("utf-8")) if payload else {}
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data.get("last_id", 0)
