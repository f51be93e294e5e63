"""Opening a TCP connection to a printer: every address tried, every failure classified.

Refused means busy or switched off (a JetDirect takes one connection at a time, and a
port nobody listens on refuses too); no answer or no route means unreachable; a name that
does not resolve is its own case. Each is a NotConnected error carrying ``host%port``: the
worker retries it on LPRng's schedule without counting it against the job, and shows which
it was.

The sockets are ``Connection``s: ``_socket``'s C type (which ``socket.socket`` extends)
with a context manager. Every method a backend calls is the C type's own, and the
``socket`` module would cost lpd's filter, started once a job, 15 M instructions to import
(it makes four enums of the constants and imports ``selectors``): 14 % of its start.
"""
from __future__ import annotations

import _socket
import errno
import os
import select
import struct
import time

from lpfilter.errors import (ConnectionLost, ConnectRefused, Interruption, JobInterrupted,
                             NameNotFound, TransientError, Unreachable)
from lpfilter.printcap.destination import host_problem

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

TICK = 0.2
_UNUSABLE = frozenset({errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL})
#: A printer that refuses a job's connection may only be busy for a moment: a print server
#: that takes one connection at a time re-opens its port some milliseconds after the job
#: before, and a worker connects the instant that job ended. Tried again after these
#: pauses (0.4 s in all) before the refusal counts, which costs the job connect_interval
#: (10 s by default): under load that pause came after most jobs (test_crash_kill's
#: watcher, 3 jobs/s). A printer that is switched off costs its retry 0.4 s more.
BUSY_PAUSES = (0.01, 0.03, 0.06, 0.1, 0.2)
_OFFLINE = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN,
                      errno.ETIMEDOUT})


class Connection(_socket.socket):
    """A socket that closes at the end of a ``with``."""

    __slots__ = ()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def resolve(host: str, port: int) -> list[tuple[int, int, int, object]]:
    """Every address of ``host`` (IPv4 and IPv6), in the resolver's order."""
    if host_problem(host) is not None:
        raise NameNotFound(f"{host}: not a valid host name; fix lp in the printcap",
                           host=f"{host}%{port}")
    try:  # (bytes: a str goes through the idna codec, 1 ms of imports, and its errors)
        infos = _socket.getaddrinfo(host.encode("ascii") if host.isascii() else host, port,
                                    0, _socket.SOCK_STREAM)
    except _socket.gaierror as exc:
        raise NameNotFound(f"{host}: the name does not resolve ({exc.strerror})",
                           host=f"{host}%{port}") from None
    except UnicodeError:  # a literal (it has ':') that is not ASCII: never an address
        raise NameNotFound(f"{host}: not a valid address; fix lp in the printcap",
                           host=f"{host}%{port}") from None
    return [(family, kind, proto, address) for family, kind, proto, _, address in infos]


def _wait(sock: Connection, deadline: float,
          interrupted: Callable[[], Interruption | None]) -> bool:
    """Until the connection is made or failed (writable; an error or a hang-up counts, and
    the caller reads SO_ERROR): poll(2), no epoll made, registered and closed per job."""
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    while True:
        reason = interrupted()
        if reason is not None:
            raise JobInterrupted(reason)
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if poller.poll(min(TICK, left) * 1000):
            return True


def open_connection(host: str, port: int, *, timeout: float,
                    interrupted: Callable[[], Interruption | None], keepalive: bool = True,
                    linger: int = 10, source_ports: tuple[int, int] | None = None,
                    busy: bool = False) -> Connection:
    """A connected non-blocking socket to the first address of ``host`` that accepts;
    from a port in ``source_ports`` (low, high) when given. ``busy`` (a job's send): a
    refusal is tried again after BUSY_PAUSES before it counts (see there), at the
    addresses that refused only."""
    addresses = resolve(host, port)  # once: the retries of a busy printer ask no resolver
    pauses = BUSY_PAUSES if busy else ()
    for pause in (*pauses, None):
        sock, failures = _connect_any(addresses, f"{host}%{port}", timeout=timeout,
                                      interrupted=interrupted, source_ports=source_ports)
        if sock is not None:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_KEEPALIVE, int(keepalive))
            if linger > 0:
                sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_LINGER,
                                struct.pack("ii", 1, linger))
            return sock
        error = _classify(host, port, failures, timeout)
        if pause is None or not isinstance(error, ConnectRefused):
            raise error
        # Only a refusal may be a busy moment: an address that gave no answer is not
        # waited for again (each wait is the whole connect timeout). None succeeded, so
        # each address has its one failure, in order.
        addresses = [address for address, (_, code) in zip(addresses, failures, strict=True)
                     if code == errno.ECONNREFUSED]
        _busy_pause(pause, interrupted)
    raise AssertionError("unreachable")


def _busy_pause(pause: float, interrupted: Callable[[], Interruption | None]) -> None:
    """A short wait before the next try at a printer that refused (a cancel or a shutdown
    ends it at once: it is a few hundredths of a second)."""
    reason = interrupted()
    if reason is not None:
        raise JobInterrupted(reason)
    time.sleep(pause)


def _connect_any(addresses: list[tuple[int, int, int, object]], where: str, *, timeout: float,
                 interrupted: Callable[[], Interruption | None],
                 source_ports: tuple[int, int] | None
                 ) -> tuple[Connection | None, list[tuple[object, int]]]:
    """One round over ``addresses`` (``where``'s): the first connected socket, or none and
    why each address failed."""
    failures: list[tuple[object, int]] = []
    for family, kind, proto, address in addresses:
        try:
            sock = Connection(family, kind, proto)
        except OSError as exc:  # a family this host cannot use (no IPv6): the next one
            failures.append((address, exc.errno or errno.EAFNOSUPPORT))
            continue
        try:
            sock.setblocking(False)
            if source_ports is not None:
                _bind_source(sock, source_ports, where)
            code = sock.connect_ex(address)  # type: ignore[arg-type]
            if code in (errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY):
                deadline = time.monotonic() + (timeout if timeout > 0 else 3600.0)
                code = (sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_ERROR)
                        if _wait(sock, deadline, interrupted) else errno.ETIMEDOUT)
            if code == 0:
                result, sock = sock, None  # type: ignore[assignment]
                return result, failures
            failures.append((address, code))
        finally:
            if sock is not None:
                sock.close()
    return None, failures


def on_this_host(sock: _socket.socket) -> bool:
    """Whether the peer of ``sock`` runs on this machine (a loopback address, or one of
    ours). Zero-copy then only moves the copy into the reader, which takes it from cold
    page-cache pages: LPRng's lpd spent about 1.3 s of CPU on a 1 GiB job sent with
    sendfile(2) against 1.0 s for the same bytes written from a 1 MiB buffer, and lpd is
    the slower side (bench/README.md, LPD forwarding). To another host the network card
    reads the pages and sendfile saves our copy."""
    import ipaddress  # (a big job's question: 1 ms that lpd's filter for each job saves)
    try:
        peer, own = sock.getpeername()[0], sock.getsockname()[0]
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except (OSError, ValueError, IndexError, TypeError):  # not an IP socket
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return peer == own or address.is_loopback


def _bind_source(sock: Connection, ports: tuple[int, int], where: str) -> None:
    """The highest free port of ``ports``, as CUPS does. No SO_REUSEADDR: a port whose
    last connection is in TIME_WAIT fails to bind and the next one is tried, so the
    connection never collides with an old one to the same server."""
    low, high = ports
    any_address = "::" if sock.family == _socket.AF_INET6 else "0.0.0.0"
    for source in range(high, low - 1, -1):
        try:
            sock.bind((any_address, source))
            return
        except OSError as exc:
            if exc.errno == errno.EACCES:
                raise TransientError(f"{where}: source port {source}: permission denied"
                                     " (reserved ports need root)") from None
            if exc.errno != errno.EADDRINUSE:
                raise
    raise TransientError(f"{where}: no free source port in {low}-{high} (originate_port)")


def _classify(host: str, port: int, failures: list[tuple[object, int]],
              timeout: float) -> TransientError:
    # An address this host cannot use (an IPv6 one without IPv6) says nothing of the
    # printer: the others decide, where there are others.
    codes = [code for _, code in failures if code not in _UNUSABLE] or [
        code for _, code in failures]
    where = f"{host}%{port}"
    if errno.ECONNREFUSED in codes:
        return ConnectRefused(f"{where}: connection refused: the printer is busy (it takes"
                              " one connection at a time), switched off, or nothing listens"
                              " on that port", host=where)
    if codes and all(code in _OFFLINE for code in codes):
        if errno.ETIMEDOUT in codes:
            return Unreachable(f"{where}: no answer within {timeout:g} s: the printer is"
                               " off or unreachable", host=where)
        return Unreachable(f"{where}: unreachable ({os.strerror(codes[0])})", host=where)
    detail = ", ".join(os.strerror(code) for code in codes) or "no address"
    return TransientError(f"{where}: cannot connect ({detail})")


def broken(exc: OSError, where: str, sent: int, *, peer: str = "printer",
           unit: str = "bytes") -> TransientError:
    """The error for a connection that failed while a job went over it: a reset (or a
    write to a closed peer) is ConnectionLost, anything else a plain transient failure;
    both say how much had been sent, so the status line tells a possible duplicate."""
    if exc.errno in (errno.ECONNRESET, errno.ENOTCONN, errno.EPIPE):
        return ConnectionLost(f"{where}: the {peer} reset the connection after {sent} {unit}")
    return TransientError(f"{where}: {exc.strerror or exc} after {sent} {unit}")


def readable(sock: _socket.socket | int, timeout: float) -> bool:
    """Whether ``sock`` is readable within ``timeout`` seconds: poll(2), not select(2),
    so a descriptor past 1023 (a busy daemon's) is fine."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(max(0.0, timeout) * 1000))
