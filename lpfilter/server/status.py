"""The text a status request (RFC 1179 §5.3, §5.4) is answered with, as LPRng's lpd writes
it (lpd-protocol.md §7.2), so LPRng's ``lpq`` and ``lpfilter status -P q@host`` show a
familiar table: short, one line (``q@host 2 jobs``); long, a header and one row a job.

Only jobs still to print or looked at are listed (queued, printing, held, failed); a
request naming users or job numbers lists only those. Every user-given text in it has its
control characters made visible; the answer is bounded (``MAX_JOBS`` rows).
"""
from __future__ import annotations

from lpfilter.job import Job, JobState
from lpfilter.printcap import pools
from lpfilter.protocols import picks
from lpfilter.spool.control import flags_text, print_order, read_control
from lpfilter.spool.records import stamp
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import TypeVar

    from lpfilter.printcap import Entry
    from lpfilter.spool.store import SpoolStore
    T = TypeVar("T")

#: At most this many job rows in one answer (then a line saying how many more).
MAX_JOBS = 1000
#: Rank words for jobs not waiting in line, as LPRng's lpq shows them.
_RANK = {str(JobState.ACTIVE): "active", str(JobState.HELD): "hold",
         str(JobState.FAILED): "error"}
#: The states LPRng's lpq counts as printable jobs (its short line, its ``Queue:`` line).
PRINTABLE = frozenset({str(JobState.QUEUED), str(JobState.ACTIVE)})
#: LPRng's header line, its columns as its lpd writes them (rows start in column 0).
HEADER = " Rank   Owner/ID               Pr/Class Job Files                 Size Time"


def server_name(entry: Entry) -> str:
    """The host part of ``q@host`` in answers: this host's name as the printcap sees it
    (``Entry.fqdn``: without looking up its addresses)."""
    return entry.fqdn() or "localhost"


def job_number(job: Job) -> int | None:
    """A job's number as status shows it and remove takes it (lpfilter's id, as a number)."""
    return int(job.id) if job.id.isascii() and job.id.isdigit() else None


def selected(job: Job, items: Iterable[str]) -> bool:
    """Does a status or remove request's list (user names, job numbers) pick ``job``?"""
    return picks(tuple(items), job_number(job), job.user)


def owner_id(job: Job, host: str) -> str:
    """LPRng's ``user@host+number``: who sent the job, from where, which one."""
    return visible(f"{job.user}@{job.host or host}+{job.id.lstrip('0') or '0'}")


def pending(store: SpoolStore) -> list[Job]:
    """The queue's jobs that status lists: not finished, in the order they print."""
    return print_order(store.jobs(finished=False))


def short_status(entry: Entry, store: SpoolStore, items: tuple[str, ...]) -> str:
    """``lpq -s``: one line, ``q@host N jobs``."""
    states = [str(job.state) for job in pending(store) if selected(job, items)]
    return short_text(entry, states, flags_text(read_control(store.state)))


def short_text(entry: Entry, states: list[str], flags: str) -> str:
    """LPRng's short status of jobs in these states: the printable ones (queued or
    printing), then how many are held, then lpc's flags: ``q@host 2 jobs (1 held)``, as
    its lpd counts them (Get_queue_status; a failed job is neither)."""
    count, held = counts(states)
    return (f"{visible(entry.name)}@{server_name(entry)} {count} job{'' if count == 1 else 's'}"
            f"{f' ({held} held)' if held else ''}{flags}\n")


def long_status(entry: Entry, store: SpoolStore, items: tuple[str, ...], *,
                served_by: str, message: str) -> str:
    """``lpq``: the header (queue, how many jobs, who serves it, the printer's last
    message) and one row a job."""
    host = server_name(entry)
    jobs = held_last(pending(store), lambda job: str(job.state))
    printable, held = counts([str(job.state) for job in jobs])
    lines = head_lines(entry, flags_text(read_control(store.state)), printable, held,
                       served_by=served_by, message=message)
    # A job's rank is its place in the whole queue, the active one counted, as LPRng's lpd
    # numbers them (count+1 in Get_queue_status), whichever jobs the list picks.
    chosen = [(rank, job) for rank, job in enumerate(jobs, 1) if selected(job, items)]
    if chosen:
        lines.append(HEADER)
    for rank, job in chosen[:MAX_JOBS]:
        lines.append(job_row(job, rank_word(str(job.state), rank), host))
    if len(chosen) > MAX_JOBS:
        lines.append(f" ... and {len(chosen) - MAX_JOBS} more jobs")
    return "".join(f"{line}\n" for line in lines)


def head_lines(entry: Entry, flags: str, printable: int, held: int = 0, *, served_by: str,
               message: str) -> list[str]:
    """LPRng's lines above the jobs: ``Printer: q@host 'comment'`` (lpc's flags, a pool's
    note), the printable jobs, the held ones, who serves the queue, the printer's last
    message, in its lpd's words. The comment is ``cm``, else the entry's last alias, as
    LPRng's lpd adds it."""
    comment = entry.string("cm") or (entry.names[-1] if len(entry.names) > 1 else "")
    tag = f" '{visible(comment)}'" if comment else ""
    lines = [f"Printer: {visible(entry.name)}@{server_name(entry)}{tag}{flags}"
             f"{visible(pools.lpq_note(entry))}",
             " Queue: " + (f"{printable} printable job{'' if printable == 1 else 's'}"
                           if printable else "no printable jobs in queue")]
    if held:
        lines.append(f" Holding: {held} held job{'' if held == 1 else 's'} in queue")
    lines.append(f" Server: {served_by}")
    if message:
        lines.append(f" Status: {visible(message)}")
    return lines


def counts(states: list[str]) -> tuple[int, int]:
    """How many jobs in these states LPRng's lpd counts as printable, and as held."""
    return sum(1 for state in states if state in PRINTABLE), states.count(str(JobState.HELD))


def held_last(jobs: list[T], state_of: Callable[[T], str]) -> list[T]:
    """The jobs as LPRng's lpq lists them: held ones after the rest, each in its order."""
    held = str(JobState.HELD)
    return ([job for job in jobs if state_of(job) != held]
            + [job for job in jobs if state_of(job) == held])


def rank_word(state: str, rank: int) -> str:
    """The Rank column: active, hold or error, else the job's place in the queue."""
    return _RANK.get(state, str(rank))


def job_row(job: Job, rank: str, host: str) -> str:
    """One row: rank, owner/id, class, number, name, size, time submitted."""
    return row(rank, owner_id(job, host), job.job_class, job_number(job), job.name, job.size,
               job.submitted)


def row(rank: str, owner: str, job_class: str, number: int | None, name: str, size: int,
        submitted: float) -> str:
    """A job's row from its fields (the server's jobs and a local lpq's data alike)."""
    when = stamp(submitted, "%H:%M:%S")  # (a forged record's time: its number)
    return (f"{rank:<7}{owner[:28]:<29}{visible(job_class or 'A')[:1]}"
            f"{'' if number is None else number:>6} {visible(name)[:20]:<20} {size:>5} {when}")
