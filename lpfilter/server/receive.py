"""Receiving jobs over LPD (RFC 1179 §6; lpd-protocol.md §2, §3.1, §10 "Server").

A job is told "received" (the final acknowledgement) only once its data and ticket are on disk,
fsynced, as an ordinary queued job; until then its data files are one staged file of the store
(server/staging.py: one descriptor per job, not per file), removed on any failure, and locked
while it is written so that the startup recovery of a process killed mid-transfer can tell it
from one still arriving. Both orders (control file first, as LPRng, BSD and CUPS send, or data
first), several jobs on one connection, abort, and a data file of size 0 (to the end of the
connection, as LPRng's ``lpr -k`` streams) are taken. Everything the client names is checked and
never used as a path; sizes are checked against the queue's ``mx`` and the free space (less
what other transfers were promised, and ``minfree``: spool/room.py) before a byte is read. A
client that sends a job again after losing its final acknowledgement (same address, same
control file name and bytes, same data) is answered "received" without a second job within
the retry window, and is queued flagged possible_duplicate after it (server/retries.py says
why, and why the data's digest is taken after the acknowledgement).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from lpfilter import logs
from lpfilter.errors import AccessError, SpoolFull
from lpfilter.job import Job
from lpfilter.protocols import lpd, lpdcontrol
from lpfilter.protocols.lpd import DATA_LETTERS, LpdProtocolError, Subcommand
from lpfilter.protocols.lpdcontrol import ControlFields
from lpfilter.server import received, staging
from lpfilter.server.retries import DIGEST_AT_ONCE, Retries, file_digest
from lpfilter.server.spoolcheck import SpoolChecks
from lpfilter.server.staging import Part, Staged
from lpfilter.server.wire import ClientError, LineTooLong, TooMuch, Wire
from lpfilter.spool.control import entry_control
from lpfilter.spool.jobdata import inline_allowed
from lpfilter.spool.room import Claim, NoRoom
from lpfilter.spool.notes import UNKNOWN
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn
    from lpfilter.printcap import Entry
    from lpfilter.server.peer import Peer
    from lpfilter.spool.store import SpoolStore

log = logs.getLogger(__name__)

OK = b"\0"
#: Non-zero acknowledgements, LPRng's meanings (lpd-protocol.md §3): a malformed line,
#: try again later (over a size limit, no room), this job is bad.
STOP_QUEUE, RETRY, FAIL = 1, 2, 3
#: Data files in one job, as LPRng's ``max_datafiles`` (all in one staged file).
MAX_DATA_FILES = len(DATA_LETTERS)


@dataclass
class _Pending:
    """The job the connection is sending now: what has arrived of it."""

    control: ControlFields | None = None
    control_name: str = ""
    digest: str = ""
    staged: Staged = field(default_factory=Staged)
    #: The room its data files were promised (spool/room.py), given back when it goes.
    claims: list[Claim] = field(default_factory=list)

    @property
    def parts(self) -> dict[str, Part]:
        return self.staged.parts

    def missing(self) -> list[str]:
        """Data files the control file names that have not arrived."""
        if self.control is None:
            return []
        return [f.name for f in self.control.files if f.name not in self.parts]

    def complete(self) -> bool:
        return self.control is not None and not self.missing()

    def started(self) -> bool:
        return self.control is not None or bool(self.parts)

    def discard(self) -> None:
        """Drop the job (or forget it, queued): its staged file and its promises go."""
        self.staged.discard()
        for claim in self.claims:
            claim.release()
        self.claims.clear()
        self.control, self.control_name, self.digest = None, "", ""


def receive_job(wire: Wire, entry: Entry, store: SpoolStore, peer: Peer, *,
                committed: Callable[[Job], None] | None = None,
                checks: SpoolChecks | None = None) -> list[Job]:
    """The subcommands after an acknowledged ``\\x02queue`` request, to the end of the
    connection; returns the jobs committed. A protocol fault is a ClientError, raised
    after the non-zero acknowledgement (with its reason) is sent; a job not committed
    leaves no file behind. ``committed`` is called with each job as soon as it is queued
    (before its final acknowledgement): the daemon wakes the queue's worker, so the jobs
    of a long connection print while it goes on. ``checks``: the daemon's, so that the
    spool's folders are checked once, not on every connection (None: on this one)."""
    return _Receiver(wire, entry, store, peer, committed, checks or SpoolChecks()).run()


class _Receiver:
    """One connection's job transfer."""

    def __init__(self, wire: Wire, entry: Entry, store: SpoolStore, peer: Peer,
                 committed: Callable[[Job], None] | None, checks: SpoolChecks) -> None:
        self.wire, self.entry, self.store, self.peer = wire, entry, store, peer
        self.committed, self.checks = committed, checks
        limit_kib = entry.number("mx")
        self.limit_kib = limit_kib
        self.limit = limit_kib * 1024 if limit_kib > 0 else None
        self.pending = _Pending()
        #: Small jobs may be received in memory and kept in the journal (spool/jobdata.py).
        self.inline = inline_allowed(entry)
        self.jobs: list[Job] = []
        #: The client's sending side has ended (after a file sent to the end).
        self.ended = False

    def run(self) -> list[Job]:
        """Subcommands until the client closes: several jobs may share one connection (as
        LPRng's lpr sends them), and a job half sent when it closes is dropped, logged."""
        try:
            self.ready()
            self.serve()
            if self.pending.started():
                log.warning("queue %s: %s closed the connection before its job was complete"
                            " (%s); nothing was queued", visible(self.entry.name), self.peer,
                            self.what_is_missing())
        except (OSError, AccessError):
            self.checks.forget(self.store)  # a folder may have gone: all checks next time
            raise
        finally:
            self.pending.discard()
        return self.jobs

    def serve(self) -> None:
        """The subcommands, one by one, until the client ends its transfer."""
        while not self.ended:
            try:
                line = self.wire.line(lpd.MAX_LINE - 1)
            except LineTooLong:
                self.refuse(STOP_QUEUE, f"a subcommand line longer than {lpd.MAX_LINE}"
                            " bytes")
            if line is None:
                break
            self.step(line)

    def ready(self) -> None:
        """The spool's folders made or checked (as the watcher does): a spool that cannot
        take jobs is the answer to the client's first subcommand."""
        try:
            self.checks.ensure(self.store, "watch")
        except SpoolFull as exc:
            self.full(exc)
        except AccessError as exc:
            log.error("queue %s: cannot receive jobs: %s", visible(self.entry.name), exc)
            self.refuse(STOP_QUEUE, "the queue cannot take jobs now (see the server's log)")
        if entry_control(self.entry).spooling_disabled:  # lpc disable: LPRng's "try later"
            self.refuse(RETRY, "spooling disabled")

    def what_is_missing(self) -> str:
        missing = self.pending.missing()
        if missing:
            return "data file " + ", ".join(visible(m) for m in missing) + " never came"
        return "no control file came" if self.pending.control is None else "complete"

    def refuse(self, code: int, reason: str) -> NoReturn:
        """The non-zero acknowledgement with its reason, then the end of the transfer."""
        with contextlib.suppress(ClientError):
            self.wire.send(lpd.ack(code, f"{self.entry.name}: {reason}"))
        raise ClientError(f"queue {visible(self.entry.name)}: refused a job:"  # (the log
                          f" {visible(reason)}")  # line names the peer)

    def step(self, line: bytes) -> None:
        """One subcommand. A full spool is the client's "try later" (it keeps the job and
        retries), never a fault of ours; its details stay in the log."""
        try:
            sub = lpd.parse_subcommand(line)
        except LpdProtocolError as exc:
            self.refuse(STOP_QUEUE, str(exc))
        try:
            if sub is None:  # abort (RFC §6.1): drop what this job sent so far
                if self.pending.started():
                    log.info("queue %s: %s aborted its job", visible(self.entry.name),
                             self.peer)
                self.pending.discard()
                self.wire.send(OK)
            elif sub.code is Subcommand.CONTROL_FILE:
                self.control_file(sub)
            else:
                self.data_file(sub)
        except SpoolFull as exc:
            self.full(exc)

    def full(self, error: SpoolFull) -> NoReturn:
        """A full spool is the client's "try later" (it keeps the job and retries), never
        a fault of ours; its details (which name the queue) are for the log."""
        said = str(error) if error.queue else f"queue {self.entry.name}: {error}"
        log.warning("%s", visible(said))
        self.refuse(RETRY, "no room in the spool; try later")

    # --- the two kinds of file ------------------------------------------------------
    def control_file(self, sub: lpd.FileLine) -> None:
        """The control file, held in memory (it is small and bounded): it is checked
        before the data files it names are accepted, and its digest names the job for
        recognising a resend."""
        pending = self.pending
        if pending.control is not None:
            self.refuse(FAIL, f"control file {sub.name} came before the data files of"
                        f" {pending.control_name} ({self.what_is_missing()})")
        if sub.size > lpdcontrol.MAX_CONTROL_FILE:
            self.refuse(FAIL, f"control file {sub.name} of {sub.size} bytes: more than"
                        f" {lpdcontrol.MAX_CONTROL_FILE}")
        self.wire.send(OK)
        data = self.wire.exact(sub.size)
        self.file_end(sub.name)
        try:
            fields = self.fields(lpdcontrol.parse(data))
        except LpdProtocolError as exc:
            self.refuse(FAIL, f"control file {sub.name}: {exc}")
        named = {f.name for f in fields.files}
        stray = [name for name in pending.parts if name not in named]
        if stray:
            self.refuse(FAIL, f"data file {stray[0]} is not named by control file {sub.name}")
        if len(named) > MAX_DATA_FILES:
            self.refuse(FAIL, f"control file {sub.name} names more than {MAX_DATA_FILES}"
                        " data files")
        too_many = received.too_many_copies(self.entry, fields, self.peer)
        if too_many:
            self.refuse(FAIL, too_many)
        pending.control, pending.control_name = fields, sub.name
        pending.digest = hashlib.sha256(data).hexdigest()[:40]
        self.acknowledge()

    def fields(self, parsed: ControlFields) -> ControlFields:
        """The control file's fields cleaned as they are kept: the kernel's user for a local
        client; the connecting address for a missing host (as LPRng does)."""
        user = (self.peer.user or str(self.peer.uid)) if self.peer.local else parsed.user
        host = parsed.host or self.peer.address or "localhost"
        return lpdcontrol.cleaned(parsed.replace(user=user, host=host))

    def data_file(self, sub: lpd.FileLine) -> None:
        """A data file, streamed into the job's staged file and hashed on the way: its
        size is refused against mx and the free space before a byte is read, so a hostile
        client cannot fill the disk."""
        pending = self.pending
        if pending.control is not None and sub.name not in pending.missing():
            self.refuse(FAIL, f"data file {sub.name} is not one control file"
                        f" {pending.control_name} still waits for")
        if sub.name in pending.parts:
            self.refuse(FAIL, f"data file {sub.name} sent twice")
        if len(pending.parts) >= MAX_DATA_FILES:
            self.refuse(FAIL, f"more than {MAX_DATA_FILES} data files in one job")
        room = None if self.limit is None else self.limit - pending.staged.size()
        if room is not None and sub.size > room:
            self.refuse(RETRY, f"data file {sub.name} of {sub.size} bytes: the job would be"
                        f" larger than the queue's limit of {self.limit_kib} KiB (mx)")
        self.check_room(sub)
        staged = pending.staged
        inline = self.store.inline_room() if self.inline else 0
        with self.store.room():
            staged.open(self.store, small=staging.fits_in_memory(staged, sub.size, inline))
        part = staged.parts[sub.name] = Part(staged.size())
        self.wire.send(OK)
        if sub.size:
            with self.store.room():
                part.size = self.wire.into(staged.fd, sub.size)
            self.file_end(sub.name)
        else:
            part.size = self.to_the_end(staged.fd, room)
        self.acknowledge()

    def to_the_end(self, fd: int, room: int | None) -> int:
        """A data file of size 0: everything up to the client's close (the last file)."""
        self.ended = True
        try:
            with self.store.room():
                return self.wire.into(fd, None, limit=room)
        except TooMuch:
            self.refuse(RETRY, f"the job is larger than the queue's limit of"
                        f" {self.limit_kib} KiB (mx)")

    def file_end(self, name: str) -> None:
        """The NUL after a file's bytes; a client that closes instead (CUPS's stream mode
        sends none) has ended its transfer."""
        end = self.wire.octet()
        if end == b"":
            self.ended = True
        elif end != OK:
            self.refuse(FAIL, f"file {name} is not followed by a NUL byte")

    def check_room(self, sub: lpd.FileLine) -> None:
        """The free space, less the other transfers' promises and minfree (spool/room.py):
        a size that fits is promised to this job until it is queued or dropped."""
        keep = max(0, self.entry.number("minfree")) * 1024
        try:
            claim = self.checks.room.take(self.store.tmp_dir, sub.size, keep)
        except NoRoom as exc:
            self.refuse(RETRY, f"data file {sub.name} of {sub.size} bytes: {exc}")
        self.pending.claims.append(claim)

    # --- a complete job -------------------------------------------------------------
    def acknowledge(self) -> None:
        """The acknowledgement of a file: for the job's last one, only after its commit;
        then the committed job's digest is noted (even when the client is gone: it is the
        one that will send the job again)."""
        committed = None
        if self.pending.complete():
            committed = self.commit()
        elif self.ended:
            self.refuse(FAIL, f"the client ended the transfer before the job was complete"
                        f" ({self.what_is_missing()})")
        try:
            if self.ended:
                with contextlib.suppress(ClientError):  # the client may have gone already
                    self.wire.send(OK)
            else:
                self.wire.send(OK)
        finally:
            if committed is not None:
                self.note_digest(*committed)
            if self.pending.complete():
                self.pending.discard()

    def commit(self) -> tuple[Job, int, str] | None:
        """Queue the complete job, fsynced, before its final acknowledgement: a client told
        "received" may forget the job, so the job must survive a crash from then on.
        Returns the job, its open data file and its retry note when its digest is still to
        be noted; None when nothing is (a resend not queued again, a small job)."""
        pending = self.pending
        assert pending.control is not None
        fields = pending.control
        number, host = lpd.file_job(pending.control_name)
        origin = f"{pending.control_name}:{pending.digest}"
        fd, staged, size, copies = self.assemble(fields)
        try:
            if size == 0:
                self.refuse(FAIL, "an empty job: nothing to print")
            if staged:  # a file (a small job's memory file needs no flush)
                with self.store.room():
                    os.fsync(fd)
            job = received.ticket(self.entry, fields, self.peer, job_id=pending.staged.job_id,
                                  control_name=pending.control_name, size=size,
                                  copies=copies, origin=origin)
            sizes = [pending.parts[f.name].size for f in fields.files]
            digest = file_digest(fd) if size <= DIGEST_AT_ONCE else UNKNOWN
            source = staged or os.pread(fd, size, 0)  # a small job: its bytes, from memory
            twin, note = Retries(self.store).commit_once(job, source, fd, sizes, self.peer,
                                                         digest)
        except BaseException:
            self.drop_copy(fd, staged)
            raise
        name = visible(self.entry.name)
        if twin is not None:
            self.drop_copy(fd, staged)
            log.warning("queue %s: %s sent job %d (%s) again, already queued as job %s"
                        " (its final acknowledgement was lost): not queued twice", name,
                        self.peer, number, visible(host), twin)
            return None
        log.info("queue %s: job %s received from %s (%s, user %s, %d bytes)", name,
                 job.id, self.peer, visible(pending.control_name), visible(job.user), size)
        self.jobs.append(job)
        if self.committed is not None:
            self.committed(job)
        if note:
            return job, fd, note
        if fd != pending.staged.fd:  # an assembled copy: its digest is noted already
            os.close(fd)
        return None

    def drop_copy(self, fd: int, path: str) -> None:
        """The assembled copy of a job (not its staged file): closed, removed if not queued."""
        if fd != self.pending.staged.fd:
            os.close(fd)
            if path:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

    def note_digest(self, job: Job, fd: int, note: str) -> None:
        try:
            Retries(self.store).note_digest(note, job, file_digest(fd))
        except OSError as exc:
            log.warning("queue %s: job %s: cannot read it back for its digest (%s)",
                        visible(self.entry.name), job.id, exc)
        finally:
            if fd != self.pending.staged.fd:
                os.close(fd)

    def assemble(self, fields: ControlFields) -> tuple[int, str, int, int]:
        """The job's data as one file (staging.assemble): (fd, path, size, copies)."""
        try:
            return staging.assemble(self.store, self.pending.staged, fields, self.limit)
        except staging.TooBig as exc:
            self.refuse(FAIL, str(exc))
