"""Each backend's printcap settings: typed, frozen, read once per send from the entry.

Frozen records of ``lpfilter.structs`` (each ``__init__`` names its fields, base class's
first, as a dataclass's would): ``lpfilter filter`` imports them all, and as dataclasses
they cost it 4 ms to build.

A backend reads its settings object and never the entry: every key it uses, with its
default and its checks, is read here, by its class's ``from_entry``. One module holds them
all because they share the common part (queue, framing, stall limit), the FTP settings are
read by three modules (``ftp``, ``ftpsession``, ``ftpauth``), and the socket's also serve
``lpfilter filter`` on standard output. A new backend adds a class here (deriving from
``SendSettings``) and a line to ``SETTINGS``.
"""
from __future__ import annotations

import os

from lpfilter.backends.framing import Framing, framing
from lpfilter.printcap.datatypes import c_unescape_bytes
from lpfilter.structs import FrozenStruct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar, Self

    from lpfilter.protocols.lpdcontrol import Style
    from lpfilter.printcap import Entry
    from lpfilter.printcap.destination import Destination

#: The socket's ways of waiting for the end of a job (``waitend``).
WAIT_MODES = ("pjl", "echo", "eof", "delay", "none")
#: The socket's completion wait without ``send_job_rw_timeout``, counted from the end of
#: the data.
OVERALL_DEFAULT = 3600.0
NO_FRAMING = Framing(b"", b"", b"")
#: An LPD server's acknowledgement wait when neither ``send_job_rw_timeout`` nor
#: ``stall_timeout`` bounds it (CUPS's per-read timeout).
ACK_DEFAULT = 300.0
#: LPRng's ``originate_port`` default (LPRng vars.c).
ORIGINATE_DEFAULT = (512, 1023)


#: A time longer than this (about 31 years) is no limit at all; LPRng's strtol saturates a
#: huge number the same way, where a float of it would overflow.
MAX_SECONDS = 10**9


def _seconds(value: int) -> float:
    """A printcap number of seconds as a float, however many digits it was written with."""
    return float(min(value, MAX_SECONDS))


def _common(entry: Entry, framed: bool) -> dict[str, Any]:
    """The fields of ``SendSettings``, for every class's ``from_entry``."""
    rw_timeout = entry.number("send_job_rw_timeout")
    return {"queue": entry.name, "framing": framing(entry) if framed else NO_FRAMING,
            "stall": _seconds(rw_timeout if rw_timeout > 0 else entry.number("stall_timeout"))}


class SendSettings(FrozenStruct):
    """What every backend uses. A subclass's fields come after these (its slots are its
    own fields: ``_fields[3:]``)."""

    _fields: ClassVar[tuple[str, ...]] = ("queue", "framing", "stall")
    __slots__ = _fields

    #: The queue's name (in PJL job names, FTP file names, a pipe program's PRINTER).
    queue: str
    #: The bytes around the job (``ld``, ``tr``, ``ff``, ``fo``, ``fq``, ``sf``); none
    #: when lpd frames the job (``lpfilter filter`` under lpd).
    framing: Framing
    #: Seconds the printer (device, program, socket) may take no data before the try
    #: fails: ``send_job_rw_timeout`` when set, else ``stall_timeout`` (0: no limit).
    stall: float

    def __init__(self, queue: str, framing: Framing, stall: float) -> None:
        self._assign(locals())

    @classmethod
    def from_entry(cls, entry: Entry, *, framed: bool = True) -> Self:
        return cls(**_common(entry, framed))


class DeviceSettings(SendSettings):
    """``lp=/path``."""

    _fields = (*SendSettings._fields, "read_write", "lock")
    __slots__ = _fields[3:]

    #: Open read-write (``rw``, or ``lk``, since a lock needs it).
    read_write: bool
    #: Lock the device against other programs while sending (``lk``).
    lock: bool

    def __init__(self, queue: str, framing: Framing, stall: float, read_write: bool,
                 lock: bool) -> None:
        self._assign(locals())

    @classmethod
    def from_entry(cls, entry: Entry, *, framed: bool = True) -> Self:
        return cls(**_common(entry, framed), read_write=entry.flag("rw") or entry.flag("lk"),
                   lock=entry.flag("lk"))


class PipeSettings(SendSettings):
    """``lp=|program``."""

    _fields = (*SendSettings._fields, "shell", "spool_dir", "printcap_text", "finish_timeout",
               "user", "group", "path")
    __slots__ = _fields[3:]

    #: The shell for a command with shell syntax (``shell``).
    shell: str
    #: ``sd``: the program's working directory and SPOOL_DIR.
    spool_dir: str | None
    #: The entry as printcap text: the program's PRINTCAP_ENTRY.
    printcap_text: str
    #: Seconds the program may stay silent after its input ended (``send_job_rw_timeout``;
    #: 0 or less: no limit).
    finish_timeout: float
    #: ``user`` and ``group``: whom a root watcher runs the program as for a root-owned
    #: spool (``children.run.owner_of``, looked up at each send, as the spool's owner is).
    user: str | None
    group: str | None
    #: ``filter_path``: the program's PATH when no caller built its environment.
    path: str

    def __init__(self, queue: str, framing: Framing, stall: float, shell: str,
                 spool_dir: str | None, printcap_text: str, finish_timeout: float,
                 user: str | None = None, group: str | None = None, path: str = "") -> None:
        self._assign(locals())

    @classmethod
    def from_entry(cls, entry: Entry, *, framed: bool = True) -> Self:
        from lpfilter.printcap.entrytext import entry_to_text
        return cls(**_common(entry, framed), shell=entry.string("shell") or "/bin/sh",
                   spool_dir=entry.string("sd"), printcap_text=entry_to_text(entry),
                   finish_timeout=_seconds(entry.number("send_job_rw_timeout")),
                   user=entry.string("user"), group=entry.string("group"),
                   path=entry.string("filter_path") or "")


class SocketSettings(SendSettings):
    """``lp=host%port`` (and ``lpfilter filter``'s standard output)."""

    _fields = (*SendSettings._fields, "pjl", "waitend", "silence", "delay", "overall",
               "half_close", "connect_grace", "connect_timeout", "keepalive", "linger", "sync",
               "pagecount", "pjl_enter", "init", "ps_eoj")
    __slots__ = _fields[3:]

    #: Wrap the job in PJL (``pjl``).
    pjl: bool
    #: How the end of the job is waited for: one of WAIT_MODES (``waitend``; "pjl"
    #: without ``pjl``, or a word not known, is "eof").
    waitend: str
    #: Seconds of silence that end the completion wait (``waitend_timeout``; 0: none).
    silence: float
    #: ``waitend=delay``'s pause (``waitend_delay``).
    delay: float
    #: The completion wait's bound (``send_job_rw_timeout``, else OVERALL_DEFAULT).
    overall: float
    #: Shut the write side when done (``half_close``).
    half_close: bool
    #: A pause before connecting (``connect_grace``).
    connect_grace: float
    #: ``connect_timeout`` (0: an hour).
    connect_timeout: float
    #: SO_KEEPALIVE (``keepalive``).
    keepalive: bool
    #: SO_LINGER seconds (``socket_linger``; 0: none).
    linger: int
    #: Check the back channel with a PJL ECHO before sending (``sync``).
    sync: bool
    #: Count pages with PJL INFO PAGECOUNT before and after (``pagecount``).
    pagecount: bool
    #: The PJL ENTER LANGUAGE (``pjl_enter``; None: none).
    pjl_enter: str | None
    #: The C-unescaped ``init`` string, sent before the job.
    init: bytes
    #: PostScript ^D before and after the job (``ps_eoj``).
    ps_eoj: bool

    def __init__(self, queue: str, framing: Framing, stall: float, pjl: bool, waitend: str,
                 silence: float, delay: float, overall: float, half_close: bool,
                 connect_grace: float, connect_timeout: float, keepalive: bool, linger: int,
                 sync: bool, pagecount: bool, pjl_enter: str | None, init: bytes,
                 ps_eoj: bool) -> None:
        self._assign(locals())

    @classmethod
    def from_entry(cls, entry: Entry, *, framed: bool = True) -> Self:
        use_pjl = entry.flag("pjl")
        mode = (entry.string("waitend") or ("pjl" if use_pjl else "eof")).strip().lower()
        if mode not in WAIT_MODES or (mode == "pjl" and not use_pjl):
            mode = "eof"
        rw_timeout = entry.number("send_job_rw_timeout")
        init = (entry.string("init") or "").encode("utf-8", "surrogateescape")
        return cls(**_common(entry, framed), pjl=use_pjl, waitend=mode,
                   silence=_seconds(entry.number("waitend_timeout")),
                   delay=_seconds(entry.number("waitend_delay")),
                   overall=_seconds(rw_timeout) if rw_timeout > 0 else OVERALL_DEFAULT,
                   half_close=entry.flag("half_close"),
                   connect_grace=_seconds(entry.number("connect_grace")),
                   connect_timeout=_seconds(entry.number("connect_timeout")),
                   keepalive=entry.flag("keepalive"), linger=entry.number("socket_linger"),
                   sync=entry.flag("sync"), pagecount=entry.flag("pagecount"),
                   pjl_enter=entry.string("pjl_enter"), init=c_unescape_bytes(init),
                   ps_eoj=entry.flag("ps_eoj"))


class FtpSettings(SendSettings):
    """``lp=ftp://...``."""

    _fields = (*SendSettings._fields, "idle", "user", "password_file", "sessions",
               "connect_timeout", "keepalive", "active")
    __slots__ = _fields[3:]

    #: Seconds a kept session may sit idle and still be reused (``ftp_idle``; 0: never).
    idle: int
    #: The login when lp names none (``ftp_user``; "": none).
    user: str
    #: The file holding the password (``ftp_password_file``; "": none).
    password_file: str
    #: Control connections to one server across lpfilter (``ftp_sessions``; at least 1).
    sessions: int
    #: ``connect_timeout``, for the control and passive data connections.
    connect_timeout: float
    #: SO_KEEPALIVE (``keepalive``).
    keepalive: bool
    #: Start in active mode (``ftp_active``) rather than passive.
    active: bool

    def __init__(self, queue: str, framing: Framing, stall: float, idle: int, user: str,
                 password_file: str, sessions: int, connect_timeout: float, keepalive: bool,
                 active: bool) -> None:
        self._assign(locals())

    @classmethod
    def from_entry(cls, entry: Entry, *, framed: bool = True) -> Self:
        return cls(**_common(entry, framed), idle=entry.number("ftp_idle"),
                   user=entry.string("ftp_user") or "",
                   password_file=entry.string("ftp_password_file") or "",
                   sessions=max(1, entry.number("ftp_sessions")),
                   connect_timeout=_seconds(entry.number("connect_timeout")),
                   keepalive=entry.flag("keepalive"), active=entry.flag("ftp_active"))


class LpdSettings(SendSettings):
    """``lp=queue@host[%port]`` or ``rm``/``rp``: RFC 1179 forwarding. The port is the
    destination's (``%port``, else ``lpd_port``). The job goes as it was spooled: never
    framed (``ld``, ``tr``, ``ff`` are the remote queue's business)."""

    _fields = (*SendSettings._fields, "connect_timeout", "ack_timeout", "banner", "style",
               "fmt", "host", "data_first", "keepalive", "batch", "source_ports")
    __slots__ = _fields[3:]

    #: ``connect_timeout`` (0: an hour).
    connect_timeout: float
    #: Seconds to wait for each acknowledgement: the stall limit, else ACK_DEFAULT.
    ack_timeout: float
    #: Write the L (banner) line unless ``sh``.
    banner: bool
    #: RFC/BSD control file order without LPRng's own lines with ``bk``, else LPRng's.
    style: Style
    #: The print format letter of the data file (``f``: formatted text, as LPRng's lpr).
    fmt: str
    #: This host as H and in the file names: ``gethostname()``, never looked up.
    host: str
    #: Data file before the control file (LPRng's ``send_data_first``).
    data_first: bool
    #: SO_KEEPALIVE (``keepalive``).
    keepalive: bool
    #: ``lpd_batch``: the jobs of a batch on one connection, each data file first.
    batch: bool
    #: ``lpd_reserved_port`` as root: the source port range (``originate_port``), else None.
    source_ports: tuple[int, int] | None

    def __init__(self, queue: str, framing: Framing, stall: float, connect_timeout: float,
                 ack_timeout: float, banner: bool, style: Style, fmt: str, host: str,
                 data_first: bool, keepalive: bool, batch: bool = False,
                 source_ports: tuple[int, int] | None = None) -> None:
        self._assign(locals())

    @classmethod
    def from_entry(cls, entry: Entry, *, framed: bool = True) -> Self:
        from lpfilter.printcap.hostmatch import host_name
        from lpfilter.protocols.lpdcontrol import Style
        common = _common(entry, False)
        return cls(**common, connect_timeout=_seconds(entry.number("connect_timeout")),
                   ack_timeout=common["stall"] if common["stall"] > 0 else ACK_DEFAULT,
                   banner=not entry.flag("sh"),
                   style=Style.RFC if entry.flag("bk") else Style.LPRNG, fmt="f",
                   host=host_name() or "localhost",  # (socket.gethostname(), no socket)
                   data_first=entry.flag("send_data_first") or entry.flag("lpd_batch"),
                   keepalive=entry.flag("keepalive"), batch=entry.flag("lpd_batch"),
                   source_ports=_source_ports(entry))


def _source_ports(entry: Entry) -> tuple[int, int] | None:
    """``originate_port`` (LPRng's "low high") when ``lpd_reserved_port`` is set and this
    process may bind such ports (root); a malformed range is LPRng's 512-1023."""
    if not entry.flag("lpd_reserved_port") or os.geteuid() != 0:
        return None
    words = (entry.string("originate_port") or "").replace(",", " ").split()
    if len(words) == 2 and all(word.isdigit() for word in words):
        low, high = int(words[0]), int(words[1])
        if 0 < low <= high <= 65535:
            return low, high
    return ORIGINATE_DEFAULT


#: Each destination kind's settings (the kinds of ``backend_for``'s registry).
SETTINGS: dict[str, type[SendSettings]] = {
    "device": DeviceSettings,
    "pipe": PipeSettings,
    "socket": SocketSettings,
    "ftp": FtpSettings,
    "lpd": LpdSettings,
}


def settings_for(destination: Destination, entry: Entry, *,
                 framed: bool = True) -> SendSettings:
    """The settings of the backend for ``destination``, read from ``entry``. A kind with
    no backend gets the common ones: ``backend_for`` refuses its job with the reason."""
    return SETTINGS.get(destination.kind, SendSettings).from_entry(entry, framed=framed)
