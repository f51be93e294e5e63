"""The accounting keys as LPRng reads them (lprng-printcap.md: af; lprng-filters.md §8):
where ``af`` sends lines and which line ``accounting_format`` asks for. Pure, on the
printcap's layer: the spool's accounting acts on them and checkpc reports bad values with
the same words.
"""
from __future__ import annotations

from lpfilter.errors import ConfigError
from lpfilter.printcap.destination import parse_port, split_host
from lpfilter.structs import FrozenStruct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal

#: The accounting formats: LPRng's jobstart/jobend lines, or lpfilter's key=value line.
FORMATS = ("lprng", "keyvalue")


class Target(FrozenStruct):
    """Where ``af`` sends lines: a file (path relative to the spool directory unless
    absolute), a ``|program``, or a TCP ``host%port``."""

    __slots__ = _fields = ("kind", "value", "port")
    kind: Literal["file", "program", "host"]
    value: str
    port: int

    def __init__(self, kind: Literal["file", "program", "host"], value: str,
                 port: int = 0) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "kind", kind)
        setattr_(self, "value", value)
        setattr_(self, "port", port)


def parse_target(value: str) -> Target | None:
    """``af``'s target; None for an empty value. A value with ``%`` and no ``/`` is
    ``host%port`` to LPRng (it connects there): a port that is not 1 to 65535 or a known
    service is a ConfigError, never a file of that name."""
    value = value.strip()
    if not value:
        return None
    if value.startswith("|"):
        return Target("program", value)
    host, percent, port_text = value.rpartition("%")
    if not percent or "/" in value:
        return Target("file", value)
    host = split_host(host.strip())
    port = parse_port(port_text, 0) if host else "no host before '%'"
    if isinstance(port, str) or port == 0:
        reason = port if isinstance(port, str) else "no port after '%'"
        raise ConfigError(f"af={value}: {reason}, so no accounting line can be sent (LPRng"
                          " reads host%port as a TCP target); write host%PORT with a port"
                          " 1-65535, or a file name without '%'")
    return Target("host", host, port)


def format_problem(value: str) -> str | None:
    """Why ``accounting_format=value`` is not one lpfilter knows (None: it is)."""
    if value.strip().lower() in FORMATS:
        return None
    return (f"accounting_format={value} is not a format lpfilter knows, so it writes"
            f" LPRng's lines (lprng); write one of {', '.join(FORMATS)}")


def accounting_format(value: str | None) -> str:
    """``lprng`` (the default, and for a value lpfilter does not know) or ``keyvalue``."""
    word = (value or "lprng").strip().lower()
    return word if word in FORMATS else "lprng"
