"""``lpfilter lpc reread``: the daemon that serves the queues reads the printcap again.

The daemon is asked over its Unix socket (the local request ``reread``; it decides who may
ask, ``server.lpcserver.reread``, and signals itself). Only when no daemon answers there
(another ``LPFILTER_SOCKET``, or one that does not serve the queue asked) is a daemon
found by the queues' leases sent SIGHUP; a lease is a file of the spool's owner, who may
write any pid into it, so the process it names is signalled only when it is an
``lpfilter watch`` (its program and arguments, as the kernel shows them) of root or of
that owner: never another process of root's. It is pinned by a pidfd before that check
and signalled through it, so a pid that is reused after the check is never signalled.
"""
from __future__ import annotations

import functools
import os
import signal

from lpfilter.commands.environment import split_global_options
from lpfilter.locks import process_alive
from lpfilter.status import ExitStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from lpfilter.commands.environment import Context
    from lpfilter.locks import Holder


def run(ctx: Context) -> ExitStatus:
    """Ask the daemon; failing that, signal a leased ``lpfilter watch`` (see above)."""
    from lpfilter.commands import daemonclient
    from lpfilter.errors import AccessError, NoSuchPrinter
    from lpfilter.job import user_name
    from lpfilter.protocols import lpdlocal
    request = lpdlocal.control_request(ctx.queue(ctx.args.printer), user_name(os.getuid()),
                                       "reread")
    why = AccessError("reread: the print server rereads the printcap when asked")
    try:
        pid = daemonclient.ask(ctx.environ, request, why).get("pid")
    except (daemonclient.NoDaemon, NoSuchPrinter):
        pid = _signal_leased(ctx)
        if pid is None:
            raise
    print(f"lpfilter watch pid {pid}: sending SIGHUP (it rereads the printcap)",
          file=ctx.stdout)
    return ExitStatus.OK


def _signal_leased(ctx: Context) -> int | None:
    """SIGHUP to the first ``lpfilter watch`` holding a queue's lease that may be sent it;
    its pid (None: none)."""
    from lpfilter.spool.lease import holder_of
    from lpfilter.spool.store import SpoolStore
    printcap = ctx.printcap()
    for name in printcap.queue_names():
        store = SpoolStore(printcap.lookup(name).string("sd") or "", name)
        try:
            holder = holder_of(store.state)
            owner = store.owner if holder is not None else -1
        except OSError:
            continue
        if holder is None or holder.purpose != "watch":
            continue
        if hup_if(holder.pid, functools.partial(is_watch, holder, owner)):
            return holder.pid
    return None


def hup_if(pid: int, verify: Callable[[], bool]) -> bool:
    """SIGHUP to the process ``pid`` names, when ``verify()`` says it is the one meant.
    The process is pinned by a pidfd before the check and signalled through it: if it
    ends after the check and its pid goes to another process, the kernel refuses the
    signal (ProcessLookupError) instead of sending it to the newcomer. False when the
    process is gone at any step, is not the one meant, or is not ours to signal (and on
    a kernel without pidfds, which has no signal that cannot miss its process)."""
    if pid <= 0:
        return False  # a lease may say anything: 0 and -1 are groups to kill(2)
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        if not verify():
            return False
        signal.pidfd_send_signal(fd, signal.SIGHUP)
    except (PermissionError, ProcessLookupError):
        return False
    finally:
        os.close(fd)
    return True


def is_watch(holder: Holder, owner: int) -> bool:
    """Is the process a lease names that very ``lpfilter watch`` (the same start time, by
    the lock module's one rule: ``locks.process_alive``), run by root or by the spool's
    ``owner``?"""
    import psutil
    if not process_alive(holder.pid, holder.start):
        return False
    try:
        proc = psutil.Process(holder.pid)
        if proc.uids().real not in (0, owner):
            return False
        argv, exe = proc.cmdline(), os.path.basename(proc.exe())
    except (psutil.Error, OSError):
        return False
    if not exe.startswith("python"):  # the installed lpfilter is a Python script
        return False
    names = [os.path.basename(a) for a in argv]
    for at in range(1, min(len(argv), 5)):  # python [-I -S ...] {/path/lpfilter | -m lpfilter}
        if names[at] == "lpfilter" and (at == 1 or argv[at - 1] == "-m"):
            words = argv[at + 1:]  # [global options] watch ...: the command, not any word
            command = split_global_options(words)[2]
            return command < len(words) and words[command] == "watch"
    return False
