"""Is a queue's spool certainly closed to this user? Asked before the store's modules are
imported (~4 ms of a command): an ordinary user who may not read a spool (``status``) or
write it (``cancel``, ``hold``, ``release``, ``requeue``) asks the print server at once.
Only when none answers is the spool tried here, so that the error said is the one it
always was. Anything uncertain (no such spool, no journal yet, a read-only file system,
a spool shared with its owner) is answered False: the caller's own path decides.
"""
from __future__ import annotations

import os

from lpfilter.spool import JOURNAL, STATE_DIR


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
