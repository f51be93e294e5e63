"""A queue's housekeeping: finished jobs pruned, the journal compacted (design §2.9).

A mixin of ``SpoolStore`` (store.py stays under the module size limit), as
``spool/marks.py`` is: the lease holder's worker calls ``prune`` when its batch is done
and at the end of a pass; ``prune`` compacts when the journal has grown big.
"""
from __future__ import annotations

from lpfilter import logs
from lpfilter.job import FINISHED, Job
from lpfilter.spool import journallimit

TYPE_CHECKING = False
if TYPE_CHECKING:
    import contextlib

    from lpfilter.spool.jobindex import JobIndex
    from lpfilter.spool.journal import Journal

log = logs.getLogger(__name__)


class Upkeep:
    """SpoolStore's part for keeping a queue small: prune and compact."""

    queue: str
    _index: JobIndex

    if TYPE_CHECKING:  # what the store provides
        def _writer(self, *, catch_up: bool = True) -> Journal:
            ...

        def has_data(self, job: Job) -> bool:
            ...

        def _drop(self, jobs: list[Job], *, keep_data: bool = False) -> None:
            ...

        def room(self) -> contextlib.AbstractContextManager[None]:
            ...

    def prune(self, keep: int, max_age: float, now: float, keep_recent: float, *,
              recent_max: int | None = None, eager: bool = False) -> None:
        """Keep the ``keep`` newest finished jobs (and any whose data is kept, or younger
        than ``keep_recent``: of those nobody may wait for, the ``recent_max`` newest);
        ``max_age`` > 0 also drops older ones: one GONE record and one sync for all. Then
        the journal is compacted when it has grown big (§2.9; sooner when ``eager``:
        journallimit.compact_due)."""
        journal = self._writer()
        with journal.threads:
            finished = sorted((j for j in self._index.jobs.values() if j.state in FINISHED),
                              key=lambda j: j.finished or 0.0, reverse=True)
        drop, unawaited = [], 0
        for rank, job in enumerate(finished):
            age = now - (job.finished or now)
            young = age < keep_recent
            if young and (recent_max is None or job.awaited):
                continue  # (has_data, an lstat, only for the others)
            if self.has_data(job):
                continue
            if young:
                unawaited += 1
                if unawaited <= (recent_max or 0):
                    continue
            if rank >= keep or (max_age > 0 and age > max_age):
                drop.append(job)
        if drop:  # (has_data found no data file for any of them: none to unlink)
            self._drop(drop, keep_data=True)
        with journal.threads:  # (the receivers' threads change the index meanwhile)
            due = journallimit.compact_due(journal.size, self._index.live_size(),
                                           self._index.dead_data(), eager=eager,
                                           notes=self._index.notes_size())
        if due:
            self.compact()

    def compact(self) -> None:
        """The journal rewritten as one record per job kept (the last number in its HEAD),
        replacing the old one (design §2.9); the lease holder does it, in ``prune``."""
        journal = self._writer()
        with journal.locked(), self.room():
            head, records = self._index.compacted(len(self._index.jobs))
            before = journal.size
            journal.compact(records, head)
        log.info("queue %s: journal compacted from %d to %d bytes", self.queue, before,
                 journal.size)
