"""The bytes around a job: leader, form feeds and trailer from the printcap (pure functions).

LPRng's order for one job is ``ld``, a form feed if ``fo``, the files (a form feed between
them unless ``sf``, or always with ``ff_separator``), a form feed if ``fq``, then ``tr``;
``ld``, ``tr`` and ``ff`` are C-unescaped (lprng-filters.md §1). lpfilter sends copies as
repeated files of one job.
"""
from __future__ import annotations


from lpfilter.printcap.datatypes import c_unescape_bytes
from lpfilter.structs import FrozenStruct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.printcap import Entry


class Framing(FrozenStruct):
    __slots__ = _fields = ("leader", "separator", "trailer")
    leader: bytes
    separator: bytes
    trailer: bytes

    def __init__(self, leader: bytes, separator: bytes, trailer: bytes) -> None:
        object.__setattr__(self, "leader", leader)
        object.__setattr__(self, "separator", separator)
        object.__setattr__(self, "trailer", trailer)


def _printer_bytes(entry: Entry, key: str) -> bytes:
    value = entry.string(key) or ""
    return c_unescape_bytes(value.encode("utf-8", "surrogateescape"))


def framing(entry: Entry) -> Framing:
    """Leader, between-copies separator and trailer for a queue."""
    form_feed = _printer_bytes(entry, "ff")
    leader = _printer_bytes(entry, "ld") + (form_feed if entry.flag("fo") else b"")
    separator = form_feed if (not entry.flag("sf") or entry.flag("ff_separator")) else b""
    trailer = (form_feed if entry.flag("fq") else b"") + _printer_bytes(entry, "tr")
    return Framing(leader, separator, trailer)

