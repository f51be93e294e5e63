"""checkpc's look at a queue's journal: damaged, nearly full, not yet taken in, unsafe; and
``--fix`` for a damaged one.

Why here: every command refuses a damaged journal in one line (nothing is cut: records
after the damage were told to someone), and an administrator's only way out was to move
it aside by hand, losing the queued jobs its good records still hold. ``checkpc --fix``
does it safely: under the journal's lock, the damaged file is kept (linked to
``journal.damaged-<UTC stamp>``, never over a name), and a new journal of the owner's
(O_EXCL, written and synced before it is renamed into place) holds the jobs the records
before the damage replay to, with the good runs of records after it replayed on top (in
LSN order: a job sent, or taken, after the damage is not queued again as if new); every
unfinished job the damaged bytes may have changed (named after them, active or under a
batch's mark) is flagged a possible duplicate. Job numbers go on above any the old file
or a data file names. Data files no record names are taken in by the orphan recovery
(``recovered-N``); so are a small job's bytes kept in the journal whose JOB record was
damaged: they are written out as its data file first (spool/jobdata.py).
Nothing here follows a link, and no bad journal is an internal error.
"""
from __future__ import annotations

import contextlib
import errno
import os
import time

from lpfilter.commands.spooldirs import SpoolFinding
from lpfilter.errors import LockHeld, LpfilterError
from lpfilter.job import FINISHED, JobState
from lpfilter.safefiles import UnsafeFile, fsync_dir, write_fully
from lpfilter.spool import journallimit, tickets
from lpfilter.spool.jobindex import JobIndex, payload
from lpfilter.spool.journal import Journal, JournalDamaged
from lpfilter.spool.journalfile import SAFE_FLAGS, open_owned, take_lock
from lpfilter.spool.journalformat import (JOURNAL_MAX, LSN_MAX, RECORD_MAX, Kind, Record,
                                          decode, encode_all, first_lsn, good_after,
                                          reserve_record)
from lpfilter.spool.spooldir import SpoolDir

__all__ = ["check_journal"]

#: How long --fix waits for the journal's lock (an appender holds it for a write).
LOCK_WAIT = 5.0
#: After damage, this many bytes are searched for the next good record (for its numbers).
SCAN_MAX = 1 << 20
#: At most this many runs of good records after damage are looked at.
RUNS_MAX = 16


def check_journal(sd: str, queue: str, *, fix: bool = False) -> list[SpoolFinding]:
    """The queue's journal as checkpc reports it (nothing when its spool has no state
    folder yet: the first print or watch makes one)."""
    spool = SpoolDir(sd, queue)
    try:
        if not os.path.isdir(spool.state) or os.path.islink(spool.state):
            return []
        found = _unsafe(spool)
        if found:
            return found
        if os.path.lexists(spool.journal_path):
            found += _read(spool, fix)
        if tickets.left_behind(spool.state):
            found.append(_line(spool, f"the spool {sd} still has ticket files of an older"
                               " lpfilter, not yet taken into its journal; the next print,"
                               " watch or status run by its owner (or root) takes them in",
                               note=True))
    except PermissionError:
        return []  # not this user's to read (the spool directory's check says so)
    except (OSError, LpfilterError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return [_line(spool, f"cannot check the journal in {spool.state}: {reason}")]
    return found


def _line(spool: SpoolDir, text: str, *, fixed: bool = False,
          note: bool = False) -> SpoolFinding:
    return SpoolFinding(spool.sd, f"queue {spool.queue}: {text}", fixed=fixed, note=note)


def _unsafe(spool: SpoolDir) -> list[SpoolFinding]:
    """The journal and its lock: a regular file of the queue's owner with one link each,
    opened without following a link (a FIFO without blocking)."""
    found = []
    for path in (spool.journal_path, spool.journal_path + ".lock"):
        try:
            os.close(open_owned(path, spool.owner, os.O_RDONLY | SAFE_FLAGS, create=False))
        except FileNotFoundError:
            continue
        except UnsafeFile as exc:
            found.append(_line(spool, f"{exc.reason}; not used (the queue is refused):"
                               " remove it (lpfilter makes a new one; the data files in jobs/"
                               " no record names are taken in again as jobs)"))
    return found


def _read(spool: SpoolDir, fix: bool) -> list[SpoolFinding]:
    """Damage (mended with ``fix``), or a journal near the size every reader accepts."""
    index = JobIndex(spool.queue)
    try:
        journal = Journal(spool.state, spool.owner, index.apply, index.reset,
                          writable=False, queue=spool.queue)
    except FileNotFoundError:
        return []  # moved aside meanwhile
    except JournalDamaged as exc:
        if fix:
            try:
                return [_mend(spool)]
            except (OSError, LpfilterError) as error:  # the lock unsafe, not ours to write
                why = getattr(error, "strerror", None) or str(error)
                return [SpoolFinding(spool.sd, f"{exc}; not mended: {why}")]
        return [SpoolFinding(spool.sd, f"{exc}; or run 'lpfilter checkpc --fix' (it keeps"
                             " the jobs its good records name)")]
    size = journal.size
    journal.close()
    if journallimit.crowded(size, 0):
        return [_line(spool, f"the journal {spool.journal_path} is {size} bytes, over 3/4 of"
                      f" its limit ({journallimit.LIMIT}): new jobs are refused when it is"
                      " full; remove finished or unwanted jobs (lpfilter cancel, or lower"
                      " done_jobs)")]
    return []


def _mend(spool: SpoolDir) -> SpoolFinding:
    """--fix: the damaged journal kept aside, a new one holding what its good prefix says."""
    lock = open_owned(spool.journal_path + ".lock", spool.owner, os.O_RDWR | SAFE_FLAGS)
    try:
        try:
            take_lock(lock, spool.journal_path + ".lock", wait=LOCK_WAIT)
        except LockHeld:
            return _line(spool, f"the journal {spool.journal_path} is being written (its lock"
                         f" held {LOCK_WAIT:g} s); not mended: run 'lpfilter checkpc --fix'"
                         " again")
        return _rewrite(spool)
    finally:
        os.close(lock)  # (lets the lock go)


def _rewrite(spool: SpoolDir) -> SpoolFinding:
    """Under the lock: read the damaged journal, write the new one, keep the old aside."""
    path = spool.journal_path
    fd = open_owned(path, spool.owner, os.O_RDONLY | SAFE_FLAGS, create=False)
    try:
        size = os.fstat(fd).st_size
        data = _read_all(fd)
    finally:
        os.close(fd)
    base = first_lsn(data)
    base = base if base <= LSN_MAX else 0
    records, end = decode(data, base)
    after = _records_after(data, base, end - base)
    index = JobIndex(spool.queue)
    for record in records + after:  # in LSN order: the good runs after the damage last
        index.apply(record)
    flagged = _flag(index, _named(after))
    head, kept = index.compacted(len(index.jobs))
    highest = max(index.last_id, tickets.seed_number(spool.state, spool.owner))
    if highest > index.last_id:
        kept.append(reserve_record(highest))
    _spill(spool, index)
    aside = _replace(spool, min(base + size, LSN_MAX), [(Kind.HEAD, head)] + kept,
                     _aside_name(path))
    orphans = _orphans(spool, set(index.jobs))
    return _line(spool, f"the damaged journal {path} moved aside to {aside}; a new journal"
                 f" keeps the {len(index.jobs)} jobs its good records name (before and after"
                 f" the damage), {flagged} of them flagged as possible duplicates (job numbers"
                 f" go on after {highest}); {orphans} data files in jobs/ no record names come"
                 " back as recovered-N jobs (the watcher takes them in once a minute old)",
                 fixed=True)


def _read_all(fd: int) -> bytes:
    chunks, size = [], 0
    while size < JOURNAL_MAX and (chunk := os.read(fd, min(1 << 20, JOURNAL_MAX - size))):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _records_after(data: bytes, base: int, pos: int) -> list[Record]:
    """The good records after the damage, in LSN order (a bounded search): what they say
    was told to someone (a job taken, its bytes sent, a number given out)."""
    found: list[Record] = []
    for _ in range(RUNS_MAX):
        if pos >= len(data):
            break
        skip = good_after(data[pos:pos + SCAN_MAX + RECORD_MAX], base + pos)
        if skip is None:
            break
        records, end = decode(data[pos + skip:], base + pos + skip)
        found += records
        pos = end - base
    return found


def _named(records: list[Record]) -> set[str]:
    """The job ids the records name (untrusted: a record that does not parse names none)."""
    named: set[str] = set()
    for record in records:
        try:
            data = payload(record) if record.payload else {}
        except ValueError:  # (UnicodeDecodeError too)
            continue
        if not isinstance(data, dict):
            continue
        ids = data.get("ids")
        ids = ids if isinstance(ids, list) else [data.get("id")]
        named.update(i for i in ids if isinstance(i, str))
    return named


def _flag(index: JobIndex, named: set[str]) -> int:
    """Every unfinished job whose state the damaged bytes may have changed (one named after
    them, one active or under a batch's mark) flagged as a possible duplicate: a record
    lost in them may have said its bytes left. Returns how many."""
    flagged = 0
    for job in index.jobs.values():
        if job.state in FINISHED or not (job.id in named or job.id in index.marked
                                         or job.state == JobState.ACTIVE):
            continue
        if not job.possible_duplicate:
            job.possible_duplicate = True
            job.last_error = ("the journal was mended (checkpc --fix): damaged records may"
                              " have said it was sent")
        flagged += 1
    return flagged


def _aside_name(path: str) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return f"{path}.damaged-{stamp}"


def _replace(spool: SpoolDir, lsn: int, records: list[tuple[int, bytes]], aside: str) -> str:
    """The new journal written to ``journal.next`` (O_EXCL, the owner's) and synced; the
    damaged one linked aside (never over a name: -2, -3... if taken), then replaced.
    Returns the name it was moved aside to."""
    new = spool.journal_path + ".next"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(new)  # a compaction killed half-way left it (unlink follows nothing)
    fd = open_owned(new, spool.owner, os.O_RDWR | os.O_APPEND | SAFE_FLAGS)
    try:
        write_fully(fd, encode_all(lsn, records)[0])
        os.fdatasync(fd)
    finally:
        os.close(fd)
    for suffix in ["", *(f"-{n}" for n in range(2, 100))]:
        try:
            os.link(spool.journal_path, aside + suffix, follow_symlinks=False)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(errno.EEXIST, "no free name to move it aside to", aside)
    os.rename(new, spool.journal_path)
    fsync_dir(spool.state)
    return aside + suffix


def _spill(spool: SpoolDir, index: JobIndex) -> None:
    """The bytes of small jobs no good JOB record names (it was in the damage), written to
    data files of the owner's (new names only, synced) before the journal that held them
    is replaced: the orphan recovery takes them in, as it takes a file-spooled job's."""
    spilled = False
    for job_id, data in index.data.items():
        path = spool.data_path(job_id)
        if job_id in index.jobs or not data or os.path.lexists(path):
            continue
        fd = open_owned(path, spool.owner, os.O_WRONLY | SAFE_FLAGS)
        try:
            write_fully(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        spilled = True
    if spilled:
        fsync_dir(spool.jobs_dir)


def _orphans(spool: SpoolDir, named: set[str]) -> int:
    """Data files in jobs/ that no job of the new journal names."""
    try:
        names = os.listdir(spool.jobs_dir)
    except OSError:
        return 0
    return sum(1 for name in names if name.endswith(".data") and name[:-5].isdigit()
               and name[:-5] not in named)
