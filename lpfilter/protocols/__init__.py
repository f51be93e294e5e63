"""Protocol bytes, built and parsed by pure functions (no sockets here).

What every LPD module and its callers share lives here, so that lpfilter's local request
(``lpdlocal``: an ordinary user's ``status`` and ``cancel`` through the daemon) needs
neither ``lpd`` (its enums: 1.4 ms to import) nor ``lpdcontrol``.
"""
from __future__ import annotations

from lpfilter.errors import PermanentError

#: Longest request or subcommand line, LF included: LPRng reads them into a 512-byte
#: buffer (lpd-protocol.md §4), BSD aborts on overflow. Longer is not LPD.
MAX_LINE = 512


class LpdProtocolError(PermanentError):
    """Bytes that are not LPD, or a value that cannot be put on the wire (the one exception
    root's permanent branch: the same bytes would be refused again)."""


def picks(items: tuple[str, ...] | list[str], number: int | None, user: str) -> bool:
    """Does a status or remove request's list (RFC 1179 §5.3: job numbers and user names)
    pick the job numbered ``number`` (None: no number) of ``user``? An empty list picks
    every job."""
    if not items:
        return True
    return any(item == user if not (item.isascii() and item.isdigit())
               else number is not None and int(item) == number for item in items)
