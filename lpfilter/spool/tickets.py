"""Ticket files, the spool's form before the journal: read once, to upgrade, and never written.

Up to issue 16 each job had a ticket ``jobs/NNNNNN.job`` (its JSON), ``seq`` held the last
job number, ``tickets.lock`` guarded changes and ``jobs/NNNNNN.cancel`` asked a send to
stop. At the first open with write access (``SpoolStore``), under the journal's lock,
they become records, committed durably, and then the files go (bench/JOURNAL-DESIGN.md
§2.8). A spool that may not be written (a read-only file system) is read from them as
it is, so ``status`` still works; nothing is created then.

Tickets are read with the checks they always had: a regular file of the queue's owner,
opened without following a link, at most TICKET_MAX bytes, its id its file name.
"""
from __future__ import annotations

import os

from lpfilter import logs
from lpfilter.job import Job
from lpfilter.spool.jobindex import ID_MAX, replay
from lpfilter.spool.journalformat import JOURNAL_MAX, cancel_record, job_record, reserve_record
from lpfilter.safefiles import UnsafeFile, discard, fsync_dir, open_regular

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

log = logs.getLogger(__name__)

#: A ticket's name is digits and this; ``.tmp-PID-NNNNNN.job`` is one being written, not a
#: job.
TICKET = ".job"
_CANCEL = ".cancel"
#: A ticket is a few hundred bytes of JSON; more is not a ticket lpfilter wrote.
TICKET_MAX = 1 << 20
#: The files of that form in the state folder.
SEQ, TICKETS_LOCK = "seq", "tickets.lock"


def numbered(name: str, suffix: str, most: int | None = None) -> bool:
    """``name`` is decimal digits (1 to ``most``) and ``suffix``: what ``^\\d+SUFFIX$`` matched,
    but for a name that ends in a newline (``$`` matched before it; no file lpfilter writes
    has one). By hand: a queue's first journal looks for these, and a quick command
    imports no ``re``."""
    stem = name[:-len(suffix)] if name.endswith(suffix) else ""
    return stem.isdecimal() and (most is None or len(stem) <= most)


def read_ticket(path: str, job_id: str, owner: int) -> Job:
    """A ticket file's job: UnsafeFile (a link, a FIFO, another user's file), OSError or
    ValueError when it is not one to use."""
    fd, _ = open_regular(path, owner)
    with open(fd, "rb") as handle:
        data = handle.read(TICKET_MAX + 1)
    if len(data) > TICKET_MAX:
        raise ValueError(f"larger than {TICKET_MAX} bytes")
    try:
        job = Job.from_json(data.decode("utf-8"))
    except TypeError as exc:
        raise ValueError(str(exc)) from None
    if job.id != job_id:  # the id names the job's files: never a path of its own
        raise ValueError(f"its id {job.id!r} is not its file name")
    return job


def ticket_ids(jobs_dir: str) -> list[str]:
    """The ticket files' job ids, in arrival order ([] when there are none, or no folder)."""
    try:
        names = os.listdir(jobs_dir)
    except FileNotFoundError:
        return []
    return sorted((n[:-4] for n in names if numbered(n, TICKET)), key=lambda i: (len(i), i))


def read_all(jobs_dir: str, owner: int, queue: str,
             refuse: Callable[[str, str], str]) -> list[Job]:
    """Every readable ticket's job, in arrival order; an unsafe or unreadable one is
    refused (``refuse``: moved to refused/ and named in the log, or only named there by a
    process that may not write the spool)."""
    found = []
    for job_id in ticket_ids(jobs_dir):
        path = os.path.join(jobs_dir, f"{job_id}.job")
        try:
            found.append(read_ticket(path, job_id, owner))
        except FileNotFoundError:
            continue
        except UnsafeFile as exc:
            refuse(path, exc.reason)
        except (OSError, ValueError) as exc:
            refuse(path, f"job {job_id}: unreadable ticket"
                         f" ({getattr(exc, 'strerror', None) or exc})")
    return found


def cancel_ids(jobs_dir: str) -> list[str]:
    """The jobs a ``.cancel`` file asks to stop."""
    try:
        return [n[:-7] for n in os.listdir(jobs_dir) if numbered(n, _CANCEL)]
    except FileNotFoundError:
        return []


def last_number(state: str, owner: int) -> int:
    """The number ``seq`` holds (0: none, or not a file to read)."""
    try:
        fd, _ = open_regular(os.path.join(state, SEQ), owner)
    except OSError:
        return 0
    try:
        raw = os.read(fd, 32).strip()
    finally:
        os.close(fd)
    return int(raw) if raw.isdigit() else 0


def left_behind(state: str) -> bool:
    """Are there files of the old form to take in (or, after an upgrade a kill stopped,
    to remove)? Asked at each writable open: two lstats."""
    return any(os.path.lexists(os.path.join(state, name)) for name in (SEQ, TICKETS_LOCK))


class Taken:
    """What an upgrade takes in: the jobs, their records, the ids of every ticket read (a
    plain class: a ``typing.NamedTuple`` is built at import, and every quick command
    imports this module)."""

    __slots__ = ("jobs", "read", "records")

    def __init__(self, jobs: list[Job], records: list[tuple[int, bytes]],
                 read: set[str]) -> None:
        self.jobs, self.records, self.read = jobs, records, read


def taken_in(state: str, owner: int, queue: str, refuse: Callable[[str, str], str],
             known: int) -> Taken | None:
    """The old form's tickets, cancel files and ``seq`` as records (only numbers above
    ``known``, the journal's last); None: there is nothing of the old form."""
    jobs_dir = os.path.join(state, "jobs")
    ids, cancels = ticket_ids(jobs_dir), cancel_ids(jobs_dir)
    if not ids and not cancels and not left_behind(state):
        return None
    read = read_all(jobs_dir, owner, queue, refuse)
    jobs = [job for job in read if int(job.id) > known]
    for job in jobs:
        job.queue = queue  # a queue renamed in the printcap keeps its jobs
    last = max([last_number(state, owner), known] + [int(i) for i in ids])
    records = [job_record(job) for job in jobs]
    records += [cancel_record(i, True) for i in cancels if int(i) > known]
    if last > known:
        records.append(reserve_record(last))
    return Taken(jobs, records, {job.id for job in read})


_DATA = ".data"
#: At most this many journals moved aside are read when a new one starts.
ASIDE_MAX = 8


def seed_number(state: str, owner: int) -> int:
    """For a new journal: the highest job number the spool still shows (its data files, and
    journals moved aside next to it, ``journal.*``, read with a journal's checks), so that
    a number is never given twice after a damaged journal was moved aside."""
    numbers = [0]
    try:
        numbers += [int(n[:-5]) for n in os.listdir(os.path.join(state, "jobs"))
                    if numbered(n, _DATA, 12)]
    except OSError:
        pass
    names: list[str] = []
    try:
        names = sorted(n for n in os.listdir(state) if n.startswith("journal.")
                       and n not in ("journal.lock", "journal.next"))
    except OSError:
        pass
    for name in names[:ASIDE_MAX]:
        numbers.append(_aside_number(os.path.join(state, name), owner))
    return min(max(numbers), ID_MAX - 1)


def _aside_number(path: str, owner: int) -> int:
    """The last job number a journal moved aside names (0: none, or not one to read: a
    regular file of the owner's, read up to JOURNAL_MAX, its records checked)."""
    try:
        fd, _ = open_regular(path, owner)
    except (OSError, UnsafeFile) as exc:
        log.warning("%s: not read for its job numbers: %s", path,
                    getattr(exc, "reason", None) or exc)
        return 0
    try:
        chunks, size = [], 0
        while size < JOURNAL_MAX and (chunk := os.read(fd, min(1 << 20, JOURNAL_MAX - size))):
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return replay(b"".join(chunks)).last_id


def remove_old(state: str, jobs_dir: str, read: set[str]) -> None:
    """After their records are durable: the tickets that were ``read`` (taken in, now or
    by an upgrade a kill stopped), cancel requests, half-written tickets, ``seq`` and
    ``tickets.lock`` go (the lock last: its presence says "look again"). A ticket not read
    (refused, and left where it was because it could not be moved) stays."""
    try:
        for name in os.listdir(jobs_dir):
            if (numbered(name, TICKET) and name[:-4] in read) or numbered(name, _CANCEL) or (
                    name.startswith(".tmp-") and name.endswith(".job")):
                discard(os.path.join(jobs_dir, name))
        fsync_dir(jobs_dir)
    except FileNotFoundError:
        pass
    for name in (SEQ, TICKETS_LOCK):
        discard(os.path.join(state, name))
    fsync_dir(state)
