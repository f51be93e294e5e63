"""The local user behind a TCP connection from this host, as the kernel knows it.

A client on loopback (or on any address of this host) is a local user whose uid the
kernel holds: its socket is a row of ``/proc/net/tcp`` or ``/proc/net/tcp6`` whose local
address:port is the peer's and whose remote address:port is our accepted socket's own. The
server treats such a peer as that user (``Peer.uid``/``user``), so that ``lpr -P
q@localhost`` gives no more rights than the Unix socket: a claimed user counts for nothing.
Not found (another host, another network namespace, no /proc): the TCP rules apply. A
client of root's is let speak for its users as over the network (a spooler on this host,
LPRng's lpd or CUPS's lpd backend, forwards other users' jobs): root may do all anyway.

Only a socket a process still holds (an inode) has an owner. One its process closed is
shown with uid 0 (TIME_WAIT, and FIN_WAIT2 once the kernel keeps it as a timewait
socket): a local user who sends a request and closes at once, in a burst that keeps it
waiting to be accepted, would pass for root. A client from this host (a loopback
address, or the server's own address) whose owner the kernel does not show is
``anonymous``: it speaks for nobody (it may ask for status and send jobs, as any host,
but removes no job and gets no lpc of root's).
"""
from __future__ import annotations

import ipaddress
import socket
import struct

from lpfilter import logs
from lpfilter.job import user_name
from lpfilter.server import sockdiag
from lpfilter.server.peer import Peer

log = logs.getLogger(__name__)

TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
#: A table is read at most this far (a host with very many connections: the peer is
#: then served by the TCP rules rather than the server reading without bound).
MAX_TABLE = 8 * 1024 * 1024
_WORD = struct.Struct("=I")  # the kernel prints each 32-bit word in host byte order
#: States whose row carries the socket's owner: ESTABLISHED, FIN_WAIT1, FIN_WAIT2. A
#: TIME_WAIT row (a client that closed at once) shows uid 0 and must never count as root;
#: nor a row without an inode (a socket its process closed, in any state).
OWNED_STATES = frozenset({"01", "04", "05"})

Address = tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]


def _normal(host: str, port: int) -> Address:
    """An address as compared here: an IPv4-mapped IPv6 address as IPv4."""
    ip = ipaddress.ip_address(host.split("%", 1)[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip), port


def decode(field: str) -> Address:
    """``0100007F:0202`` (or the 32-hex-digit IPv6 form) as (address, port)."""
    hexip, _, hexport = field.partition(":")
    if len(hexip) not in (8, 32) or not hexport:
        raise ValueError(f"not an address of /proc/net/tcp: {field!r}")
    raw = b"".join(_WORD.pack(int(hexip[i:i + 8], 16)) for i in range(0, len(hexip), 8))
    ip = ipaddress.ip_address(raw)
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip), int(hexport, 16)


def owner_uid(table: str, client: Address, server: Address) -> int | None:
    """The uid column of the row whose local end is ``client`` and remote end ``server``,
    in a state that keeps its owner and held by a process (a non-zero inode column); None
    when no row is (malformed rows are passed over)."""
    for row in table.splitlines()[1:]:
        fields = row.split()
        if len(fields) < 10 or fields[3] not in OWNED_STATES or fields[9] == "0":
            continue
        try:
            if decode(fields[1]) == client and decode(fields[2]) == server:
                return int(fields[7])
        except ValueError:
            continue
    return None


def _read(path: str) -> str:
    try:
        with open(path, "rb") as table:
            return table.read(MAX_TABLE).decode("ascii", "replace")
    except OSError:
        return ""


def socket_owner(conn: socket.socket, host: str, port: int) -> int | None:
    """The uid owning the client end of TCP connection ``conn`` (accepted from
    ``host``:``port``) when it is a socket of this host; None when the kernel shows none."""
    try:
        ours = conn.getsockname()
        client, server = _normal(host, port), _normal(str(ours[0]), int(ours[1]))
    except (OSError, ValueError, IndexError, TypeError):  # not a TCP socket
        return None
    # The kernel asked for the one socket (O(1)); the tables are read (all their rows,
    # ~8 ms after a burst of connections) only where it gives no answer.
    uid = sockdiag.socket_uid(client, server)
    if uid is not None:
        return uid
    for path in TABLES:
        uid = owner_uid(_read(path), client, server)
        if uid is not None:
            return uid
    return None


def loopback_peer(conn: socket.socket, host: str, port: int) -> Peer:
    """Who the client of TCP connection ``conn`` (accepted from ``host``:``port``) is: the
    local user who owns its end; a plain TCP peer when the kernel shows no such socket
    here, or root's (a local spooler forwarding: the TCP rules); an anonymous one when it
    comes from this host and its owner is not shown (it closed its end)."""
    uid = socket_owner(conn, host, port)
    address = str(_normal(host, port)[0])
    if uid is None:
        return Peer(address, port, anonymous=from_here(conn, address))
    if uid == 0:
        return Peer(address, port)
    return Peer(address, port, uid=uid, user=user_name(uid))


def from_here(conn: socket.socket, address: str) -> bool:
    """Does a client at ``address`` connect from this host: a loopback address, or the
    server's own address (a client of this host reaching one of its addresses)?"""
    try:
        ours = _normal(str(conn.getsockname()[0]), 0)[0]
        theirs = _normal(address, 0)[0]
    except (OSError, ValueError, IndexError, TypeError):
        return False
    return theirs.is_loopback or theirs == ours
