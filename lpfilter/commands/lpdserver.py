"""``watch``'s print server: its options, its sockets, and the queues it serves, which are
the watcher's own (a received job is printed by the same worker as any other).

The server layer knows the daemon only through ``peer.Queues``; ``ServedQueues`` is that,
over the watcher's served queues. ``find`` gives a connection the queue's worker's own
SpoolStore (``shared``: its ``close`` keeps the journal open), so the daemon opens and
replays each queue's journal once, not once per connection (a new store replays the
whole journal: ~100 ms at ~2000 jobs). Its threads share it safely: the journal's
appends are under a re-entrant thread lock as well as the flock (``Journal.locked``).
The spool's set-up checks run once per queue until its folders change (``SpoolChecks``,
the listener's).
"""
from __future__ import annotations

import functools
import math

from lpfilter import logs

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    import socket
    from collections.abc import Callable

    from lpfilter.commands.environment import Context
    from lpfilter.printcap import Entry
    from lpfilter.server.listener import Listener
    from lpfilter.server.spoolcheck import SpoolChecks
    from lpfilter.spool.store import SpoolStore
    from lpfilter.spool.serve import Served
    from lpfilter.spool.watcher import Watcher

log = logs.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lpfilter.server import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS
    parser.add_argument("--listen", action="append", default=[], metavar="[ADDRESS:]PORT",
                        help="answer LPD requests on this TCP port (repeatable; IPv6 as"
                             " [::1]:515; port 0 picks a free one)")
    parser.add_argument("--allow", action="append", default=[], metavar="NETWORK",
                        help="serve TCP clients from this network (repeatable; default:"
                             " loopback only, 127.0.0.0/8 and ::1)")
    parser.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS,
                        metavar="N", help="serve at most N connections at a time (default"
                                          f" {DEFAULT_MAX_CONNECTIONS}); others wait")
    parser.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT,
                        metavar="SECONDS", help="cut a client silent this long (default"
                                                f" {DEFAULT_IDLE_TIMEOUT:g})")
    parser.add_argument("--socket-mode", default="0666", metavar="MODE",
                        help="the local Unix socket's mode, octal (default 0666: every"
                             " local user may print; their rights are checked per request)")
    parser.add_argument("--socket-group", metavar="GROUP",
                        help="the local Unix socket's group (with --socket-mode 0660: only"
                             " that group's users reach the daemon)")


class ServedQueues:
    """``peer.Queues`` over a watcher's served queues (names and aliases)."""

    def __init__(self, watcher: Watcher, checks: SpoolChecks | None = None) -> None:
        from lpfilter.server.spoolcheck import SpoolChecks
        self.watcher = watcher
        #: The served spools' set-up checks (the listener's: one for the daemon).
        self.checks = checks or SpoolChecks()

    def _served(self, name: str) -> Served | None:
        for served in list(self.watcher.served.values()):
            if name == served.entry.name or name in served.entry.names:
                return served
        return None

    def find(self, name: str) -> tuple[Entry, SpoolStore] | None:
        served = self._served(name)
        if served is None:
            return None
        store = served.worker.store  # shared: the connection's close() leaves it open
        self.checks.ensure(store, "watch")
        return served.entry, store

    def wake(self, name: str) -> None:
        served = self._served(name)
        if served is not None:
            served.worker.wake()

    def names(self) -> list[str]:
        return list(self.watcher.served)


def check_arguments(ctx: Context) -> None:
    """Usage errors first, before any socket is opened."""
    from lpfilter.errors import UsageError
    args = ctx.args
    if args.once and (args.listen or args.allow):
        raise UsageError("--once processes the spool and exits; --listen and --allow are"
                         " for the daemon (watch without --once)")
    if args.max_connections < 1:
        raise UsageError("--max-connections takes a number, 1 or more")
    if not 0 < args.idle_timeout < math.inf:
        raise UsageError("--idle-timeout takes a number of seconds, more than 0")
    socket_mode(args.socket_mode)
    if args.listen or args.allow:  # (the listener's imports: not a cron pass's)
        from lpfilter.server.listener import parse_allow, parse_listen
        for text in args.listen:
            parse_listen(text)
        for text in args.allow:
            parse_allow(text)


def open_server(ctx: Context, watcher: Watcher) -> Listener | None:
    """The listener over every socket the daemon serves (None with --once): --listen,
    systemd's, and the local Unix socket. Each is named in the log."""
    args = ctx.args
    if args.once:
        return None
    from lpfilter.server.listener import (DEFAULT_ALLOW, Listener, inherited_sockets,
                                          open_tcp, parse_allow, parse_listen)
    sockets = inherited_sockets(ctx.environ)
    try:
        for text in args.listen:
            sockets.append(open_tcp(*parse_listen(text)))
        local = _local_socket(ctx)
        if local is not None:
            sockets.append(local[0])
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    allow = [parse_allow(text) for text in args.allow or DEFAULT_ALLOW]
    queues = ServedQueues(watcher)
    listener = Listener(sockets, queues, allow=allow, max_connections=args.max_connections,
                        idle_timeout=args.idle_timeout, stop=watcher.stop,
                        checks=queues.checks)
    if local is not None:
        listener.on_shutdown.append(local[1])
    return listener


def socket_mode(text: str) -> int:
    """``--socket-mode``: octal permission bits, 0-0777."""
    from lpfilter.errors import UsageError
    from lpfilter.text import visible
    if not text.isascii() or not text.isdigit() or set(text) - set("01234567") or (
            int(text, 8) > 0o777):
        raise UsageError(f"--socket-mode {visible(text)}: octal permission bits, e.g. 0660")
    return int(text, 8)


def _local_socket(ctx: Context) -> tuple[socket.socket, Callable[[], None]] | None:
    """The Unix socket for local users, and what removes its file at shutdown. One that
    cannot be opened (another watcher of this host has it: watchers may share out the
    queues) is a warning, not the end of a daemon that may serve its queues without it; a
    bad --socket-group is an error."""
    from lpfilter.commands.environment import lock_dir
    from lpfilter.errors import AccessError
    from lpfilter.server.local import (open_local_socket, remove_socket_file,
                                       server_socket_path, socket_file)
    path = server_socket_path(ctx.environ, lock_dir(ctx.environ))
    try:
        sock = open_local_socket(path, mode=socket_mode(ctx.args.socket_mode),
                                 group=ctx.args.socket_group)
    except AccessError as exc:
        log.warning("%s; this watcher answers no local requests", exc)
        return None
    identity = socket_file(path)
    return sock, functools.partial(remove_socket_file, path, identity)


def where(server: Listener | None) -> str:
    """For the start line: where the print server listens ("" without one)."""
    if server is None or not server.sockets:
        return ""
    from lpfilter.server.listener import sock_name
    from lpfilter.text import visible
    return "; print server on " + ", ".join(visible(sock_name(s)) for s in server.sockets)
