"""LPRng's lpc over TCP (``\\x06QUEUE USER ACTION [ARG ...]``, ``protocols.lpdlpc``): the
print server's answer, text as LPRng's lpd writes it (``Printer: q@host``, then
``q@host: stopped``), for LPRng's ``lpc`` and ``lpfilter lpc -P q@host`` alike.

Rights, as the print server's: a claimed user name counts for nothing.
* Root on this host (a TCP client on loopback or another address of this host whose socket
  the kernel says is root's, ``loopuid``) and the local owner of the queue's spool may do
  everything: stop, start, disable, enable, down, up, holdall, noholdall, redirect, move,
  topq, reread, hold, release, status. reread also the daemon's own user (the rule of the
  local request, ``reread``).
* Another local user (the kernel's uid of a client on this host) may hold and release
  their own jobs, and ask for status.
* A remote host may hold and release only the jobs its claimed user sent from that
  address (the rule of remove), and ask for status. Everything else is refused with one
  line saying so; LPRng's lpc prints it and exits 0, as it does for every answer.
"""
from __future__ import annotations

import os
import signal

from lpfilter import logs
from lpfilter.errors import AccessError, LpfilterError
from lpfilter.protocols.lpd import LpdProtocolError
from lpfilter.protocols.lpdlpc import LpcRequest, parse_lpc
from lpfilter.server.status import server_name
from lpfilter.server.wire import ClientError, Wire
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.printcap import Entry
    from lpfilter.server.peer import Peer, Queues
    from lpfilter.spool.jobctl import Outcome, Selection
    from lpfilter.spool.store import SpoolStore

log = logs.getLogger(__name__)

QUEUE_WORDS = ("stop", "start", "disable", "enable", "down", "up", "holdall", "noholdall",
               "abort", "kill")
#: Words for which the (first) argument is the queue and the rest are jobs.
JOB_WORDS = ("hold", "release", "topq", "move", "redirect")


def reread(peer: Peer, store: SpoolStore) -> int:
    """The daemon rereads the printcap (SIGHUP to itself: its handler only sets a flag):
    for root, the daemon's own user and the owner of the queue's spool. Its pid."""
    if not peer.local or peer.uid not in (0, os.geteuid(), store.owner):
        raise AccessError(f"reread: only root, the daemon's user and the owner of a spool"
                          f" it serves may ask it ({peer} may not)")
    log.info("%s: reread: rereading the printcap", peer)
    os.kill(os.getpid(), signal.SIGHUP)
    return os.getpid()


def _root_here(wire: Wire, peer: Peer) -> bool:
    """Is the client root on this host (its TCP socket root's, as the kernel says)?"""
    from lpfilter.server.loopuid import socket_owner
    if peer.local or not peer.address:
        return peer.uid == 0
    return not peer.anonymous and socket_owner(wire.sock, peer.address, peer.port) == 0


def serve_lpc(wire: Wire, line: bytes, peer: Peer, queues: Queues) -> None:
    """Answer one lpc request from a TCP client; ClientError for a bad line (after an
    answer saying so)."""
    try:
        request = parse_lpc(line)
    except LpdProtocolError as exc:
        wire.send(f"bad control command: {exc}\n".encode())
        raise ClientError(str(exc)) from None  # (the connection names the peer)
    answer = _Lpc(request, peer, queues, _root_here(wire, peer)).answer()
    wire.send(answer.encode("utf-8", "surrogateescape"))


class _Lpc:
    """One request's answer."""

    def __init__(self, request: LpcRequest, peer: Peer, queues: Queues, root: bool) -> None:
        self.request, self.peer, self.queues, self.root = request, peer, queues, root

    def answer(self) -> str:
        request = self.request
        action = request.action
        if action in QUEUE_WORDS or action == "status":
            names = list(request.args) or [request.queue]
            if names == ["all"]:
                names = self.queues.names()
            return "".join(self.one(name, ()) for name in names)
        if action in JOB_WORDS:
            name, *rest = request.args or (request.queue,)
            return self.one(name, tuple(rest))
        if action == "reread":
            return self.one(request.queue, ())
        return (f"lpc: {visible(action[:40])}: not a command lpfilter's print server"
                f" takes (it takes {', '.join((*QUEUE_WORDS, *JOB_WORDS, 'reread', 'status'))})\n")

    def one(self, name: str, args: tuple[str, ...]) -> str:
        """The answer for one queue: its header, then what was done or why not."""
        found = self.queues.find(name)
        if found is None:
            return (f"Printer: {visible(name)}\n{visible(name)}: no queue"
                    f" '{visible(name)}' is served here\n")
        entry, store = found
        head = f"{visible(entry.name)}@{server_name(entry)}"
        try:
            return f"Printer: {head}\n" + self.act(entry, store, args, head)
        except LpfilterError as exc:
            log.info("%s: lpc %s %s: %s", self.peer, self.request.action,
                     visible(entry.name), visible(str(exc)))
            return f"Printer: {head}\n{head}: {visible(str(exc))}\n"
        finally:
            store.close()

    def privileged(self, store: SpoolStore) -> bool:
        return self.root or (self.peer.local and self.peer.uid == store.owner)

    def act(self, entry: Entry, store: SpoolStore, args: tuple[str, ...], head: str) -> str:
        from lpfilter.spool import lpcops
        action = self.request.action
        if action == "status":
            return self.status(entry, store, head)
        if action in ("hold", "release"):
            return self.jobs(entry, store, args, head)
        if action == "reread":  # the rule of the local request, the same function
            pid = reread(self.peer, store)
            return f"lpfilter watch pid {pid} on {server_name(entry)}, sending SIGHUP\n"
        if not self.privileged(store):
            raise AccessError(f"permission denied: lpc {action} is for root on the server"
                              " and the owner of the queue's spool")
        if action in QUEUE_WORDS:
            lpcops.change(store, action)
            log.info("%s: lpc %s %s", self.peer, action, visible(entry.name))
            self.queues.wake(entry.name)
            return f"{head}: {lpcops.SAID[action]}\n"
        return self.reorder(entry, store, args, head)

    def status(self, entry: Entry, store: SpoolStore, head: str) -> str:
        from lpfilter.spool.control import read_control, status_row
        from lpfilter.spool.lease import holder_of
        control = read_control(store.state, store.owner)
        jobs = len(store.jobs(finished=False))
        holder = holder_of(store.state)
        return status_row(head, control, jobs, holder.pid if holder else None) + "\n"

    def selection(self, store: SpoolStore,
                  words: tuple[str, ...]) -> tuple[Selection, list[Outcome]]:
        """The jobs named (numbers, user names, all) this client may act on, and the
        outcomes of those named it may not."""
        from lpfilter.spool import lpcops
        from lpfilter.spool.jobctl import Outcome, Selection
        numbers = {int(w) for w in words if w.isascii() and w.isdigit()}
        users = {w for w in words if not (w.isascii() and w.isdigit()) and w != "all"}
        chosen = lpcops.selection(store, numbers, users, "all" in words)
        if self.privileged(store):
            return chosen, []
        user = self.peer.user if self.peer.local else self.request.user
        jobs = store.jobs()
        own = {int(j.id) for j in jobs if j.user == user
               and (self.peer.local or j.peer == self.peer.address)}
        others = {int(j.id) for j in jobs} - own
        asked = chosen.named | chosen.anywhere
        refused = [Outcome(n, "not_yours", f"{n:06d}") for n in sorted(asked & others)]
        return Selection(named=chosen.named - others, anywhere=chosen.anywhere & own
                         | (own if chosen.every else set())), refused

    def jobs(self, entry: Entry, store: SpoolStore, args: tuple[str, ...], head: str) -> str:
        from lpfilter.spool.jobctl import act
        from lpfilter.spool.records import QueueRecords
        chosen, refused = self.selection(store, args)
        records = QueueRecords(entry)
        try:
            outcomes = act(store, records, chosen, self.request.action, "", True)
        finally:
            records.close()
        if self.request.action == "release":
            self.queues.wake(entry.name)
        return _outcomes(entry, outcomes + refused, head)

    def reorder(self, entry: Entry, store: SpoolStore, args: tuple[str, ...], head: str) -> str:
        """topq, move, redirect (the caller checked the rights)."""
        from lpfilter.spool import lpcops
        from lpfilter.spool.control import read_control
        from lpfilter.spool.records import QueueRecords
        action = self.request.action
        if action == "topq":
            chosen, _ = self.selection(store, args)
            return _outcomes(entry, lpcops.topq(store, chosen, "", True), head)
        if not args:
            raise AccessError(f"lpc {action}: name the target queue")
        target_name = args[-1]
        if action == "redirect" and target_name == "off":
            lpcops.set_redirect(store, None)
            return f"forwarding off\n{head}: redirected\n"
        found = self.queues.find(target_name)
        if found is None or found[0].name == entry.name:
            raise AccessError(f"lpc {action}: no other queue '{visible(target_name)}' is"
                              " served here")
        target, keep = found[1], found[0].number("minfree") * 1024
        if not self.root and target.owner != store.owner:  # the worker Gate's rule
            target.close()
            raise AccessError(f"permission denied: lpc {action}: {visible(target.queue)}'s"
                              " spool is another owner's; only root on the server may move"
                              " jobs there")
        if action == "redirect" and read_control(target.state, target.owner).redirect:
            target.close()
            raise AccessError(f"lpc redirect: {visible(target.queue)} is redirected itself")
        records = QueueRecords(entry)
        try:
            if action == "redirect":
                lpcops.set_redirect(store, target)
                moved = lpcops.move_all(store, records, target, keep=keep)
                text = f"forwarding to '{visible(target.queue)}'\n"
                text += "".join(f"{j.extra['moved_from']}: moved to {j.queue}-{j.id}\n"
                                for j in moved)
                return text + f"{head}: redirected\n"
            chosen, _ = self.selection(store, args[:-1])
            return _outcomes(entry, lpcops.move(store, records, chosen, target, "", True,
                                                keep=keep), head)
        finally:
            records.close()
            target.close()
            self.queues.wake(target_name)


def _outcomes(entry: Entry, outcomes: list[Outcome], head: str) -> str:
    """One line per job, as hold and release say it, and LPRng's closing line."""
    name = visible(entry.name)
    lines = []
    for outcome in outcomes:
        if outcome.kind == "changed":
            lines.append(f"{name}-{outcome.job}: {outcome.said}")
        elif outcome.kind == "not_yours":
            lines.append(f"{name}-{outcome.job}: not your job; not changed")
        elif outcome.kind == "missing":
            lines.append(f"{name}-{outcome.number:06d}: no such job")
    return "".join(f"{line}\n" for line in lines) + f"{head}: updated\n"
