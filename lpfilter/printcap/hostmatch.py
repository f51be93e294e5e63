"""The local host as the printcap sees it: ``oh=`` record selection and ``%h``/``%H``.

Looked up lazily, once, and only from the local resolver (``/etc/hosts`` first), because
most printcaps never use ``oh=`` and a lookup must not slow every command down; for the same
reason ``ipaddress`` (about 1 ms) is imported only by the functions that make or compare
addresses.
"""
from __future__ import annotations

import os

from lpfilter.memo import once
from lpfilter.printcap.datatypes import split_list
from lpfilter.structs import FrozenStruct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    import ipaddress

    IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class HostInfo(FrozenStruct):
    """Names and addresses that ``oh=`` patterns are matched against."""

    __slots__ = _fields = ("short", "fqdn", "names", "addresses")
    short: str
    fqdn: str
    names: tuple[str, ...]
    addresses: tuple[IPAddress, ...]

    def __init__(self, short: str, fqdn: str, names: tuple[str, ...],
                 addresses: tuple[IPAddress, ...]) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "short", short)
        setattr_(self, "fqdn", fqdn)
        setattr_(self, "names", names)
        setattr_(self, "addresses", addresses)

    @classmethod
    def fixed(cls, fqdn: str, addresses: tuple[str, ...] = ("127.0.0.1",)) -> HostInfo:
        """A host given by hand (tests, or ``--host`` style overrides)."""
        import ipaddress
        return cls(fqdn.split(".")[0], fqdn, (fqdn, fqdn.split(".")[0]),
                   tuple(ipaddress.ip_address(a) for a in addresses))


def _hosts_file_lines(path: str = "/etc/hosts") -> list[list[str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return [line.split("#")[0].split() for line in handle]
    except OSError:
        return []


def host_name() -> str:
    """This machine's name as ``socket.gethostname()`` gives it: on Linux both read the
    kernel's node name (uname), and socket is not imported on every command's way."""
    return os.uname().nodename


@once
def _local_lines() -> tuple[str, list[list[str]]]:
    """This machine's name and the /etc/hosts lines that name it (read once)."""
    name = host_name()
    return name, [fields for fields in _hosts_file_lines()
                  if len(fields) >= 2 and name in fields[1:]]


def _fqdn(name: str, lines: list[list[str]], *, usable: Callable[[str], bool]) -> str:
    """The first dotted name of a line naming this machine (``usable``: that line's
    address reads), else the name itself."""
    fqdn = name
    for fields in lines:
        if usable(fields[0]):
            fqdn = next((n for n in fields[1:] if "." in n and n.startswith(name.split(".")[0])),
                        fqdn)
    return fqdn


@once
def local_host() -> HostInfo:
    """This machine's names and addresses, from gethostname() and /etc/hosts only.

    No DNS query is made: a printcap lookup must never send traffic off this machine.
    """
    import ipaddress
    name, lines = _local_lines()
    names = {name, name.split(".")[0], "localhost"}
    addresses: set[IPAddress] = {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    for fields in lines:
        try:
            addresses.add(ipaddress.ip_address(fields[0]))
        except ValueError:
            continue
        names.update(fields[1:])
    fqdn = _fqdn(name, lines, usable=_is_address)
    return HostInfo(fqdn.split(".")[0], fqdn, tuple(sorted(names)), tuple(sorted(
        addresses, key=lambda a: (a.version, int(a)))))


@once
def local_fqdn() -> str:
    """``local_host().fqdn`` without its addresses (``ipaddress``: 1.5 ms a command that
    only names the host need not pay): an address is told by its shape here."""
    name, lines = _local_lines()
    return _fqdn(name, lines, usable=_looks_like_address)


def _is_address(text: str) -> bool:
    import ipaddress
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _looks_like_address(text: str) -> bool:
    """An IPv4 or IPv6 address as /etc/hosts writes one (digits and dots; hex and
    colons), the test ``_is_address`` makes without ``ipaddress``."""
    if ":" in text:
        text = text.partition("%")[0]  # (a scope: fe80::1%eth0)
        return all(c in "0123456789abcdefABCDEF:." for c in text) and text.count(":") >= 2
    parts = text.split(".")
    return len(parts) == 4 and all(p.isascii() and p.isdigit() and p == str(int(p))
                                   and int(p) <= 255 for p in parts)


def _matches_address(item: str, host: HostInfo) -> bool | None:
    """Address or addr/mask match; None when ``item`` is no address form."""
    import ipaddress
    try:
        network = ipaddress.ip_network(item, strict=False)
    except ValueError:
        if "/" not in item:
            return None
        address, _, mask = item.partition("/")
        try:
            network = ipaddress.ip_network(f"{address}/{mask.lstrip('/')}", strict=False)
        except ValueError:
            return None
    return any(a.version == network.version and a in network for a in host.addresses)


def _matches_one(item: str, host: HostInfo) -> bool:
    if item.startswith("<"):
        try:
            with open(item[1:], encoding="utf-8", errors="replace") as handle:
                patterns = split_list(handle.read().replace("\n", " "))
        except OSError:
            return False
        return any(_matches_one(p, host) for p in patterns)
    if item.startswith("@"):
        return False  # NIS netgroups are not available to lpfilter
    by_address = _matches_address(item, host)
    if by_address is not None:
        return by_address
    import fnmatch  # (only an oh= or sv= host pattern is matched: no quick command does)
    pattern = item.lower()
    return any(fnmatch.fnmatchcase(n.lower(), pattern) for n in host.names)


def oh_matches(value: str, host: HostInfo) -> bool:
    """Does an ``oh=`` value select this host? ``!`` negates this and (LPRng quirk) every
    later item."""
    negate = False
    for item in split_list(value):
        if item.startswith("!"):
            negate = True
            item = item[1:]
        if _matches_one(item, host) != negate:
            return True
    return False
