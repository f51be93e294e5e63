"""Where a queue's jobs go: the ``lp=`` value (with ``rm``/``rp``) as a typed destination.

Nothing is connected here; backends pick their destination type from this. The forms
and their LPRng meanings are in ``shared/reference/lprng-printcap.md`` §5, including the
trap that ``9100@printer`` is an LPD queue named "9100" for LPRng, not a socket. Only a
URI's forms import ``urllib.parse`` (with ``ipaddress``: 3 ms that ``status`` of a
``host%port`` queue would spend for nothing).
"""
from __future__ import annotations

from lpfilter.printcap.datatypes import URI_SCHEMES, strtol, strtol_leftover
from lpfilter.structs import FrozenStruct

LPD_PORT = 515
JETDIRECT_PORT = 9100
FTP_PORT = 21


#: A host name as the resolver takes it (RFC 1123 letters, digits, '-', '.', and '_'
#: that real sites use); an address literal is not a name.
_HOSTNAME = r"^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})$"


def host_problem(host: str) -> str | None:
    """Why ``host`` can never be looked up (None: it may be): a typo in lp, not a printer
    that is away."""
    if host.startswith("[") != host.endswith("]"):
        return f"'{host}' has one bracket of an IPv6 address's two ([::1])"
    if ":" in host:  # an IPv6 address, or a port written LPRng's wrong way (host:515)
        import _socket
        address = host.removeprefix("[").removesuffix("]").partition("%")[0]
        try:
            _socket.inet_pton(_socket.AF_INET6, address)
        except (OSError, ValueError):
            return (f"'{host}' is not a valid IPv6 address (a port is written after '%':"
                    " host%515)")
        return None
    if host.replace(".", "").isdigit():
        return None
    import re  # (checkpc's and a backend's: a quick command looks up no host)
    if not re.match(_HOSTNAME, host):
        return f"'{host}' is not a valid host name (letters, digits, '-', '.' and '_')"
    if any(not 0 < len(label) <= 63 for label in host.removesuffix(".").split(".")):
        return (f"'{host}' is not a valid host name (an empty part between dots, or one"
                " longer than 63 characters)")
    return None


class Device(FrozenStruct):
    """``lp=/path``: a device or file, opened for append and never created."""

    __slots__ = _fields = ("path",)
    path: str
    kind = "device"

    def __init__(self, path: str) -> None:
        object.__setattr__(self, "path", path)

    def display(self) -> str:
        return self.path


class Pipe(FrozenStruct):
    """``lp=|program args``: the job goes to the program's standard input."""

    __slots__ = _fields = ("command",)
    command: str
    kind = "pipe"

    def __init__(self, command: str) -> None:
        object.__setattr__(self, "command", command)

    def display(self) -> str:
        return "|" + self.command


class Socket(FrozenStruct):
    """``lp=host%port``: the Socket API (JetDirect/AppSocket)."""

    __slots__ = _fields = ("host", "port")
    host: str
    port: int
    kind = "socket"

    def __init__(self, host: str, port: int) -> None:
        object.__setattr__(self, "host", host)
        object.__setattr__(self, "port", port)

    def display(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}%{self.port}"


class Lpd(FrozenStruct):
    """``lp=queue@host[%port]`` or ``rm``/``rp``: forward with RFC 1179."""

    __slots__ = _fields = ("queue", "host", "port")
    queue: str
    host: str
    port: int
    kind = "lpd"

    def __init__(self, queue: str, host: str, port: int = LPD_PORT) -> None:
        object.__setattr__(self, "queue", queue)
        object.__setattr__(self, "host", host)
        object.__setattr__(self, "port", port)

    def display(self) -> str:
        port = f"%{self.port}" if self.port != LPD_PORT else ""
        return f"{self.queue}@{self.host}{port}"


class Ftp(FrozenStruct):
    """``lp=ftp://[user[:password]@]host[:port]/[path]``: JetDirect FTP printing."""

    __slots__ = _fields = ("host", "port", "path", "user", "password")
    _shown = _fields[:4]  # never the password
    host: str
    port: int
    path: str
    user: str | None
    password: str | None
    kind = "ftp"

    def __init__(self, host: str, port: int = FTP_PORT, path: str = "",
                 user: str | None = None, password: str | None = None) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "host", host)
        setattr_(self, "port", port)
        setattr_(self, "path", path)
        setattr_(self, "user", user)
        setattr_(self, "password", password)

    def display(self) -> str:
        """The URI with the password masked: it is never shown or logged."""
        auth = ""
        if self.user is not None:
            import urllib.parse
            auth = urllib.parse.quote(self.user, safe="") + (":***" if self.password else "") + "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port != FTP_PORT else ""
        return f"ftp://{auth}{host}{port}/{self.path}"


class Invalid(FrozenStruct):
    """An ``lp`` value that no backend can use; ``reason`` says why, for checkpc and errors."""

    __slots__ = _fields = ("value", "reason")
    value: str
    reason: str
    kind = "invalid"

    def __init__(self, value: str, reason: str) -> None:
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "reason", reason)

    def display(self) -> str:
        """The value, with a URI's password masked even when the URI is broken."""
        return redact(self.value)


Destination = Device | Pipe | Socket | Lpd | Ftp | Invalid


def parse_port(text: str, default: int) -> int | str:
    """A port number (C strtol, so a leading 0 is octal) or /etc/services name; str on error."""
    text = text.strip()
    if not text:
        return default
    if text[0].isdigit():
        if strtol_leftover(text):
            return f"port '{text}' is not a number"
        port = strtol(text)
    else:
        try:
            import socket  # only for a port given by name: most commands never connect
            port = socket.getservbyname(text, "tcp")
        except OSError:
            return (f"unknown service name '{text}' (LPRng would report every job as printed"
                    " without sending it); write the port number")
    if not 0 < port < 65536:
        return f"port {port} is out of range 1-65535"
    return port


def split_host(text: str) -> str:
    """A host part without IPv6 brackets; ``\\:`` (a printcap-escaped colon) is a colon."""
    text = text.replace("\\:", ":")
    return text[1:-1] if text.startswith("[") and text.endswith("]") else text


def _socket(value: str) -> Destination:
    host, _, port_text = value.rpartition("%")
    host = split_host(host.strip())
    if not host:
        return Invalid(value, "no host before '%'")
    port = parse_port(port_text, LPD_PORT)
    return Invalid(value, port) if isinstance(port, str) else Socket(host, port)


def _lpd(value: str, default_port: int | str) -> Destination:
    queue, _, rest = value.partition("@")
    host, sep, port_text = rest.rpartition("%") if "%" in rest else (rest, "", "")
    host = split_host(host.strip())
    if not queue or not host:
        return Invalid(value, "queue@host needs both a queue and a host")
    port = parse_port(port_text, LPD_PORT) if sep else default_port
    return Invalid(value, port) if isinstance(port, str) else Lpd(queue, host, port)


def _uri(value: str) -> Destination:
    import urllib.parse
    text = value.replace("\\:", ":")
    scheme, _, rest = text.partition("://")
    if "@" in rest:
        # The user information runs to the last '@': a password may hold '/', '#' or '?'
        # unencoded, which a URI parser would take for the start of the path.
        userinfo, _, hostpart = rest.rpartition("@")
        user, colon, password = userinfo.partition(":")
        quoted = urllib.parse.quote(user, safe="%") + (
            ":" + urllib.parse.quote(password, safe="%") if colon else "")
        text = f"{scheme}://{quoted}@{hostpart}"
    try:  # (Python refuses a bracketed host that is no IP address: "[:1]", "[")
        parts = urllib.parse.urlsplit(text)
    except ValueError:
        return Invalid(value, f"bad host in the {scheme.lower()} URI: an IPv6 address in"
                              " brackets, each ':' escaped (\\:) in the printcap")
    scheme = parts.scheme.lower()
    try:
        host, port_number = parts.hostname, parts.port
    except ValueError:
        return Invalid(value, f"bad port in the {scheme} URI (a number, 1 to 65535)")
    if not host:
        return Invalid(value, f"{scheme}:// URI without a host")
    path = urllib.parse.unquote(parts.path.lstrip("/"))
    if scheme == "ftp":
        login = urllib.parse.unquote(parts.username) if parts.username is not None else None
        secret = urllib.parse.unquote(parts.password) if parts.password is not None else None
        return Ftp(host, port_number or FTP_PORT, path, login, secret)
    if scheme == "socket":
        return Socket(host, port_number or JETDIRECT_PORT)
    if not path:
        return Invalid(value, "lpd:// URI without a queue (lpd://host/queue)")
    return Lpd(path, host, port_number or LPD_PORT)



def classify(lp: str | None, *, queue: str, rm: str | None = None, rp: str | None = None,
             default_remote_host: str = "localhost", lpd_port: str | None = None) -> Destination:
    """Turn ``lp`` (and ``rm``/``rp`` when lp is unset) into a destination, as LPRng reads it.
    ``lpd_port`` is the port of a queue@host without ``%port`` and of rm/rp."""
    default_port = parse_port(lpd_port or "", LPD_PORT)
    if not lp:
        host = rm or default_remote_host
        if isinstance(default_port, str):
            return Invalid(f"{rp or queue}@{host}", f"lpd_port: {default_port}")
        return Lpd(rp or queue, host, default_port)
    if lp.startswith("/"):
        return Device(lp)
    if lp.startswith("|"):
        command = lp[1:].strip()
        return Pipe(command) if command else Invalid(lp, "'|' with no program after it")
    plain = lp.replace("\\:", ":")
    scheme = plain.partition(":")[0].lower()
    if scheme in URI_SCHEMES and plain[len(scheme):].startswith("://"):
        return _uri(lp)
    if lp.startswith("[") and "]" not in lp:
        return Invalid(lp, "an IPv6 address is cut at its first ':' (each unescaped ':' ends a"
                       " printcap option); escape every colon: [2001\\:db8\\:\\:1]%9100")
    if "@" in lp:
        if isinstance(default_port, str) and "%" not in lp.partition("@")[2]:
            return Invalid(lp, f"lpd_port: {default_port}")
        return _lpd(lp, default_port)
    if "%" in lp:
        return _socket(lp)
    return Invalid(lp, "not a device path (/dev/...), a pipe (|program), host%port,"
                   " queue@host or ftp:// URI")


def redact(value: str) -> str:
    """Hide the password of a URI (``ftp://user:***@host``): it never appears in output.
    In a program's command line (``|/usr/bin/lpfilter filter ftp://user:pw@host/P``, or a
    filter's), that of each word."""
    whole = _redact_uri(value)
    if whole != value or not any(c.isspace() for c in value):
        return whole
    import re
    return re.sub(r"\S+", lambda word: _redact_uri(word.group()), value)


def _redact_uri(value: str) -> str:
    head, sep, rest = value.partition("//")
    if not sep or head.replace("\\:", ":").lower() not in ("ftp:", "socket:", "lpd:"):
        return value
    userinfo, at, hostpart = rest.rpartition("@")  # a password may hold '/' unencoded
    if not at:
        return value
    user, colon, _ = userinfo.replace("\\:", ":").partition(":")
    if not colon:
        return value
    escaped = "\\:" if "\\:" in value else ":"
    return f"{head}//{user}{escaped}***@{hostpart}"


def password_on_command_line(shown: str) -> str:
    """Why a destination with a password is refused on a command line (``lpfilter filter``
    and checkpc), naming the safe ways; ``shown`` says where, its password masked."""
    return (f"{shown}: a password on a command line is visible to every local"
            " user (ps, /proc/PID/cmdline) while the job is sent; leave it out and give"
            " ftp_user and ftp_password_file (a file of mode 0600) in the printcap entry,"
            " or (run by hand) a machine line in ~/.netrc")


def printer_address(destination: Destination) -> str:
    """``host%port`` of a network printer (what an error about it names), "" for a device
    or a program."""
    host, port = getattr(destination, "host", None), getattr(destination, "port", None)
    return f"{host}%{port}" if host and port else ""
