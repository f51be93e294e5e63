"""Which filters, banners and framing one job gets under lpfilter's own spool.

LPRng's choices (lprng-filters.md §1; LPRng printjob.c ``Print_job``, ``Print_banner``):
the data filter by the job's format letter (``command.filter_key``); format ``p`` first
through ``pr``; ``of`` for the pieces around the data. A banner needs a banner name (the
job did not ask for none with ``print -h``/no L line, or ``ab``) and no ``sh``; the start
banner (unless ``hl``) comes from ``bs`` or ``bp``, the end banner (with ``hl``, or when
``be`` is set) from ``be`` or ``bp``. Without a banner program LPRng prints the short
banner line ``bl`` (its ``$`` tokens expanded) when ``sb`` is set and nothing otherwise;
lpfilter does the same, and prints its plain built-in text banner (user, job, host, date,
queue) when ``generate_banner`` is set instead.

A queue forwarding over LPD sends its jobs as spooled unless ``lpd_bounce``: then they
are filtered first, as LPRng's bounce queues do. A job with nothing to run (no filter, no
banner, no ``p`` format) goes the old way: the backend sends the spooled file itself.
"""
from __future__ import annotations

import time

from lpfilter.backends.framing import framing
from lpfilter.children import run
from lpfilter.children.run import FilterCommand
from lpfilter.filters.command import (JobFacts, build_command, facts_for, filter_environment,
                                      filter_key, letter_value)
from lpfilter.filters.dollars import Token, expand_words
from lpfilter.filters.feed import Plan
from lpfilter.programs import split_words
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from lpfilter.job import Job
    from lpfilter.printcap import Entry

#: The OF filter's stop (and end) wait when the queue sets no stall limit.
OF_WAIT_DEFAULT = 300.0
#: Format letters LPRng takes for ``f`` (with a status line saying so).
BAD_FORMATS = frozenset("aios")


def wants_banner(entry: Entry, job: Job) -> bool:
    """LPRng's ``do_banner``: no ``sh``, and a banner name (the job's, or ``ab``)."""
    return not entry.flag("sh") and (not job.no_banner or entry.flag("ab"))


def _may_banner(entry: Entry) -> bool:
    """Does the queue make any banner (``_banner`` for a start or an end: not None)?"""
    return (entry.flag("sb") or entry.flag("generate_banner")
            or any(entry.string(key) for key in ("bs", "be", "bp")))


def _banner(entry: Entry, job: Job, facts: JobFacts, program_key: str | None,
            now: float) -> FilterCommand | bytes | None:
    """One banner: its program's command, LPRng's short line, the built-in page, or none."""
    for key in (program_key, "bp"):
        if key and entry.string(key):
            return build_command(entry, key, facts, role="banner")
    if entry.flag("sb"):
        return short_banner(entry, facts)
    if entry.flag("generate_banner"):
        return text_banner(entry, job, now)
    return None


def short_banner(entry: Entry, facts: JobFacts) -> bytes:
    """LPRng's short banner: the ``bl`` line (default ``$-C:$-n Job: $-J Date: $-t``) with
    its ``$`` tokens expanded, and a newline (Print_banner)."""
    def lookup(token: Token) -> str | list[str] | None:
        if len(token.name) != 1:
            return None
        return letter_value(entry, facts, token.name, "banner")
    words = expand_words(split_words(entry.string("bl") or ""), lookup)
    return (visible(" ".join(words)) + "\n").encode("utf-8", "replace")


def text_banner(entry: Entry, job: Job, now: float) -> bytes:
    """lpfilter's plain banner page: who, what, where, when; then a form feed."""
    rows = [("User", job.user), ("Job", f"{job.name} ({entry.name}-{job.id})"),
            ("Title", job.title), ("Class", job.job_class), ("Host", job.host),
            ("Date", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))),
            ("Queue", entry.name)]
    text = "".join(f"{label + ':':<7} {visible(value)}\n" for label, value in rows if value)
    form_feed = framing(entry).separator or b"\f"
    return b"\n" + text.encode("utf-8", "replace") + form_feed


def pr_command(entry: Entry, facts: JobFacts) -> FilterCommand | None:
    """Format ``p``'s formatter (``pr``), built as every filter is but with no option list
    (LPRng's Filter_file)."""
    if not (entry.string("pr") or "").strip():
        return None
    return build_command(entry, "pr", facts, role="pr")


def produces(entry: Entry, job: Job, kind: str) -> bool:
    """Can anything make this job's bytes (a data filter, ``pr``, ``of``, a banner)? From
    the printcap and the job's format alone: most queues' every job gets no, and then
    neither its facts nor its data file's relative name are made (~5 % of a worker's
    time a small job). Yes does not promise a plan (``plan_for`` may still find none)."""
    if kind == "lpd" and not entry.flag("lpd_bounce"):
        return False
    fmt = job.print_format or "f"
    fmt = "f" if fmt in BAD_FORMATS else fmt
    return (filter_key(entry, fmt) is not None or bool(entry.string("of"))
            or (wants_banner(entry, job) and _may_banner(entry))
            or (fmt == "p" and bool((entry.string("pr") or "").strip())))


def plan_for(entry: Entry, job: Job, *, data_file: str, kind: str, stall: float,
             environ: Mapping[str, str], now: float | None = None) -> Plan | None:
    """The production for one job, or None when it needs none (see the docstring)."""
    if not produces(entry, job, kind):
        return None
    now = time.time() if now is None else now
    fmt = job.print_format or "f"
    notes: tuple[str, ...] = ()
    if fmt in BAD_FORMATS:
        notes = (f"bad data file format '{visible(fmt)}', using 'f' format",)
        fmt = "f"
    key = filter_key(entry, fmt)
    facts = facts_for(entry, job, data_file=data_file, fmt=fmt, now=now)
    data = build_command(entry, key, facts, role="data") if key else None
    pr = pr_command(entry, facts) if fmt == "p" else None
    of = build_command(entry, "of", facts, role="of") if entry.string("of") else None
    start = end = None
    if wants_banner(entry, job):  # (its filters' HF names the user even with no banner)
        # ``ab`` without a banner name: LPRng names the job's user (Print_job).
        facts = facts.replace(control_lines={"L": job.user, **facts.control_lines})
        if not entry.flag("hl"):
            start = _banner(entry, job, facts, "bs", now)
        if entry.flag("hl") or entry.string("be"):
            end = _banner(entry, job, facts, "be", now)
    if data is None and pr is None and of is None and start is None and end is None:
        return None
    frame = framing(entry)
    sd = entry.string("sd") or "."
    return Plan(data=data, pr=pr, of=of, suspend=entry.flag("suspend_of_filter"),
                start_banner=start, end_banner=end, leader=frame.leader,
                separator=frame.separator, trailer=frame.trailer, copies=job.copies,
                env=filter_environment(entry, facts, inherited=environ), cwd=sd,
                owner=run.filter_owner(entry, sd),
                of_wait=stall if stall > 0 else OF_WAIT_DEFAULT, notes=notes)
