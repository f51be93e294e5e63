"""A remove request (RFC 1179 §5.5): which jobs it may cancel, and the answer text.

Rights. Over TCP the agent and the job's user are only what clients claim, so a claimed
user may remove only jobs with that user that came from the same address (the peer
address recorded with a received job); a claimed ``root`` gets no more. On the local
socket the kernel says who asks: root and the spool's owner may remove every job, others
their own (job user = the peer's login name). Jobs are cancelled as ``lpfilter cancel``
does: under the queue's ticket lock; one being printed is left a cancel request that its
worker acts on.

Which jobs (LPRng's lprm and lpd): job numbers and user names pick jobs, ``all`` every
job the asker may remove; an empty list the asker's first removable job.
"""
from __future__ import annotations

from lpfilter import logs
from lpfilter.job import Job
from lpfilter.server.status import job_number, owner_id, pending, selected, server_name
from lpfilter.spool.jobctl import change
from lpfilter.spool.records import QueueRecords
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.printcap import Entry
    from lpfilter.server.peer import Peer
    from lpfilter.spool.store import SpoolStore

log = logs.getLogger(__name__)


def origin(job: Job) -> str:
    """The address a received job came from ("" for a job made on this host)."""
    return job.peer


def may_remove(peer: Peer, agent: str, job: Job, owner: int) -> bool:
    """The rights above, for one job (a client of this host whose owner is not known:
    none)."""
    if peer.local:
        return peer.uid in (0, owner) or job.user == peer.user
    return (bool(agent) and not peer.anonymous and job.user == agent
            and origin(job) == peer.address)


def remove_jobs(entry: Entry, store: SpoolStore, peer: Peer, agent: str,
                items: tuple[str, ...]) -> str:
    """Cancel what the request picks and may remove; the answer, one line a job."""
    host = server_name(entry)
    lines = [f"Printer {visible(entry.name)}@{host}:"]
    records = QueueRecords(entry)
    try:
        with store.tickets_locked():
            jobs = pending(store)
            every = "all" in items
            named = tuple(i for i in items if i != "all")
            picked = jobs if every and not named else [j for j in jobs if selected(j, named)]
            allowed = [j for j in picked if may_remove(peer, agent, j, store.owner)]
            if not items:
                allowed = allowed[:1]
            allowed_ids = {j.id for j in allowed}
            for job in picked:
                who = owner_id(job, host)
                if job.id not in allowed_ids:
                    if str(job_number(job)) in {i.lstrip("0") or "0" for i in named}:
                        lines.append(f"  no permission to remove '{who}'")
                        log.info("%s: remove %s-%s for %s: no permission", peer,
                                 visible(store.queue), job.id, _asker(peer, agent))
                    continue
                said = cancel(store, records, job, peer, agent)
                lines.append(f"  dequeued '{who}'" + (f" ({said})" if said else ""))
    finally:
        records.close()
    return "".join(f"{line}\n" for line in lines)


def cancel(store: SpoolStore, records: QueueRecords, job: Job, peer: Peer, agent: str) -> str:
    """Cancel one job as ``lpfilter cancel`` does (``spool.jobctl``); "" or a word on how
    (a job being printed is stopped by its worker)."""
    said = change(store, records, job, "cancel")
    log.info("%s: remove %s-%s for %s: %s", peer, visible(store.queue), job.id,
             _asker(peer, agent), said)
    return "" if said == "cancelled" else said


def _asker(peer: Peer, agent: str) -> str:
    """Who a remove is for, as the log says it: the kernel's user, else the claimed one."""
    return str(peer.user) if peer.local else visible(agent)
