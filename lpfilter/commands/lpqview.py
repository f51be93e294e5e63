"""``lpq`` as LPRng's lpq shows a queue (the word ``lpq``, or lpfilter linked as ``lpq``):
the lines lpfilter's print server answers LPRng's lpq with (``server/status.py``),
``Printer: lp@host``, the printable jobs, who serves the queue, the printer's last
message, then a row a job (rank, ``user@host+number``, class, number, name, size, time).

So a site's users and their scripts see on this host what LPRng's lpq showed them, and
the same as ``lpq -P lp@thishost`` from another. ``lpfilter status`` keeps lpfilter's own
table; ``lpq -l``/``-L`` and ``--json`` lpfilter's details, ``lpq -s`` LPRng's one line.
The data is what status reads (the spool, or the print server's view for an ordinary
user's closed spool); a queue that could not be read is LPRng's ``Printer: lp@host -
why`` line.
"""
from __future__ import annotations

from lpfilter.job import FINISHED
from lpfilter.server.status import (HEADER, MAX_JOBS, counts, head_lines, held_last, rank_word,
                                    row, server_name)
from lpfilter.spool.queueinfo import lpc_flags, picked
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from lpfilter.printcap import Entry
    from lpfilter.spool.queueinfo import JobData, QueueData

_FINISHED = frozenset(str(state) for state in FINISHED)


def table(data: QueueData, entry: Entry, select: Sequence[str]) -> str:
    """One queue as LPRng's lpq shows it; ``select`` (user names, job numbers) picks the
    rows, each keeping its rank in the whole queue."""
    if data.get("error"):  # LPRng's line for a queue it cannot show
        return (f"Printer: {visible(entry.name)}@{server_name(entry)}"
                f" - {visible(str(data['error']))}\n")
    jobs = held_last([job for job in data["jobs"] if str(job["state"]) not in _FINISHED],
                     lambda job: str(job["state"]))
    printable, held = counts([str(job["state"]) for job in jobs])
    lines = head_lines(entry, lpc_flags(data), printable, held, served_by=_served_by(data),
                       message=str(data["printer_status"] or ""))
    chosen = [(rank, job) for rank, job in enumerate(jobs, 1)
              if not select or picked(job, list(select))]
    if chosen:
        lines.append(HEADER)
    host = server_name(entry)
    lines.extend(_row(job, rank_word(str(job["state"]), rank), host)
                 for rank, job in chosen[:MAX_JOBS])
    if len(chosen) > MAX_JOBS:
        lines.append(f" ... and {len(chosen) - MAX_JOBS} more jobs")
    return "".join(f"{line}\n" for line in lines)


def _row(job: JobData, rank: str, host: str) -> str:
    number = str(job["id"])
    owner = visible(f"{job['user']}@{job.get('host') or host}+{number.lstrip('0') or '0'}")
    return row(rank, owner, str(job.get("job_class") or ""),
               int(number) if number.isascii() and number.isdigit() else None,
               str(job["name"]), int(job["size"]), float(job["submitted"]))


def _served_by(data: QueueData) -> str:
    served = data.get("served_by")
    if not served:
        return "no server active"
    from lpfilter.spool.lease import served_by
    return served_by(int(served["pid"]), str(served["purpose"]), float(served["since"]))
