"""The uid of one local TCP socket, asked of the kernel with a NETLINK_SOCK_DIAG request.

``loopuid`` asks this first (issue 16; bench/JOURNAL-DESIGN.md §1.4): its look through
``/proc/net/tcp``, now only the fallback, reads and parses every row of the table for each
connection (~8 ms after a burst of 1000 short connections, whose TIME_WAIT rows stay for
60 s). This asks for the one socket by its four addresses: an ``inet_diag_req_v2``
without NLM_F_DUMP, answered with one ``inet_diag_msg`` (its ``idiag_uid``) or an error
(no such socket). The request and the answer are built and parsed by pure functions.
"""
from __future__ import annotations

import ipaddress
import socket
import struct

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLMSG_ERROR = 2
NLM_F_REQUEST = 1
#: inet_diag_sockid's cookie that asks the kernel not to check it.
NO_COOKIE = 0xFFFFFFFF
#: TCP states whose socket still carries its owner (ESTABLISHED, FIN_WAIT1, FIN_WAIT2);
#: a TIME_WAIT socket shows uid 0 and must never count as root's. Nor must a socket its
#: process closed (orphaned: no inode), which shows uid 0 in FIN_WAIT2 once the kernel
#: keeps it as a timewait socket: an ordinary user who sends a request and closes at once
#: would pass for root (``socket_uid`` wants an inode too).
OWNED_STATES = frozenset({1, 4, 5})

_NLMSGHDR = struct.Struct("=IHHII")
_REQ = struct.Struct("=BBBxI")
_SOCKID = struct.Struct("!HH16s16s")
_SOCKID_TAIL = struct.Struct("=III")
_MSG_HEAD = struct.Struct("=BBBB")
_MSG_TAIL = struct.Struct("=IIIII")
_ERROR = struct.Struct("=i")

Address = tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]


def _packed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bytes:
    return ip.packed.ljust(16, b"\0")


def request(local: Address, remote: Address, seq: int = 1) -> bytes:
    """The netlink message asking for the TCP socket whose own end is ``local`` and whose
    peer is ``remote`` (both IPv4, or both IPv6)."""
    family = socket.AF_INET if local[0].version == 4 else socket.AF_INET6
    body = (_REQ.pack(family, socket.IPPROTO_TCP, 0, 0xFFFFFFFF)
            + _SOCKID.pack(local[1], remote[1], _packed(local[0]), _packed(remote[0]))
            + _SOCKID_TAIL.pack(0, NO_COOKIE, NO_COOKIE))
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST,
                          seq, 0) + body


def answer(data: bytes) -> tuple[int, int, int] | None:
    """(state, uid, inode) of the socket the answer describes; None for an error answer
    (no such socket) or bytes that are no answer."""
    if len(data) < _NLMSGHDR.size:
        return None
    length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data)
    if kind == NLMSG_ERROR or length > len(data):
        return None
    at = _NLMSGHDR.size
    if len(data) < at + _MSG_HEAD.size + _SOCKID.size + _SOCKID_TAIL.size + _MSG_TAIL.size:
        return None
    _family, state, _timer, _retrans = _MSG_HEAD.unpack_from(data, at)
    at += _MSG_HEAD.size + _SOCKID.size + _SOCKID_TAIL.size
    _expires, _rqueue, _wqueue, uid, inode = _MSG_TAIL.unpack_from(data, at)
    return state, uid, inode


def _plain(address: Address) -> Address:
    """An IPv4-mapped IPv6 address as the IPv4 socket it is."""
    mapped = getattr(address[0], "ipv4_mapped", None)
    return (mapped or address[0]), address[1]


def socket_uid(local: Address, remote: Address, timeout: float = 1.0) -> int | None:
    """The uid owning this host's TCP socket ``local`` connected to ``remote``; None when
    the kernel shows none in a state that keeps its owner, held by a process (an inode),
    or refuses the question."""
    local, remote = _plain(local), _plain(remote)
    if local[0].version != remote[0].version:
        return None
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
            nl.settimeout(timeout)
            nl.send(request(local, remote))
            found = answer(nl.recv(8192))
    except OSError:
        return None
    if found is None or found[0] not in OWNED_STATES or not found[2]:
        return None
    return found[1]
