"""One attempt at a job through its filters: the worker's hook (``send_job``).

A socket or device queue without an OF filter lends its descriptor to the data filter,
which writes to the printer itself as under LPRng (``SendRequest.direct``,
``filters.direct``, ``backends.lend``); the backend falls back to the pipe where it
cannot count such writes (a character device). Otherwise the job's body is produced by
``feed.Feed`` into a pipe and the backend streams it
(``SendRequest.source``): socket, device, ``lp=|`` program and FTP take a stream of
unknown size, and the settings' framing (``ld``, ``tr``, form feeds) is left to the
producer, which writes it in LPRng's order around banners and copies; the backend's own
wrapping (PJL, ``init``, ``^D``) stays around the whole. LPD needs each file's size first:
the body is streamed to a temporary file in the spool directory (unlinked, O_TMPFILE), then
sent as one data file of ``bq_format`` with one copy, as LPRng's ``lpd_bounce`` does.

Filters' stderr lines are queued by their reader threads and said as the job's status
from the sending thread (at interruption checks, a few a second at most: ``run.Messages``),
so the reporter sees one thread.
Whatever ends the attempt, every filter still running is killed and every descriptor
closed before this returns; the worker then records the job's state as for any send.
"""
from __future__ import annotations

import os
import time

from lpfilter.backends.pipe import job_variables
from lpfilter.backends.settings import NO_FRAMING
from lpfilter.backends.stream import Pump
from lpfilter.errors import NO_ROOM, SpoolFull
from lpfilter.filters.command import build_command, facts_for, filter_environment
from lpfilter.filters.direct import DirectJob
from lpfilter.filters.feed import Feed
from lpfilter.filters.plan import plan_for, produces

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lpfilter.backends import Backend, Reporter, SendRequest, SendResult
    from lpfilter.errors import Interruption
    from lpfilter.children.run import Messages
    from lpfilter.printcap import Entry


#: Backends that hold the printer as one descriptor and can lend it to a data filter as
#: its fd 1 (``backends.lend``); an OF filter's job keeps the pipe.
LENDING = frozenset({"socket", "device"})


class Relay:
    """The worker's reporter, passing the filters' queued status lines on first."""

    def __init__(self, real: Reporter, messages: Messages) -> None:
        self.real = real
        self.messages = messages

    def interrupted(self) -> Interruption | None:
        self.messages.drain(self.real.status)
        return self.real.interrupted()

    def first_byte(self) -> None:
        self.real.first_byte()

    def progress(self, taken: int) -> None:
        self.real.progress(taken)

    def status(self, message: str) -> None:
        self.real.status(message)


def send_job(entry: Entry, request: SendRequest[Any], backend: Backend) -> SendResult:
    """Send the job as LPRng's lpd prints it: through its filters and banners when the
    queue has any for it, else as spooled; an ``lp=|`` program gets LPRng's command line
    (role ``lp``: the option list without -F -N -e -f)."""
    own_program = request.destination.kind == "pipe" and (
        entry.destination() == request.destination)
    if not own_program and not produces(entry, request.job, request.destination.kind):
        return backend.send(request)  # the spooled file as it is: most jobs
    sd = entry.string("sd") or "."
    data_file = os.path.relpath(request.data_path, sd)
    if own_program:
        facts = facts_for(entry, request.job, data_file=data_file,
                          fmt=request.job.print_format or "f", now=time.time())
        request.command = build_command(entry, "lp", facts, role="lp")
        request.environment = {**filter_environment(entry, facts, inherited=os.environ),
                               **job_variables(request.job)}
    plan = plan_for(entry, request.job, data_file=data_file,
                    kind=request.destination.kind, stall=request.settings.stall,
                    environ=os.environ)
    if plan is None or request.data_fd is None:
        return backend.send(request)
    feed = Feed(plan, request.data_fd)
    real = request.reporter
    request.reporter = Relay(real, feed.messages)
    spooled: int | None = None
    kind = request.destination.kind
    try:
        if kind == "lpd":
            feed.start()
            spooled = _spool(feed, request, sd)
            request.data_fd = spooled
            job = request.job.copy()
            job.copies = 1
            job.print_format = ((entry.string("bq_format") or "f").strip() or "f")[0]
            request.job = job
        else:
            request.source = feed
            if kind in LENDING and plan.of is None:
                request.direct = DirectJob(feed)  # started by the backend: lent its fd, or piped
            else:
                feed.start()
            request.settings = request.settings.replace(framing=NO_FRAMING)
        return backend.send(request)
    finally:
        feed.close()
        feed.messages.drain(real.status, flush=True)
        request.reporter = real
        request.direct = None
        if spooled is not None:
            os.close(spooled)


def _spool(feed: Feed, request: SendRequest[Any], sd: str) -> int:
    """The whole filtered body into an unlinked file in the spool (for LPD's sizes);
    bounded and interruptible like a send. Returns its descriptor."""
    import tempfile  # (with shutil, random, bz2, lzma: only a bounce queue's pass needs it)
    with tempfile.TemporaryFile(dir=sd, prefix=".filtered-") as temp:
        fd = os.dup(temp.fileno())
    try:
        pump = Pump(fd, interrupted=request.reporter.interrupted, first_byte=_nothing,
                    idle_timeout=request.settings.stall, what="the spool's temporary file")
        try:
            pump.send_stream(feed)
        finally:
            pump.close()
    except OSError as exc:
        os.close(fd)
        if exc.errno in NO_ROOM:  # nothing was sent: the job waits for room
            raise SpoolFull(sd, exc.errno, queue=request.settings.queue) from exc
        raise
    except BaseException:
        os.close(fd)
        raise
    return fd


def _nothing() -> None:
    """Filling the temporary file sends nothing to the printer."""
