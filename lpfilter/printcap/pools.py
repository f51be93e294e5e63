"""Printer pools as the printcap writes them: LPRng's load balance queues.

A queue with ``sv=q1,q2`` is a pool: its jobs print on the printers of its *server
queues* q1 and q2 (each with its own ``lp=`` and settings); a server queue says
``ss=POOL``, naming the pool it serves, and still prints jobs queued to it directly
(LPRng Reference Manual 12.14, "Printer Load Balancing"). A pool's own ``lp``/``rm`` are
not used. The spool side is ``lpfilter/spool/pool.py``; this module only reads entries.
"""
from __future__ import annotations


from lpfilter.errors import LpfilterError
from lpfilter.printcap.datatypes import split_list
from lpfilter.printcap.source import Problem

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.printcap.entry import Entry


def server_names(entry: Entry) -> list[str]:
    """The server queues ``sv`` lists (split on commas, blanks and ';', as LPRng splits
    lists), each once; [] for a queue that is no pool (no ``sv``, ``sv@``, ``sv=``)."""
    option = entry.options.get("sv")
    if option is None or option.form != "value" or not option.value:
        return []
    names: list[str] = []
    for name in split_list(entry.expand(option.value)):
        if name.lower() not in (n.lower() for n in names):
            names.append(name)
    return names


def is_pool(entry: Entry) -> bool:
    return bool(server_names(entry))


def servers(entry: Entry) -> tuple[list[Entry], list[str]]:
    """The pool's server queues as entries, and why each one that cannot serve is left
    out: a name no entry answers to, the pool itself, or a queue that is a pool too."""
    found: list[Entry] = []
    problems: list[str] = []
    printcap = entry.printcap
    for name in server_names(entry):
        if printcap is None:
            problems.append(f"sv={name}: the entry was not looked up in a printcap")
            continue
        try:
            server = printcap.lookup(name)
        except LpfilterError as exc:
            problems.append(f"sv lists '{name}': {exc}")
            continue
        if server.name.lower() == entry.name.lower():
            problems.append(f"sv lists '{name}', the pool itself")
        elif is_pool(server):
            problems.append(f"sv lists '{name}', which is a pool itself (it has sv=); a"
                            " pool's servers must be queues with a printer")
        else:
            found.append(server)
    return found, problems


def same_servers(one: Entry, other: Entry) -> bool:
    """Do two entries of a queue (before and after a printcap reread) have the same server
    queues, set up alike? (A pool restarts when one of its servers changes.)"""
    if not is_pool(one) and not is_pool(other):
        return True
    first, second = servers(one)[0], servers(other)[0]
    return [(s.name, s.settings()) for s in first] == [(s.name, s.settings()) for s in second]


def check_pool(entry: Entry) -> list[Problem]:
    """checkpc: a pool's ``sv`` names queues that exist and can serve; ``lp`` on a pool is
    not used; a server's ``ss`` names its pool."""
    found: list[Problem] = []
    names = server_names(entry)
    where = entry.origin("sv") or entry.where
    if names:
        members, problems = servers(entry)
        found.extend(Problem(where, f"queue {entry.name}: {why}; its jobs print only on the"
                             " other servers (none: they stay queued); fix sv", fatal=True)
                     for why in problems)
        for key in ("lp", "rm"):
            option = entry.options.get(key)
            if option is not None and option.value:
                found.append(Problem(option.origin, f"queue {entry.name} is a pool (sv=...):"
                                     f" its jobs print on its servers' printers, so {key}"
                                     f" is not used; remove {key}"))
        for member in members:
            served = member.string("ss") or ""
            if served.lower() != entry.name.lower():
                shown = f"ss={served}" if served else "no ss"
                found.append(Problem(member.origin("ss") or member.where,
                                     f"queue {member.name} serves pool {entry.name} (its sv"
                                     f" lists it) but has {shown}; lpfilter sends it the"
                                     " pool's jobs either way, LPRng's manual has each"
                                     f" server say ss={entry.name}: add it"))
    found.extend(_check_server(entry))
    return found


def _check_server(entry: Entry) -> list[Problem]:
    """A queue with ``ss=POOL``: POOL must be a pool whose ``sv`` lists it."""
    option = entry.options.get("ss")
    if option is None or option.form != "value" or not option.value or entry.printcap is None:
        return []
    try:
        pool = entry.printcap.lookup(option.value)
    except LpfilterError:
        return [Problem(option.origin, f"queue {entry.name}: ss={option.value} names no"
                        " queue; ss names the pool (a queue with sv=) this queue serves")]
    if entry.name.lower() not in (n.lower() for n in server_names(pool)):
        return [Problem(option.origin, f"queue {entry.name}: ss={option.value}, but the sv"
                        f" of {pool.name} does not list {entry.name}, so no pool job prints"
                        f" here; add it to sv of {pool.name} or remove ss")]
    return []


def lpq_note(entry: Entry) -> str:
    """What LPRng's lpq adds after a pool's or a server's name: "  (subservers lp2, lp3)",
    "  (serving lp)"."""
    names = server_names(entry)
    if names:
        return f"  (subservers {', '.join(names)})"
    served = entry.options.get("ss")
    return f"  (serving {served.value})" if served and served.form == "value" and (
        served.value) else ""


def describe(entry: Entry) -> str:
    """How status names a pool's destination: "pool of q1, q2"."""
    return "pool of " + ", ".join(server_names(entry))
