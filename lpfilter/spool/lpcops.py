"""What LPRng's lpc does to a queue's spool: change its control state, put jobs at the head
of the queue (topq), move jobs to another queue (move, redirect), and the worker's gate.

Below the commands and the print server alike (``lpfilter lpc`` run by the spool's owner,
and the daemon acting for a client): the same change under the same lock, the same
words. Who may do it is decided by the caller (``privileged``: root or the spool's owner).

A moved job is first marked here, durably (``extra.moving_to``: the target's queue,
directory and new number, and the job's state; held meanwhile, so it never prints here
too), then copied into the target's spool (its data fsynced, its ticket written, as a new
job of that queue, numbered there, naming where it came from, ``extra.moved_from``), and
only then removed here. A crash in between is settled at the next look (the worker's
recovery, the next move): a marked job whose copy is in the target is removed here, one
whose copy is not goes back to its state. Never in none, never printed twice.

A redirected queue's jobs are moved at ``redirect`` time and,
for jobs that arrive later (LPD, hot folder), by its worker as soon as it sees them; a
``print`` to a redirected queue spools into the target directly.
"""
from __future__ import annotations

import contextlib
import errno
import os
import time

from lpfilter import logs
from lpfilter.errors import AccessError, LpfilterError
from lpfilter.job import FINISHED, Job, JobState
from lpfilter.safefiles import UnsafeFile, copy_fd
from lpfilter.spool.control import (TOPQ_KEY, ControlFile, QueueControl, read_control,
                                    write_control)
from lpfilter.spool.jobctl import Outcome, Selection
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lpfilter.printcap import Entry
    from lpfilter.spool.records import QueueRecords
    from lpfilter.spool.store import SpoolStore

log = logs.getLogger(__name__)

#: The ticket's ``extra`` key of a job being moved (see the module's doc).
MOVING_KEY = "moving_to"

#: The job states a move (and a redirect) takes; a job being printed stays.
MOVABLE = (JobState.QUEUED, JobState.HELD)
#: lpc's queue-wide words and the change each makes to the state.
CHANGES: dict[str, dict[str, bool]] = {
    "stop": {"printing_disabled": True}, "start": {"printing_disabled": False},
    "disable": {"spooling_disabled": True}, "enable": {"spooling_disabled": False},
    "down": {"printing_disabled": True, "spooling_disabled": True},
    "up": {"printing_disabled": False, "spooling_disabled": False},
    "holdall": {"hold_all": True}, "noholdall": {"hold_all": False},
    "abort": {"printing_disabled": True}, "kill": {"printing_disabled": False},
}
#: What LPRng's lpc says after each (``q@host: stopped``).
SAID = {"stop": "stopped", "start": "started", "disable": "disabled", "enable": "enabled",
        "down": "disabled and stopped", "up": "enabled and started", "holdall": "holdall on",
        "noholdall": "holdall off",
        "abort": "stopped; the job being printed, if any, is stopped and queued again",
        "kill": "the job being printed, if any, is stopped and queued again; started"}
#: The words that also stop the send of the job being printed (it is put back).
ABORTS = ("abort", "kill")


def change(store: SpoolStore, action: str) -> QueueControl:
    """Apply a queue-wide word (CHANGES) to the queue's state; the new state. The caller
    checked the rights and ``store.ensure``d the spool."""
    with store.tickets_locked():
        control = read_control(store.state, store.owner).replace(unreadable="",
                                                                 **CHANGES[action])
        with store.room():
            write_control(store.state, control, store.owner)
        for job in store.jobs(finished=False) if action in ABORTS else ():
            # its worker stops the send and puts it back; a cancel asked for stays one
            if job.state is JobState.ACTIVE and store.stop_requested(job.id) is None:
                store.request_cancel(job.id, requeue=True)
                log.info("queue %s: job %s: lpc %s: its send is stopped, the job queued"
                         " again", visible(store.queue), job.id, action)
    return control


def set_redirect(store: SpoolStore, target: SpoolStore | None) -> QueueControl:
    """Redirect the queue to ``target`` (None: ``redirect off``)."""
    with store.tickets_locked():
        control = read_control(store.state, store.owner).replace(
            unreadable="", redirect=target.queue if target else "",
            redirect_sd=target.sd if target else "")
        with store.room():
            write_control(store.state, control, store.owner)
    return control


def selection(store: SpoolStore, numbers: set[int], users: set[str], every: bool) -> Selection:
    """lpc's job words as a Selection: numbers must exist, user names pick their jobs
    (not the finished ones status keeps)."""
    picked = {int(j.id) for j in store.jobs()
              if j.user in users and j.state not in FINISHED} if users else set()
    return Selection(named=set(numbers), anywhere=picked, every=every)


def _chosen(store: SpoolStore, chosen: Selection, user: str,
            privileged: bool) -> tuple[list[Job], list[Outcome]]:
    """The selected jobs (the caller holds the ticket lock) the caller may act on, and
    the outcomes of those it may not (another user's, missing)."""
    jobs: list[Job] = []
    outcomes: list[Outcome] = []
    seen: set[int] = set()
    for job in store.jobs():
        number = int(job.id)
        named = number in chosen.named or number in chosen.anywhere
        if not named and not chosen.every:
            continue
        if job.state not in (*MOVABLE, JobState.ACTIVE, JobState.FAILED):
            continue
        seen.add(number)
        if not privileged and job.user != user:
            outcomes.append(Outcome(number, "not_yours" if named else "skipped", job.id,
                                    job.user))
            continue
        jobs.append(job)
    outcomes.extend(Outcome(n, "missing") for n in sorted(chosen.named - seen))
    return jobs, outcomes


def topq(store: SpoolStore, chosen: Selection, user: str, privileged: bool) -> list[Outcome]:
    """Put the chosen jobs at the head of the queue, in their order (a later topq goes
    before an earlier one, as LPRng's)."""
    outcomes: list[Outcome] = []
    with store.tickets_locked():
        jobs, refused = _chosen(store, chosen, user, privileged)
        stamp = time.time()
        for rank, job in enumerate(jobs):
            if job.state not in MOVABLE:
                said = f"not moved up ({job.state})"
            else:
                job.extra = {**job.extra, TOPQ_KEY: stamp - rank * 1e-6}
                store.write(job)
                said = "moved to the head of the queue"
            outcomes.append(Outcome(int(job.id), "changed", job.id, job.user, said))
    return sorted(outcomes + refused, key=lambda o: o.number)


def move(store: SpoolStore, records: QueueRecords, chosen: Selection, target: SpoolStore,
         user: str, privileged: bool, *, keep: int = 0) -> list[Outcome]:
    """Move the chosen jobs into ``target``'s spool (``ensure``d by the caller), keeping
    ``keep`` bytes free there (its queue's minfree, as print keeps it)."""
    outcomes: list[Outcome] = []
    settle_moves(store, records)
    with store.tickets_locked():
        jobs, refused = _chosen(store, chosen, user, privileged)
        for job in jobs:
            if job.state not in MOVABLE:
                why = "being printed" if job.state == JobState.ACTIVE else job.state
                said = f"not moved ({why})"
            else:
                moved = move_job(store, records, job, target, keep=keep)
                said = f"moved to {visible(target.queue)}-{moved.id}"
            outcomes.append(Outcome(int(job.id), "changed", job.id, job.user, said))
    return sorted(outcomes + refused, key=lambda o: o.number)


def move_job(store: SpoolStore, records: QueueRecords, job: Job, target: SpoolStore, *,
             keep: int = 0) -> Job:
    """One job (its ticket lock held) into ``target`` as a new job there, then removed
    here; its state (queued or held) and everything the user asked for kept. Marked
    first (see the module's doc), so that a crash between is settled, not doubled."""
    data_fd = store.open_data(job.id)
    if isinstance(data_fd, str):
        raise AccessError(f"queue {visible(store.queue)}: job {job.id}: {data_fd}",
                          queue=store.queue)
    marked = job.copy()
    try:
        new_id = target.next_id()
        marked.extra = {**job.extra, MOVING_KEY: {"queue": target.queue, "sd": target.sd,
                                                  "id": new_id, "state": job.state.value}}
        if marked.state == JobState.QUEUED:
            marked.move_to(JobState.HELD)
        store.write(marked)
        try:
            moved = _copy_into(target, job, data_fd, new_id, origin=f"{store.queue}-{job.id}",
                               keep=keep)
        except BaseException:
            store.write(job)  # not copied: as it was
            raise
        # The copy is the target's now: said here before the job goes, so that a crash
        # in between is settled by this note, whatever became of the copy meanwhile
        # (printed and pruned, cancelled or moved on: not in the target to be found).
        marked.extra = {**marked.extra, MOVING_KEY: {**marked.extra[MOVING_KEY],
                                                     "committed": True}}
        store.write(marked)
    finally:
        os.close(data_fd)
    store.remove(marked)
    records.log(f"moved to {visible(target.queue)}-{moved.id}", job)
    return moved


def _copy_into(target: SpoolStore, job: Job, data_fd: int, new_id: str, *,
               origin: str, keep: int = 0) -> Job:
    if keep > 0:  # the target queue's minfree: a move is no way round it
        from lpfilter.errors import SpoolFull
        from lpfilter.spool.room import check_floor
        short = check_floor(target.sd, os.fstat(data_fd).st_size, keep)
        if short:
            raise SpoolFull(target.sd, errno.ENOSPC, queue=target.queue, floor=short)
    fd, staged = target.stage(new_id)
    try:
        try:
            with target.room():
                copy_fd(data_fd, fd)
                os.fsync(fd)
            moved = job.copy()
            moved.id, moved.queue = new_id, target.queue
            moved.extra = {**_kept_extra(job), "moved_from": origin}
            moved.attempts, moved.next_try, moved.worker = 0, 0.0, None
            moved.unreachable_since, moved.unreachable_tries = 0.0, 0
            with target.tickets_locked():
                target.commit(moved, staged)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(staged)
            raise
    finally:
        os.close(fd)
    return moved


def _kept_extra(job: Job) -> dict[str, Any]:
    """What of a ticket's ``extra`` a move takes along: only the control lines of a received
    job, checked (single capital letters, short printable text); the source spool's owner
    may have written anything there, and the target may be root's."""
    given = job.extra.get("control")
    if not isinstance(given, dict):
        return {}
    lines = {k: v for k, v in given.items() if isinstance(k, str) and len(k) == 1
             and k.isupper() and k.isascii() and isinstance(v, str) and len(v) <= 1024
             and v.isprintable()}
    return {"control": lines} if lines else {}


def settle_moves(store: SpoolStore, records: QueueRecords) -> None:
    """Moves a crash interrupted (a ticket still marked ``moving_to``): the job is removed
    here when the mark says its copy was committed, or the copy is in the target (the move
    was done), else put back as it was."""
    with store.tickets_locked():
        for job in store.jobs():
            mark = job.extra.get(MOVING_KEY)
            if mark is None:
                continue
            origin = f"{store.queue}-{job.id}"
            if isinstance(mark, dict) and (mark.get("committed") is True
                                           or _copied(mark, origin, store.owner)):
                store.remove(job)
                records.log(f"moved to {visible(str(mark.get('queue')))}-"
                            f"{visible(str(mark.get('id')))} (finished after an interruption)",
                            job)
                continue
            job.extra = {k: v for k, v in job.extra.items() if k != MOVING_KEY}
            was = mark.get("state") if isinstance(mark, dict) else None
            if was == JobState.QUEUED.value and job.state == JobState.HELD:
                job.move_to(JobState.QUEUED)
            store.write(job)
            records.log("not moved (the move was interrupted); back in the queue", job)


def _copied(mark: dict[str, Any], origin: str, owner: int) -> bool:
    """Is the target's job that a move marked there the copy of ``origin``? The mark is
    in a record the spool's owner may write: only a journal of that same owner (or of
    root's spools, for a root-owned source) counts, as moves never cross owners; it is
    read, never written (no journal is made there)."""
    from lpfilter.spool.jobindex import replay
    from lpfilter.spool.journal import JOURNAL, JOURNAL_MAX, open_owned
    from lpfilter.spool.store import STATE_DIR
    sd, queue, new_id = mark.get("sd"), mark.get("queue"), mark.get("id")
    if (not all(isinstance(v, str) for v in (sd, queue, new_id))
            or not (str(new_id).isascii() and str(new_id).isdigit())):
        return False
    path = os.path.join(str(sd), STATE_DIR, JOURNAL)
    try:
        fd = open_owned(path, owner, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                        | os.O_CLOEXEC, create=False)
    except (UnsafeFile, OSError):
        return False
    with open(fd, "rb") as handle:
        data = handle.read(JOURNAL_MAX)
    job = replay(data, str(queue)).jobs.get(str(new_id))
    return job is not None and job.extra.get("moved_from") == origin


def move_all(store: SpoolStore, records: QueueRecords, target: SpoolStore, *,
             keep: int = 0) -> list[Job]:
    """Every queued and held job of the queue into ``target`` (a redirect)."""
    moved: list[Job] = []
    settle_moves(store, records)
    with store.tickets_locked():
        for job in store.jobs():
            if job.state in MOVABLE:
                moved.append(move_job(store, records, job, target, keep=keep))
    return moved


class Gate:
    """The worker's look at lpc's state before each job: a stopped queue prints nothing
    (its jobs stay queued), a redirected one moves its jobs to the target first. The
    target's directory comes from the control file, which the spool's owner may write:
    unless that owner is root, the target must be a spool of the same owner, so that a
    daemon run by root never writes for them where they could not write themselves."""

    def __init__(self, store: SpoolStore, records: QueueRecords,
                 entry: Entry | None = None) -> None:
        from lpfilter.spool.store import SpoolStore
        self.store, self.records, self.entry = store, records, entry
        self.file = ControlFile(store.state)
        self._said = ""
        self._stopped = False
        self._target: type[SpoolStore] = SpoolStore

    def stopped(self) -> bool:
        """Must the worker send nothing now?"""
        control = self.file.read()
        if control.redirect:
            self._redirect(control)
            return True
        if control.printing_disabled != self._stopped:  # said once a change
            self._stopped = control.printing_disabled
            why = "lpc stop"
            if control.unreadable:
                why = (f"its lpc state is unreadable ({visible(control.unreadable)}); 'lpfilter"
                       f" lpc start {visible(self.store.queue)}' writes it again")
            log.info("queue %s: %s", visible(self.store.queue), f"printing stopped ({why}):"
                     " its jobs wait" if self._stopped else "printing started (lpc start)")
        return control.printing_disabled

    def _redirect(self, control: QueueControl) -> None:
        target = self._target(control.redirect_sd, control.redirect)
        try:
            if self.store.owner not in (0, target.owner):  # root writes nowhere else for it
                raise AccessError(f"{target.sd} is not a spool of the queue's owner (uid"
                                  f" {self.store.owner})")
            target.ensure("change")
            onward = ControlFile(target.state).read().redirect
            if onward:  # two redirects set at once (each checked before the other was
                # written): the jobs would go round for ever, a move and its syncs each time
                raise AccessError(f"{visible(target.queue)} is redirected itself (to"
                                  f" {visible(onward)}); the jobs wait here until one of"
                                  " the redirects is turned off (lpc redirect QUEUE off)")
            for job in move_all(self.store, self.records, target,
                                keep=_minfree_of(self.entry, control.redirect)):
                log.info("queue %s: job %s redirected to %s-%s", visible(self.store.queue),
                         job.extra.get("moved_from", ""), visible(target.queue), job.id)
            self._said = ""
        except (LpfilterError, OSError) as exc:  # said once; the jobs stay here meanwhile
            said = f"queue {visible(self.store.queue)}: cannot move its jobs to"
            said += f" {visible(control.redirect)} (lpc redirect): {exc}"
            if said != self._said:
                log.error("%s", said)
                self._said = said
        finally:
            target.close()


def _minfree_of(entry: Entry | None, name: str) -> int:
    """The bytes queue ``name`` keeps free (its minfree), looked up in the printcap the
    worker's entry came from; 0 when it cannot be (then only a full disk stops a move)."""
    printcap = getattr(entry, "printcap", None)
    if printcap is None:  # an entry made from text (PRINTCAP_ENTRY): no other queue
        return 0
    try:
        target: Entry = printcap.lookup(name)
    except LpfilterError:
        return 0
    return target.number("minfree") * 1024
