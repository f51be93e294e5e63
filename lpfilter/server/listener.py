"""The print server's listening sockets and the threads that serve their connections.

Sockets: TCP ones opened for ``watch --listen [ADDRESS:]PORT``, ones handed over by
systemd socket activation (``LISTEN_FDS``/``LISTEN_PID``, descriptors from 3), and the
local Unix socket. A TCP peer whose address is not on the allow-list is closed at once
(after LPRng's one-line refusal), logged. At most ``max_connections`` connections are
served at a time, one thread each: at the limit the listening sockets are not even looked
at, so further clients wait in the kernel's backlog (or are refused by it), never in
memory here. The accepting thread blocks in ``select`` without a timeout: an idle server
uses no CPU, and neither does an idle connection (its Wire sleeps until data, its
deadline or the listener's StopPipe). ``shutdown`` stops everything within a bounded time.
"""
from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from lpfilter import logs
from lpfilter.errors import AccessError, UsageError
from lpfilter.protocols import lpdlocal
from lpfilter.server.connection import serve_connection
from lpfilter.server.limits import MAX_LOCAL, Client, Slots, Throttle
from lpfilter.server.peer import Peer, Queues
from lpfilter.server.spoolcheck import SpoolChecks
from lpfilter.server.wire import StopPipe
from lpfilter.text import visible

log = logs.getLogger(__name__)

#: Served when no --allow is given: this host only.
DEFAULT_ALLOW = ("127.0.0.0/8", "::1/128")
#: sd_listen_fds(3): the first descriptor systemd passes.
LISTEN_FDS_START = 3
#: How long shutdown waits for connection threads (each hears ``stop`` within a tick).
SHUTDOWN_WAIT = 10.0
#: LPRng's answer to a host it does not serve (lpd-protocol.md §3).
REFUSAL = b"\x01no connect permissions\n"
#: The answer to a client holding its share of the connections already.
BUSY = b"\x01too many connections from this client; try again later\n"
#: A refused client's request already sent is read (at most this) before the close.
MAX_DRAIN = 65536
#: Out of descriptors, accepting waits this long first, doubling up to the maximum.
ACCEPT_BACKOFF = 0.05
MAX_ACCEPT_BACKOFF = 5.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_listen(text: str) -> tuple[str, int]:
    """``[ADDRESS:]PORT`` (IPv6 as ``[::1]:PORT``) as (address, port); "" is every
    address. A usage error names what is wrong."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise UsageError(f"--listen {visible(text)}: write an IPv6 address in brackets,"
                         " e.g. [::1]:515")
    if not port.isascii() or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen {visible(text)}: the port must be a number 0-65535")
    if sep and host:
        try:
            host = str(ipaddress.ip_address(host))
        except ValueError:
            raise UsageError(f"--listen {visible(text)}: {visible(host)} is not an IP"
                             " address (write 127.0.0.1:515, [::1]:515 or 515)") from None
    return host, int(port)


def parse_allow(text: str) -> Network:
    """``--allow NETWORK``: an address or a network (``192.0.2.0/24``, ``2001:db8::/32``)."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise UsageError(f"--allow {visible(text)}: not an IP address or network"
                         " (e.g. 192.0.2.0/24)") from None


#: Errors that mean "this family is not here" (a kernel without IPv6): the next one is tried.
_NO_FAMILY = (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT, errno.EADDRNOTAVAIL)

Plan = Sequence[tuple[int, str, bool]]


def listen_plan(host: str, ipv6: bool = socket.has_ipv6) -> Plan:
    """The (family, bind address, IPv6-only) to try in turn for ``host``: "" is every
    IPv6 and IPv4 address (one dual-stack socket), else IPv4 alone when IPv6 is missing."""
    if ":" in host:
        return [(socket.AF_INET6, host, True)]
    if host:
        return [(socket.AF_INET, host, False)]
    every: list[tuple[int, str, bool]] = [(socket.AF_INET6, "::", False)] if ipv6 else []
    return [*every, (socket.AF_INET, "0.0.0.0", False)]


def open_tcp(host: str, port: int, plan: Plan | None = None) -> socket.socket:
    """A listening TCP socket; "" listens on every IPv6 and IPv4 address, or on every IPv4
    one when the kernel has no IPv6 (``plan``: the families to try, listen_plan's)."""
    where = f"[{host}]:{port}" if ":" in host else f"{host or '*'}:{port}"
    plan = plan if plan is not None else listen_plan(host)
    for n, (family, address, v6only) in enumerate(plan):
        sock = None
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
            sock.bind((address, port))
            sock.listen(socket.SOMAXCONN)
        except OSError as exc:
            if sock is not None:
                sock.close()
            if exc.errno in _NO_FAMILY and n + 1 < len(plan):
                log.info("cannot listen on %s with address family %d (%s); trying the"
                         " next", where, family, exc.strerror)
                continue
            raise AccessError(f"cannot listen on {where}: {exc.strerror}"
                              + (" (ports below 1024 need root, or systemd socket"
                                 " activation)" if exc.errno == errno.EACCES else "")) from None
        return sock
    raise AccessError(f"cannot listen on {where}: no address family to listen with")


def inherited_sockets(environ: Mapping[str, str]) -> list[socket.socket]:
    """The listening sockets systemd passed (sd_listen_fds(3)), when they are ours."""
    if environ.get("LISTEN_PID") != str(os.getpid()):
        return []
    count = environ.get("LISTEN_FDS", "")
    if not count.isdigit():
        raise AccessError(f"LISTEN_FDS={visible(count)}: not a number of sockets")
    found = []
    for fd in range(LISTEN_FDS_START, LISTEN_FDS_START + int(count)):
        os.set_inheritable(fd, False)  # never into a filter or backend program
        sock = socket.socket(fileno=fd)
        if sock.type != socket.SOCK_STREAM:
            raise AccessError(f"systemd passed descriptor {fd}, not a stream socket;"
                              " use ListenStream= in lpfilter.socket")
        found.append(sock)
    return found


def sock_name(sock: socket.socket) -> str:
    """Where a listening socket listens, for the log."""
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return str(name) or "(unnamed Unix socket)"
    return f"[{name[0]}]:{name[1]}" if sock.family == socket.AF_INET6 else (
        f"{name[0]}:{name[1]}")


def peer_address(text: str) -> str:
    """A TCP peer's address as text; an IPv4 client of a dual-stack socket as IPv4."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def _klass(sock: socket.socket) -> str:
    """The class of a listening socket's connections (each has its own limit)."""
    return "local" if sock.family == socket.AF_UNIX else "tcp"


def allowed(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip.version == net.version and ip in net for net in networks)


class Listener:
    """Accepts on ``sockets`` and serves each connection in its own thread."""

    def __init__(self, sockets: Sequence[socket.socket], queues: Queues, *,
                 allow: Sequence[Network], max_connections: int,
                 idle_timeout: float, stop: threading.Event | None = None,
                 max_local: int = MAX_LOCAL, checks: SpoolChecks | None = None) -> None:
        self.sockets = list(sockets)
        self.queues = queues
        self.allow = list(allow)
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        #: Set: every connection ends within ``wire.TICK`` (the daemon's SIGTERM flag may
        #: be given, so that connections end while running jobs get their grace).
        self.stop = stop or threading.Event()
        self.slots = Slots({"tcp": max_connections, "local": max_local})
        self.peak = 0
        #: Called once the sockets are closed (the daemon removes its Unix socket's file).
        self.on_shutdown: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._thread: threading.Thread | None = None
        #: accept failed for want of descriptors: not before this moment (monotonic), or
        #: a connection's end, is accepting tried again; the wait doubles up to a bound.
        self._starved_until = 0.0
        self._backoff = ACCEPT_BACKOFF
        self._refusals = Throttle()
        self._stop_pipe = StopPipe()
        #: The served spools' set-up checks, made once per queue (and again on a change).
        self.checks = checks or SpoolChecks()
        for sock in self.sockets:
            sock.setblocking(False)

    @property
    def in_service(self) -> int:
        return self.slots.total

    def start(self) -> None:
        """Start accepting (in a thread of its own)."""
        self._thread = threading.Thread(target=self._accept_loop, name="lpd-listener",
                                        daemon=True)
        self._thread.start()

    def _wake(self) -> None:
        with self._lock:  # never into a descriptor closed by shutdown (and reused since)
            if self._wake_w >= 0:
                with contextlib.suppress(BlockingIOError, OSError):
                    os.write(self._wake_w, b"\0")

    def _accept_loop(self) -> None:
        """Wait for clients without a timeout (an idle server uses no CPU): a class of
        sockets whose limit is reached is not looked at (its clients wait in the kernel's
        backlog) while the other class is still served; out of descriptors, nothing is
        accepted until a connection ends or a bounded back-off has passed."""
        selector = selectors.DefaultSelector()
        selector.register(self._wake_r, selectors.EVENT_READ)
        watched: set[socket.socket] = set()
        try:
            while not self.stop.is_set():
                wait = self._starved_until - time.monotonic()
                for sock in self.sockets:
                    want = wait <= 0 and not self.slots.full(_klass(sock))
                    if want and sock not in watched:
                        selector.register(sock, selectors.EVENT_READ)
                        watched.add(sock)
                    elif not want and sock in watched:
                        selector.unregister(sock)
                        watched.discard(sock)
                for key, _ in selector.select(wait if wait > 0 else None):
                    if key.fd == self._wake_r:
                        with contextlib.suppress(BlockingIOError):
                            os.read(self._wake_r, 4096)
                    elif not self.stop.is_set() and key.fileobj in watched:
                        self._accept(key.fileobj)
        except Exception:  # noqa: BLE001 - said once; the spooler itself goes on
            log.exception("the print server stopped accepting connections (internal"
                          " error)")
        finally:
            selector.close()

    def _accept(self, listening: socket.socket) -> None:
        """One client from ``listening``: known (allow-list, credentials), given a slot of
        its class unless it holds its share already, and served in a thread of its own."""
        klass = _klass(listening)
        if self.slots.full(klass):
            return
        try:
            conn, addr = listening.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as exc:  # out of descriptors: back off, or until a connection ends
            log.error("cannot accept a connection on %s: %s (trying again within %g s)",
                      sock_name(listening), exc.strerror, self._backoff)
            self._starved_until = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, MAX_ACCEPT_BACKOFF)
            return
        self._backoff = ACCEPT_BACKOFF
        conn.setblocking(True)
        peer = self._peer(conn, addr)
        if peer is None:
            conn.close()
            return
        client: Client = ("uid", peer.uid) if peer.local else ("address", peer.address)
        if not self.slots.take(klass, client):
            self._refuse(conn, peer, "it holds its share of the connections already",
                         BUSY if klass == "tcp" else lpdlocal.error_reply(
                             "refused", "you hold your share of the print server's"
                             " connections already; try again later"))
            return
        with self._lock:
            self.peak = max(self.peak, self.slots.total)
        thread = threading.Thread(target=self._serve, args=(conn, peer, klass, client),
                                  name=f"lpd {peer}", daemon=True)
        with self._lock:
            self._threads.add(thread)
        try:
            thread.start()
        except RuntimeError as exc:  # no thread can be made now
            log.error("%s: cannot serve the connection: %s", peer, exc)
            self._done(conn, thread, klass, client)

    def _refuse(self, conn: socket.socket, peer: Peer | str, why: str,
                answer: bytes) -> None:
        """Close a client at once with ``answer``; logged at most once a minute per
        client (with the count of those not logged)."""
        key = peer.uid if isinstance(peer, Peer) and peer.local else str(
            peer.address if isinstance(peer, Peer) else peer)
        skipped = self._refusals.passed_over(key)
        if skipped is not None:
            more = f" ({skipped} more refused since the last line)" if skipped else ""
            log.warning("refused a connection from %s: %s%s", visible(str(peer)), why, more)
        if answer:
            with contextlib.suppress(OSError):
                conn.send(answer, socket.MSG_DONTWAIT)
                conn.recv(MAX_DRAIN, socket.MSG_DONTWAIT)  # a request already sent, read:
        conn.close()  # else the close resets the connection before the answer is read

    def _peer(self, conn: socket.socket, addr: object) -> Peer | None:
        """Who the client is; None (said in the log) for one not to be served."""
        if conn.family == socket.AF_UNIX:
            from lpfilter.server.local import local_peer
            try:
                return local_peer(conn)
            except OSError as exc:
                log.warning("a local client: no peer credentials (%s); closed",
                            exc.strerror)
                return None
        host, port = addr[0], addr[1]  # type: ignore[index]
        address = peer_address(str(host))
        if not allowed(address, self.allow):
            self._refuse(conn, address, "not on the allow-list (--allow)", REFUSAL)
            return None
        from lpfilter.server.loopuid import loopback_peer
        return loopback_peer(conn, address, int(port))

    def _serve(self, conn: socket.socket, peer: Peer, klass: str, client: Client) -> None:
        """A connection's thread: whatever happens, its slot is given back (``_done``)."""
        try:
            serve_connection(conn, peer, self.queues, idle_timeout=self.idle_timeout,
                             stop=self.stop, stop_pipe=self._stop_pipe, checks=self.checks)
        except Exception:  # noqa: BLE001 - one connection's bug must not stop the server
            log.exception("%s: internal error while serving the connection", peer)
        finally:
            self._done(conn, threading.current_thread(), klass, client)

    def _done(self, conn: socket.socket, thread: threading.Thread, klass: str,
              client: Client) -> None:
        """A connection ended: its slot is free, so the accept loop looks again."""
        conn.close()
        self.slots.give_back(klass, client)
        with self._lock:
            self._threads.discard(thread)
            self._starved_until = 0.0  # a descriptor is free again
        self._wake()

    def stop_connections(self) -> None:
        """Stop accepting and end every connection now (their waits wake at once); the
        daemon calls it as it begins to stop, before its running jobs' grace."""
        self.stop.set()
        self._stop_pipe.fire()
        self._wake()

    def shutdown(self) -> None:
        """Stop accepting, end every connection (bounded), close the sockets."""
        self.stop_connections()
        if self._thread is not None:
            self._thread.join(SHUTDOWN_WAIT)
        deadline = time.monotonic() + SHUTDOWN_WAIT
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        left = sum(1 for thread in threads if thread.is_alive())
        if left:
            log.warning("%d print server connections did not end in %g s", left,
                        SHUTDOWN_WAIT)
        else:
            self._stop_pipe.close()  # no Wire waits on it any more
        for sock in self.sockets:
            sock.close()
        for call in self.on_shutdown:
            call()
        with self._lock:
            os.close(self._wake_w)
            self._wake_w = -1
        if self._thread is None or not self._thread.is_alive():
            os.close(self._wake_r)
