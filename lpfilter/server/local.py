"""The print server's Unix socket: how local users who may not write a spool reach it.

The socket lives in the daemon's run directory (``/run/lpfilter`` for root). Whoever
connects is known by the kernel's peer credentials (SO_PEERCRED), never by a name the
client sends. Besides the LPD requests (served by ``connection``), a local user may send
lpfilter's own request (``protocols.lpdlocal``): hold, release, requeue and cancel jobs,
and the queue's full status, with the rights of ``spool.jobctl``: root and the spool's
owner act on every job, everyone else on their own.
"""
from __future__ import annotations

import contextlib
import grp
import os
import socket
import stat
import struct
from collections.abc import Mapping

from lpfilter import logs
from lpfilter.errors import AccessError, ConfigError, LpfilterError, NoSuchPrinter, SpoolFull
from lpfilter.job import user_name
from lpfilter.protocols import lpdlocal
from lpfilter.protocols.lpd import LpdProtocolError
from lpfilter.server.peer import Peer, Queues
from lpfilter.server.wire import ClientError, Wire
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lpfilter.printcap import Entry
    from lpfilter.spool.queueinfo import QueueData
    from lpfilter.spool.store import SpoolStore

log = logs.getLogger(__name__)

SOCKET_NAME = "lpfilter.sock"
#: Connections the kernel queues for the daemon before it accepts them.
BACKLOG = 64
_UCRED = struct.Struct("3i")  # pid, uid, gid
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH
_SEARCH = stat.S_IXGRP | stat.S_IXOTH


def server_socket_path(environ: Mapping[str, str], lock_dir: str) -> str:
    """Where the daemon listens: ``$LPFILTER_SOCKET``, else ``lpfilter.sock`` in its run
    (lock) directory, which is ``lpdlocal.DEFAULT_SOCKET`` for root."""
    return environ.get("LPFILTER_SOCKET") or os.path.join(lock_dir, SOCKET_NAME)


def _safe_parent(path: str) -> None:
    """The socket's directory: a real directory of this user or root that nobody else may
    write (else someone could swap the socket); made searchable by others, so that local
    users reach the socket (the lock directory is made 0700)."""
    parent = os.path.dirname(os.path.abspath(path))
    try:
        info = os.lstat(parent)
    except OSError as exc:
        raise AccessError(f"socket {path}: its directory {parent} cannot be used:"
                          f" {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise AccessError(f"socket {path}: {parent} is not a directory (a symbolic link is"
                          " not followed); name another with LPFILTER_SOCKET")
    if info.st_uid not in (0, os.geteuid()) or info.st_mode & _OTHERS_WRITE:
        raise AccessError(f"socket {path}: its directory {parent} may be written by others"
                          f" (owner uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):04o});"
                          " use a directory only the daemon's user may write")
    if info.st_uid == os.geteuid() and info.st_mode & _SEARCH != _SEARCH:
        os.chmod(parent, stat.S_IMODE(info.st_mode) | _SEARCH)


def _clear_stale(path: str) -> None:
    """A socket left by a daemon that died is removed; a live daemon's is not, and
    anything that is not a socket is refused (never followed, never removed)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise AccessError(f"socket {path}: something that is not a socket is there; lpfilter"
                          " leaves it alone: remove it, or name another path with"
                          " LPFILTER_SOCKET")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        log.info("removed the socket %s a daemon that is gone left behind", path)
        return
    except OSError as exc:
        raise AccessError(f"socket {path}: cannot check it: {exc.strerror}") from None
    finally:
        probe.close()
    raise AccessError(f"socket {path}: another daemon listens on it already; stop it, or"
                      " give this one another path with LPFILTER_SOCKET")


def open_local_socket(path: str, *, mode: int = 0o666,
                      group: str | None = None) -> socket.socket:
    """The daemon's listening Unix socket at ``path``, ``mode`` and (when given) group
    ``group``: 0666 lets every local user print, as the spool's rights decide the rest."""
    gid = -1
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise ConfigError(f"socket {path}: no group named '{visible(group)}'") from None
    _safe_parent(path)
    _clear_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old = os.umask(0o177)  # no moment with wider rights than the socket's own
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        os.chown(path, -1, gid)  # the directory is ours alone: no one swapped the file
        os.chmod(path, mode)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise AccessError(f"socket {path}: cannot listen there: {exc.strerror}") from None
    return sock


def socket_file(path: str) -> tuple[int, int, int]:
    """What identifies the socket file just bound: device, inode and change time (a file
    made after ours was removed may get its inode number again)."""
    info = os.lstat(path)
    return info.st_dev, info.st_ino, info.st_ctime_ns


def remove_socket_file(path: str, identity: tuple[int, int, int]) -> None:
    """At shutdown: the socket file goes, unless another daemon has put its own there since
    (then it is not ours to remove). Never raises: the next start replaces a stale one."""
    try:
        info = os.lstat(path)
        if stat.S_ISSOCK(info.st_mode) and (info.st_dev, info.st_ino,
                                            info.st_ctime_ns) == identity:
            os.unlink(path)
    except OSError as exc:
        if not isinstance(exc, FileNotFoundError):
            log.warning("socket %s: cannot remove it at shutdown: %s", path, exc.strerror)


def local_peer(sock: socket.socket) -> Peer:
    """The user of an accepted Unix connection, as the kernel reports it."""
    _pid, uid, _gid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                    _UCRED.size))
    return Peer(address="", uid=uid, user=user_name(uid))


def serve_local_request(wire: Wire, line: bytes, peer: Peer, queues: Queues) -> None:
    """Answer one local request (``protocols.lpdlocal``); ClientError for a client's fault
    (after the answer saying what it was), a refused request from a TCP peer included."""
    if not peer.local:
        wire.send(lpdlocal.error_reply("refused", "lpfilter's local requests are served"
                                                  " only on the Unix socket"))
        raise ClientError(f"a request that is not LPD (code 0x{line[:1].hex()})")
    try:
        request = lpdlocal.parse_control(line)
    except LpdProtocolError as exc:
        wire.send(lpdlocal.error_reply("usage", str(exc)))
        raise ClientError(str(exc)) from None  # (the connection names the peer)
    wire.send(lpdlocal.bounded_reply(_answer(request, peer, queues)))


def _keep_lines_private(status: QueueData, user: str) -> None:
    """Another user's jobs without their control lines (``-Z`` options, an accounting
    name: a filter's password, a billing code): everyone sees every queue's jobs, their
    names and states, as with LPRng's lpq, but not what only their filters are for."""
    for job in status["jobs"]:
        extra = job.get("extra")
        if job.get("user") != user and isinstance(extra, dict) and "control" in extra:
            job["extra"] = {k: v for k, v in extra.items() if k != "control"}


def _answer(request: lpdlocal.ControlRequest, peer: Peer, queues: Queues) -> dict[str, Any]:
    """The answer to a well-formed request: the result, or the error as the client shows it."""
    try:
        found = queues.find(request.queue)
        if found is None:
            raise NoSuchPrinter(f"queue {visible(request.queue)}: the print server serves no"
                                " such queue", queue=request.queue)
        entry, store = found
        try:
            if request.action == "status":
                from lpfilter.spool.queueinfo import queue_status
                status = queue_status(entry, store=store)
                if peer.uid not in (0, store.owner):
                    _keep_lines_private(status, str(peer.user))
                return {"ok": True, "queue": status}
            if request.action == "find":  # (the jobs a print sent: no other is copied)
                wanted = set(request.origins)
                jobs = store.jobs(where=lambda job: job.origin in wanted)
                return {"ok": True, "jobs": [job.to_dict() for job in jobs]}
            if request.action == "reread":
                from lpfilter.server.lpcserver import reread
                return {"ok": True, "pid": reread(peer, store)}
            results = _act(request, peer, entry, store)
        finally:
            store.close()
        if request.action in ("release", "requeue"):
            queues.wake(entry.name)  # a job queued again prints now, not at the next tick
        return {"ok": True, "results": results}
    except LpfilterError as exc:
        log.info("%s: %s %s: %s", peer, request.action, visible(request.queue),
                 visible(str(exc)))
        return _error(exc)
    except OSError as exc:  # the spool under the server's feet: said, and answered
        log.error("%s: %s %s: %s", peer, request.action, visible(request.queue),
                  visible(str(exc)))
        return {"ok": False, "kind": "refused",
                "error": f"queue {visible(request.queue)}: the print server could not"
                         f" {request.action}: {visible(exc.strerror or str(exc))}"}


def _act(request: lpdlocal.ControlRequest, peer: Peer, entry: Entry,
         store: SpoolStore) -> list[dict[str, Any]]:
    """The job change, with the peer's rights: root and the spool's owner every job."""
    from lpfilter.spool.jobctl import Selection, act
    from lpfilter.spool.records import QueueRecords
    store.ensure("change")
    privileged = peer.uid in (0, store.owner)
    selection = Selection(set(request.named), set(request.anywhere), request.every,
                          first=request.first)
    records = QueueRecords(entry)  # its log stays open once written: closed here
    try:
        outcomes = act(store, records, selection, request.action, peer.user or "",
                       privileged)
    finally:
        records.close()
    for outcome in outcomes:
        if outcome.kind == "changed":
            log.info("%s: %s %s-%s: %s", peer, request.action, visible(entry.name),
                     outcome.job, outcome.said)
    return [o.to_dict() for o in outcomes]


def _error(exc: LpfilterError) -> dict[str, Any]:
    """An error as the answer carries it: its family and its one line."""
    if isinstance(exc, SpoolFull):
        return {"ok": False, "kind": "spool_full", "error": str(exc),
                "directory": exc.directory, "errno": exc.errno}
    kinds = ((NoSuchPrinter, "no_such_printer"), (ConfigError, "config"),
             (AccessError, "access"))
    kind = next((k for cls, k in kinds if isinstance(exc, cls)), "refused")
    return {"ok": False, "kind": kind, "error": str(exc)}
