"""``lpfilter watch``: serve many queues, each in its own thread, woken by inotify events.

Signal handlers only set flags (and wake the selector through the wake-up pipe):
SIGTERM/SIGINT stop taking jobs and give running sends ``grace`` seconds before they are
interrupted and put back; SIGHUP re-reads the printcap, starting and stopping queues.
Queues are independent: a printer that hangs holds up only its own queue's thread.
"""
from __future__ import annotations

import contextlib
import os
import selectors
import signal
import threading
import time
from collections.abc import Callable

from lpfilter import logs
from lpfilter.errors import AccessError, LockHeld, LpfilterError
from lpfilter.job import JobState
from lpfilter.spool import inotify, reconfig
from lpfilter.spool.control import CONTROL_FILE
from lpfilter.spool.journal import JOURNAL
from lpfilter.spool.journalfile import held
from lpfilter.spool.lease import LEASE_FILE, QueueLease, holder_words
from lpfilter.spool.outcome import WatchOutcome, WorkSummary
from lpfilter.spool.serve import QueueServer, Served
from lpfilter.spool.retrywatch import RetryWatches, stamp, waits
from lpfilter.spool.spooldir import STATE_DIR
from lpfilter.spool.store import SpoolStore
from lpfilter.spool.worker import RESCAN

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.printcap import Entry

log = logs.getLogger(__name__)

#: A watched directory deleted or moved away: its queue waits for it to come back.
_GONE = inotify.IN_DELETE_SELF | inotify.IN_MOVE_SELF | inotify.IN_IGNORED
_SPOOL_EVENTS = inotify.IN_MOVED_TO | inotify.IN_CLOSE_WRITE | inotify.IN_CREATE | _GONE
#: The job folder is watched only to see the spool removed: the state folder's removal is
#: reported only once its open files (the journal) are closed, and a worker keeps it open.
#: A lease holder closes queue.lock when it lets go: the moment a waiting watcher takes over.
#: lpc's state (control) is renamed into place: its worker looks again (lpc start). The
#: journal is appended to (a job recorded, a cancel asked) or replaced by a compaction.
_STATE_EVENTS = inotify.IN_CLOSE_WRITE | inotify.IN_MOVED_TO | inotify.IN_MODIFY | _GONE
#: While a queue is served by another process, look at its lock at least this often.
BUSY_POLL = 1.0
#: After reading events, this long before the next read: a worker's own appends (3 a job)
EVENT_GAP = 0.002  # woke this thread each, ~12% of a sending worker's time (the GIL)


class Watcher:
    """Runs workers for ``entries``; ``load`` re-reads the printcap on SIGHUP."""

    def __init__(self, load: Callable[[], list[Entry]], *, lock_dir: str, once: bool,
                 grace: float = 10.0, settle: float = 2.0,
                 on_started: Callable[[], None] | None = None) -> None:
        self.load = load
        #: Called once the queues have started (the print server starts accepting then).
        self.on_started = on_started
        #: Called as the watcher begins to stop (before the running jobs' grace).
        self.on_stopping: Callable[[], None] | None = None
        self.lock_dir = lock_dir
        self.once = once
        self.grace = grace
        self.settle = settle
        self.stop = threading.Event()
        self._asked_stop = self._asked_reload = False  # (the signal handlers' flags)
        self.served: dict[str, Served] = {}
        self.busy: list[str] = []
        #: Queues that could not start (no spool directory...), retried at each rescan,
        #: and why (the command says what exit status that is).
        self.broken: dict[str, Entry] = {}
        self.broken_why: dict[str, BaseException] = {}
        #: The line last said of a queue that is not served (said again only if it changes).
        self.said: dict[str, str] = {}
        #: Broken queues' state folders, watched to try them again (spool/retrywatch.py).
        self._retry = RetryWatches(None)
        self._inotify: inotify.Inotify | None = None
        self._wake_fd: int | None = None
        self._by_watch: dict[int, tuple[Served, str]] = {}

    # --- signals: a handler sets a plain flag, which the loop (woken by the wakeup fd)
    # acts on. Event.set takes the Event's lock, and the handler runs in the main thread,
    # which may hold that lock at that moment (the shutdown's stop.set): never got.
    def _on_stop(self, signum: int, frame: object) -> None:
        self._asked_stop = True

    def _on_hup(self, signum: int, frame: object) -> None:
        self._asked_reload = True

    # --- queues -------------------------------------------------------------------------
    def _start(self, entry: Entry) -> None:
        store = SpoolStore(entry.string("sd") or "", entry.name)
        store.ensure("watch")
        if entry.name in self.broken:  # tried again: can its jobs be read now (a journal
            try:  # moved aside)? If not, it stays broken, and nothing is started
                store.jobs()
            finally:
                store.close()
        lease = QueueLease.of(store, "watch --once" if self.once else "watch")
        served = Served(entry, QueueServer(entry, lease, lock_dir=self.lock_dir,
                                           settle=self.settle))
        if self.once:  # files that may still be written are waited for this long, no more
            served.worker.intake.files_deadline = time.time() + self.settle
        self.served[entry.name] = served
        if self._inotify is not None:
            for path, kind, mask in ((store.sd, "spool", _SPOOL_EVENTS),
                                     (store.jobs_dir, "jobs", _GONE),
                                     (store.state, "state", _STATE_EVENTS)):
                try:
                    wd = self._inotify.watch(path, mask)
                except OSError as exc:
                    log.warning("%s: cannot watch %s (%s); rescanning every %g s instead",
                                entry.name, path, exc.strerror, RESCAN)
                    continue
                served.watches.append(wd)
                self._by_watch[wd] = (served, kind)
        try:
            self._try_run(served)
        except BaseException:
            self._stop_queues([entry.name])  # not served: tried again as a broken queue
            raise

    def _run_or_retire(self, served: Served) -> None:
        """``_try_run`` from the loop: a lease its spool's removal (or a refused lock file)
        keeps from being taken retires the queue, said once, as its worker's error does."""
        if self.served.get(served.entry.name) is not served:
            return  # retired already (an event of the same read)
        try:
            self._try_run(served)
        except (OSError, LpfilterError) as exc:
            error = served.worker.store.explain(exc) if isinstance(exc, OSError) else exc
            self._retire(served.entry.name, error or AccessError(
                f"queue {served.entry.name}: cannot take its lease: {exc}"), say=True)

    def _try_run(self, served: Served) -> None:
        """Start the queue's thread if we can take its lease; say who has it if not."""
        if served.thread is not None and not served.thread.is_alive() and not self.once:
            log.warning("queue %s: its worker ended; starting it again", served.entry.name)
            served.thread = None
        if served.thread is not None or not served.server.take():
            if served.thread is None and served.entry.name not in self.busy:
                who = holder_words(served.server.lease.holder(), since=True)
                log.warning("queue %s is %s; %s", served.entry.name, who,
                            "skipping it" if self.once else "waiting for it to finish")
                self.busy.append(served.entry.name)
            return
        if served.entry.name in self.busy:
            self.busy.remove(served.entry.name)
        served.thread = threading.Thread(target=self._serve, args=(served,),
                                         name=f"queue-{served.entry.name}", daemon=True)
        served.thread.start()

    def _serve(self, served: Served) -> None:
        try:
            served.summary = served.server.serve(burst=self.once, every_job=self.once)
            if served.summary.full is not None:
                log.error("%s", served.summary.full_text())
        except LpfilterError as exc:  # its spool went away or cannot be used: the loop
            # retires it and says why once (a daemon), and tries it again at each rescan
            if self.once or served.worker.stop.is_set():
                log.log(logs.DEBUG if served.worker.stop.is_set() else logs.ERROR,
                        "%s", exc)
            served.error = exc
        except Exception:  # noqa: BLE001 - one queue's failure must not stop the others
            log.exception("queue %s stopped on an internal error", served.entry.name)
            served.summary = WorkSummary({JobState.FAILED: 1})
        finally:
            served.server.release()
            if self._wake_fd is not None:  # --once: the loop ends as soon as all are done
                try:
                    os.write(self._wake_fd, b"\0")
                except OSError:
                    pass

    def _stop_queues(self, names: list[str]) -> None:
        stopping = [self.served.pop(name) for name in names]
        for served in stopping:
            for wd in served.watches:
                self._by_watch.pop(wd, None)
                if self._inotify is not None:
                    self._inotify.unwatch(wd)
        reconfig.stop_together(stopping, self.grace)

    def _reconfigure(self) -> None:
        """SIGHUP: queues added to the printcap start, removed or changed ones stop (a
        changed one starts again), all at once; none starts once a stop was asked."""
        try:
            entries = {e.name: e for e in self.load()}
        except Exception as exc:  # noqa: BLE001 - keep serving with the old printcap
            log.error("printcap reload failed, keeping the old one: %s", exc)
            return
        going = reconfig.going(entries, self.served)
        for name, (why, left) in going.items():
            log.info("queue %s %s", name, why)
            if left:
                log.warning("%s", left)
        self._stop_queues(list(going))
        if self._asked_stop:
            return
        for name in list(self.broken):
            if name not in entries:
                del self.broken[name]
                self.broken_why.pop(name, None)
        for name, entry in entries.items():
            if name not in self.served:
                if name not in self.broken:
                    log.info("queue %s: starting it", name)
                self._start_safely(entry)
        for served in self.served.values():  # and look again (a spool that has room again)
            served.worker.wake()

    def _start_safely(self, entry: Entry) -> None:
        """Start a queue (or a broken one again); a failure is said once per reason."""
        sd = entry.string("sd") or ""
        found = stamp(sd)  # the files this try reads (retrywatch)
        if isinstance(self.broken_why.get(entry.name), LockHeld) and held(
                os.path.join(sd, STATE_DIR, f"{JOURNAL}.lock")):
            return  # still held by the stuck process: said once already
        try:
            self._start(entry)
        except Exception as exc:  # noqa: BLE001 - a broken queue must not stop the others
            self._retry.failed(entry.name, sd, found, time.monotonic())
            line = str(exc) if str(exc).startswith("queue ") else f"queue {entry.name}: {exc}"
            if entry.name not in self.broken or self.said.get(entry.name, line) != line:
                log.error("%s", line + ("" if self.once else waits(exc)))
                self.said[entry.name] = line
            self.broken[entry.name] = entry
            self.broken_why[entry.name] = exc
        else:
            if self.broken.pop(entry.name, None) is not None:
                log.warning("queue %s: its spool directory %s can be used again; serving"
                            " the queue", entry.name, entry.string("sd"))
            self.broken_why.pop(entry.name, None)
            self.said.pop(entry.name, None)
        self._watch_broken(entry)

    def _retire(self, name: str, error: LpfilterError, *, say: bool = False) -> None:
        """A daemon's queue whose spool went away or cannot be used (``say``: its worker
        stopped on it, said here once): stopped, started again once it can be used."""
        served = self.served.get(name)
        if served is None:
            return
        self._stop_queues([name])
        self.broken[name] = served.entry
        self.broken_why[name] = error
        if say and self.said.get(name) != str(error):
            log.error("%s", f"{error}{'' if self.once else waits(error)}")
            self.said[name] = str(error)
        self._watch_broken(served.entry)

    def _watch_broken(self, entry: Entry) -> None:
        if entry.name in self.broken:
            self._retry.watch(entry.name, entry.string("sd") or "")
        else:
            self._retry.drop(entry.name, self._by_watch)

    # --- the loop -------------------------------------------------------------------------
    def run(self) -> WatchOutcome:
        """Serve until stopped (or, with ``once``, until each queue's pass is done)."""
        previous = {s: signal.signal(s, self._on_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hup)
        read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._wake_fd = write_end
        old_wakeup = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        self._inotify = None if self.once else inotify.Inotify.open()
        self._retry = RetryWatches(self._inotify)
        selector = selectors.DefaultSelector()
        selector.register(read_end, selectors.EVENT_READ)
        if self._inotify is not None:
            selector.register(self._inotify.fd, selectors.EVENT_READ)
        try:
            for entry in self.load():
                self._start_safely(entry)
            if self.on_started is not None:
                self.on_started()
            self._loop(selector, read_end)
        finally:
            self._shutdown()
            signal.set_wakeup_fd(old_wakeup)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            selector.close()
            self._wake_fd = None
            os.close(read_end)
            os.close(write_end)
            if self._inotify is not None:
                self._inotify.close()
        return self._outcome()

    def _loop(self, selector: selectors.BaseSelector, wake_fd: int) -> None:
        next_rescan = time.monotonic() + RESCAN
        while not (self._asked_stop or self.stop.is_set()):
            if self.once and all(s.thread is None or not s.thread.is_alive()
                                 for s in self.served.values()):
                return
            timeout = 0.5 if self.once else BUSY_POLL if self.busy else RESCAN
            timeout = min(timeout, self._retry.timeout(time.monotonic()))
            for key, _ in selector.select(timeout=timeout):
                if key.fd == wake_fd:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(wake_fd, 512):
                            pass
                elif self._inotify is not None:
                    self._dispatch(self._inotify.read())
                    time.sleep(EVENT_GAP)  # a burst's events merge meanwhile (the kernel)
            for name in self._retry.ready(time.monotonic(), self.broken):
                self._start_safely(self.broken[name])
            if self._asked_reload:
                self._asked_reload = False
                self._reconfigure()
            if not self.once:
                self._retire_stopped()
                for name in list(self.busy):
                    if name in self.served:
                        self._run_or_retire(self.served[name])
            if time.monotonic() >= next_rescan:
                next_rescan = time.monotonic() + RESCAN
                self._rescan()

    def _retire_stopped(self) -> None:
        """Queues whose worker stopped on their spool: retired (said once), tried again."""
        for name, served in list(self.served.items()):
            if served.error is None:
                continue
            if served.thread is not None:  # it is ending (it woke us on its way out)
                served.thread.join(10)
            if served.thread is None or not served.thread.is_alive():
                self._retire(name, served.error, say=not served.worker.stop.is_set())

    def _rescan(self) -> None:
        """Every RESCAN: broken queues tried again, the others looked at."""
        for entry in list(self.broken.values()):
            self._start_safely(entry)
        for served in list(self.served.values()):
            self._run_or_retire(served)
            served.worker.wake()

    def _dispatch(self, events: list[inotify.Event]) -> None:
        for event in events:
            if event.mask & inotify.IN_Q_OVERFLOW:
                for served in self.served.values():
                    served.worker.wake()
                continue
            found = self._by_watch.get(event.watch)
            if found is None:
                self._retry.due(event)  # tried in the loop, when due (once, at most)
                continue
            served, kind = found
            if event.mask & _GONE:
                self._gone(served)
                continue
            if kind == "state":
                if event.name == LEASE_FILE and served.thread is None:
                    self._run_or_retire(served)  # the process that served it let go
                elif event.name in (CONTROL_FILE, JOURNAL):
                    served.worker.wake()
                continue
            if not served.worker.news(kind, event.name):
                continue  # lpfilter's own writes: a temporary file, a log or status line
            moved = event.name if kind == "spool" and event.mask & inotify.IN_MOVED_TO else None
            served.worker.wake(moved)

    def _gone(self, served: Served) -> None:
        """A watched folder of the queue was deleted or moved: say it once, and wait."""
        name = served.entry.name
        if self.served.get(name) is not served:
            return
        error = AccessError(f"queue {name}: its spool directory {served.worker.store.sd} (or"
                            " its .lpfilter folder) was removed or moved; the queue waits for"
                            " it to come back (looked for at each rescan, and on SIGHUP)")
        log.error("%s", error)
        self._retire(name, error)

    def _shutdown(self) -> None:
        """Stop taking jobs; running sends get the grace period, then are put back."""
        self.stop.set()
        if self.on_stopping is not None:
            self.on_stopping()
        deadline = time.time() + self.grace
        for served in self.served.values():
            served.server.stop(deadline)
        for served in self.served.values():
            if served.thread is not None:
                served.thread.join(max(0.0, deadline - time.time()) + 10)

    def _outcome(self) -> WatchOutcome:
        """What the run came to (see WatchOutcome): --once, whether every job printed; a
        daemon stopped by a signal, only which queues could not be served."""
        outcome = WatchOutcome(broken=dict(self.broken_why))
        if self.once:
            outcome.passes = [s.error if s.error is not None else s.summary
                              for s in self.served.values() if s.thread is not None]
            outcome.busy = list(self.busy)
        return outcome
