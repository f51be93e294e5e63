"""The spool: jobs on disk in each queue's ``sd`` directory, and the workers that send them.

Data flow: ``submit`` and ``intake`` (a job in: ``print``, or a file dropped into the hot
folder) -> ``store`` (tickets and data, written atomically) -> ``worker`` (one queue: pick a
job, send it through a backend, decide with ``policy``, write the outcome with ``ledger``
and ``records``) -> ``serve`` (a queue served from this process, under its ``lease``) ->
``watcher`` (many queues, events, signals).

The state folder's name and the journal's are here, not in ``spooldir`` and
``journalformat``, with ``closed_to_me``: is a queue's spool certainly closed to this
user? An ordinary user who may not read a spool (``status``) or write it (``print``,
``cancel``, ``hold``, ``release``, ``requeue``) then asks the print server at once,
without the store's modules (~4 ms of each command; here, a module of its own would cost
every command its import). Only when no server answers is the spool tried, so that the
error said is the one it always was. Anything uncertain (no such spool, no journal yet, a
read-only file system, a spool shared with its owner) is answered False: the command's
own path decides.
"""
from __future__ import annotations

import os

#: A queue's state folder, in its spool directory (``sd/.lpfilter``).
STATE_DIR = ".lpfilter"
#: The journal's name in a queue's state folder (its lock: ``journal.lock``).
JOURNAL = "journal"


def closed_to_me(sd: str, *, write: bool) -> bool:
    """Not for root (who may do everything). ``write``: the spool directory exists and
    this user may not write it (the store's ``check`` refuses it), else: the journal
    exists and this user may not read it (``status`` could show nothing)."""
    if os.geteuid() == 0 or not sd:
        return False
    journal = os.path.join(sd, STATE_DIR, JOURNAL)
    try:
        os.stat(sd if write else journal)
    except PermissionError:
        return True  # behind a folder closed to this user
    except OSError:
        return False  # none (yet), or another trouble: the caller's path says what it is
    if not write:
        return not os.access(journal, os.R_OK)
    try:
        read_only = bool(os.statvfs(sd).f_flag & os.ST_RDONLY)  # (its own error: SpoolFull)
    except OSError:
        return False
    return not read_only and not os.access(sd, os.W_OK | os.X_OK)
