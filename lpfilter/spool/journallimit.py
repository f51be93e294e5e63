"""How big a queue's journal may grow, and what is done before it would grow too big.

Why (issue 16's review): readers refuse a journal past JOURNAL_MAX (a spool owner could
make it any size), so a journal lpfilter writes itself must never get there, or the queue
is dead for every command. Compaction (the lease holder's, in ``prune``) is due when the
journal passes 4 x its live records (a running daemon's: 2 x), capped at half the limit
(with a floor: a small journal is not worth rewriting); an append that would pass 3/4 of
the limit compacts first, under the lock; one that would still pass it is refused before
a byte is written (JournalFull: one line, exit 10 like a full disk). Records that carry no
job (GONE, a number reserved, a cancel) may use the last quarter: removing jobs is how
room is made.
A hot-folder file's INTENT counts as its job's (its JOB record would be refused next).
"""
from __future__ import annotations

import errno

from lpfilter.errors import SpoolFull, TransientError
from lpfilter.spool.journalformat import JOURNAL_MAX, Kind

#: The most this process lets a journal grow to (a test may lower it).
LIMIT = JOURNAL_MAX
#: The journal is never compacted below this size (rewriting a small one gains little)...
COMPACT_MIN = 1 << 20
#: ...nor below this one by a running daemon, which compacts sooner (``compact_due``)
#: while its live records are at most EAGER_LIVE_MAX (a compaction holds the journal's
#: lock while it rewrites them: ~60 ms for 512 KiB, ~1000 recent jobs; a few ms for the
#: 10 recent jobs a queue fed by one ``print`` per job keeps, ~6 KiB). Not lower: 32 KiB
#: took 4 % off that loop's prints and added 2-3 % to an LPD server's instructions per
#: job (it compacted more often), where the daemon's CPU is the limit (round 14).
COMPACT_MIN_EAGER = 1 << 16
EAGER_LIVE_MAX = 1 << 19
#: The framing of one record (journalformat: length, crc, lsn, kind).
FRAMING = 17


class JournalFull(SpoolFull):
    """A queue's journal would pass the size every reader accepts, even compacted: its live
    jobs fill it. Transient (exit 10, like a full disk): it gets better when jobs go."""

    def __init__(self, path: str, *, queue: str = "") -> None:
        self.directory = path
        self.errno = errno.EFBIG
        TransientError.__init__(
            self, f"queue {queue}: the journal {path} is full ({LIMIT} bytes, even"
            " compacted, with the jobs it holds); remove finished or unwanted jobs"
            " (lpfilter cancel, or lower the jobs kept) and try again", queue=queue)


def weight(records: list[tuple[int, bytes]]) -> int:
    """The bytes ``records`` add to a journal."""
    return sum(len(payload) + FRAMING for _, payload in records)


def compact_due(size: int, live: int, dead_data: int = 0, *, eager: bool = False,
                notes: int = 0) -> bool:
    """Is a journal of ``size`` bytes, ``live`` of them the live jobs', worth compacting?
    Up to 1/16 of the limit may be the bytes of finished small jobs (spool/jobdata.py)
    without counting: they cost a replay nothing but their reading, and a compaction
    rewrites every kept record (a pass of 500 one-KiB jobs compacted once at its end).

    ``eager`` (a running daemon's worker, which prunes at most once a second): past twice
    the live records and 64 KiB, not four times and 1 MiB, while the live records are
    at most 512 KiB. Every command replays the journal: a job printed and sent leaves
    five to seven records (~90 us of replay), compacted one (~25 us), and the jobs
    finished in the last minute are kept for ``status``, so a busy queue's journal made
    each ``print``, ``status`` and ``cancel`` pay ~25 ms per 300 recent jobs (5 ms
    compacted), while a compaction of them costs its writer 15-25 ms. (With a floor of
    256 KiB, a queue fed by one ``print --no-wait`` per job, 100 recent jobs kept, went
    from 55 to 480 KiB between compactions: ~10 ms of each command's replay at the top,
    ~6 ms on average; with 64 KiB, 55 to ~150 KiB, a compaction every ~40 jobs, ~10 ms
    each; keeping 10 recent jobs since round 14, 8 to ~66 KiB, every ~50 jobs.)
    A ``watch --once`` pass keeps the first rule (a compaction at its end would cost it
    5-25 %), and so does a daemon taking hundreds of jobs a second, all kept a minute
    (each compaction would stop its receivers while it rewrote thousands). ``notes``,
    the LPD server's retry notes among the live bytes, do not count towards that cap: a
    compaction writes them a line each (spool/notes.py, ~2 us a note), and a busy
    server's 6,000 (720 KiB) kept its journal at four times its live records, 60 ms of
    each ``status``."""
    floor, factor = ((COMPACT_MIN_EAGER, 2) if eager and live - notes <= EAGER_LIVE_MAX
                     else (COMPACT_MIN, 4))
    return size - min(dead_data, LIMIT // 16) > max(floor, min(factor * live, LIMIT // 2))


def crowded(size: int, adding: int) -> bool:
    """Would ``adding`` bytes take the journal past 3/4 of the limit (compact first)?"""
    return size + adding > LIMIT * 3 // 4


def too_big(size: int, adding: int, records: list[tuple[int, bytes]]) -> bool:
    """Would the append pass what may be written (after a compaction)? Job records get 3/4
    of the limit; records that carry no job (they make room, or are small) the rest."""
    if any(kind in (Kind.JOB, Kind.INTENT) for kind, _ in records):
        return crowded(size, adding)
    return size + adding > LIMIT
