"""What ``status`` shows about a queue, as plain data: read by ``lpfilter status`` run
by the spool's owner, and by the print server for a local user who may not read the spool
(the server sends it as it is; the client shows it the same way).
"""
from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NotRequired, TypedDict

    from lpfilter.printcap import Entry
    from lpfilter.spool.poolboard import ServerState
    from lpfilter.spool.store import SpoolStore

    #: A job as ``Job.to_dict`` gives it (the ticket's JSON).
    JobData = dict[str, Any]

if TYPE_CHECKING:  # for mypy only: a TypedDict is a dict at run time, and building the
    # class compiles each field's annotation (about 2 ms of status)
    class Holder(TypedDict):
        """A process holding a lock: the queue's lease, or an FTP session slot."""

        pid: int
        purpose: str
        since: float

    class Served(Holder):
        """Who serves the queue, and for how long."""

        uptime: float

    class FtpSessions(TypedDict):
        """An FTP queue's session slots on its server."""

        limit: int
        in_use: list[Holder]

    class QueueData(TypedDict):
        """Everything ``status`` shows about one queue (``--json`` prints it as it is)."""

        queue: str
        destination: str
        spool: str
        log_file: str | None
        served_by: Served | None
        printer_status: str
        ftp_sessions: FtpSessions | None
        error: str | None
        readable: bool
        #: Not readable because its journal is damaged (not for want of a permission).
        damaged: NotRequired[bool]
        jobs: list[JobData]
        #: A pool (sv=): its server queues, and (while served) what each is doing.
        pool: NotRequired[PoolData | None]
        #: A pool's server queue (ss=): the pool it serves.
        serving: NotRequired[str]
        #: lpc's state of the queue (spool/control.py; None: not readable by this user).
        control: dict[str, Any] | None

    class PoolData(TypedDict):
        """A pool's server queues and, while a process serves it, what each is doing."""

        servers: list[str]
        board: list[ServerState] | None


def ftp_sessions(entry: Entry, lock_dir: str) -> FtpSessions | None:
    """For an FTP queue: the server's session slots and who holds them (psutil tells a
    live holder from a dead one), across every lpfilter process of this lock directory."""
    from lpfilter.printcap.destination import Ftp
    destination = entry.destination()
    if not isinstance(destination, Ftp):
        return None
    from lpfilter.backends.ftpsession import slot_paths
    from lpfilter.locks import current_holder
    limit = max(1, entry.number("ftp_sessions"))
    paths = slot_paths(lock_dir, destination.host, destination.port, limit)
    holders = [h for h in map(current_holder, paths) if h is not None]
    return {"limit": limit, "in_use": [{"pid": h.pid, "purpose": h.purpose, "since": h.since}
                                       for h in holders]}


def lpc_flags(data: QueueData) -> str:
    """lpc's state of a queue's status as LPRng's lpq puts it after the queue's name (""
    for none, or for a spool whose state could not be read)."""
    control = data.get("control")
    if not control:
        return ""
    from lpfilter.spool.control import QueueControl, flags_text
    return flags_text(QueueControl(**control))


def picked(job: JobData, select: list[str]) -> bool:
    """Is ``job`` in lpq's list (job numbers, user names), as a server reads it?"""
    from lpfilter.protocols import picks
    number = str(job["id"])
    return picks(select, int(number) if number.isascii() and number.isdigit() else None,
                 str(job["user"]))


def queue_status(entry: Entry, lock_dir: str = "", store: SpoolStore | None = None) -> QueueData:
    """Everything status shows about one queue, as plain data. ``store``: the print
    server's own store of the queue, whose index is kept up to date (a fresh store
    replays the whole journal: 5 ms for a queue keeping 30 finished jobs, more for a busy
    one's hundreds, at every local user's ``status`` and ``print``)."""
    from lpfilter.errors import AccessError
    from lpfilter.spool.lease import holder_of
    from lpfilter.spool.records import QueueRecords
    from lpfilter.spool.control import entry_control, print_order
    if store is None:
        from lpfilter.spool.store import SpoolStore
        store = SpoolStore(entry.string("sd") or "", entry.name)
    from lpfilter.spool.journalformat import JournalDamaged
    jobs: list[JobData] = []
    readable, damaged = True, False
    try:
        store.require_dir()
        error = None
    except AccessError as exc:
        error = str(exc)  # reported (exit 5), not shown as an empty queue
    else:
        try:
            jobs = [job.to_dict() for job in print_order(store.jobs())]
        except AccessError as exc:  # not this user's to read: said (exit 5), not empty
            error, readable = str(exc), False
            damaged = isinstance(exc, JournalDamaged)
    holder = holder_of(store.state)
    served: Served | None = None
    if holder is not None:
        served = {"pid": holder.pid, "purpose": holder.purpose, "since": holder.since,
                  "uptime": round(time.time() - holder.start, 1)}
    records = QueueRecords(entry)
    from lpfilter.printcap import pools
    names = pools.server_names(entry)
    pool: PoolData | None = None
    if names:  # a pool (its board's module only then: every status imports this one)
        from lpfilter.spool import poolboard
        pool = {"servers": names, "board": poolboard.read(store.state) if served else None}
    return {"queue": entry.name, "destination": pools.describe(entry) if names
            else entry.destination().display(), "pool": pool, "serving": entry.string("ss") or "",
            "spool": store.sd, "log_file": records.log_path,
            "served_by": served, "printer_status": records.last_status(),
            "ftp_sessions": ftp_sessions(entry, lock_dir) if lock_dir else None,
            "error": error, "readable": readable, "jobs": jobs,
            **({"damaged": True} if damaged else {}),  # type: ignore[typeddict-item]
            "control": entry_control(entry).to_dict() if readable else None}
