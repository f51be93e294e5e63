"""checkpc's printcap checks: what LPRng 3.8.B would reject or silently misread.

Each finding names the file:line, what LPRng makes of the text, and what to write
instead. Spool directories are checked in ``spoolcheck``; this module reads text only.
"""
from __future__ import annotations

import difflib
import itertools

from lpfilter.errors import ConfigError, LpfilterError
from lpfilter.printcap import acctarget
from lpfilter.printcap.commandline import check_command_password, cut_command_uris, filter_arguments
from lpfilter.printcap.datatypes import format_octal, is_number_word, number_word, strtol_leftover
from lpfilter.printcap.destination import (Destination, Invalid, Lpd, Socket, host_problem,
                                           redact)
from lpfilter.printcap.keys import (BSD_ONLY, FILTER_READ_KEYS, KEYS, LPRNG_OTHER_KEYS,
                                    NOT_ACTED_ON, PARSER_KEYS, is_filter_key)
from lpfilter.printcap.model import (Entry, Option, Printcap, Record, is_glob, typed_value,
                                     usable_name)
from lpfilter.printcap.nul import nul_problem
from lpfilter.printcap.pools import check_pool
from lpfilter.printcap.shellarith import check_arithmetic
from lpfilter.printcap.source import Problem
from lpfilter.programs import needs_shell, strip_prefixes

_FAILURE_ACTIONS = {"succ", "success", "abort", "remove", "hold"}
#: lpfilter's completion-wait modes for socket printers (backends/jetdirect.py).
_WAIT_MODES = ("pjl", "echo", "eof", "delay", "none")
_OCTAL_KEYS = frozenset({"spool_dir_perms", "spool_file_perms"})
#: Keys _check_accounting reads: a program, target, format or shell each.
_ACCOUNTING_KEYS = frozenset({"as", "ae", "af", "accounting_format", "shell"})


def _warn(option_or_record: Option | Record, message: str) -> Problem:
    return Problem(option_or_record.origin, message)


def _error(option_or_record: Option | Record, message: str) -> Problem:
    return Problem(option_or_record.origin, message, fatal=True)


def _check_layout(record: Record) -> list[Problem]:
    """Line-level traps: blank lines inside a backslash continuation, late '|' aliases."""
    found: list[Problem] = []
    if record.raw is None:
        return found
    pieces = record.raw.pieces
    for (_, before), (offset, line) in itertools.pairwise(pieces):
        if line.after_gap and line.text[0] not in ":|":
            found.append(Problem(line.origin, f"this line continues entry '{record.primary}'"
                                 " because the line before the blank or comment line ends in"
                                 f" '\\' ({before.origin}): LPRng reads '{line.text[:30]}' as"
                                 " options of that entry; remove that backslash"))
        elif line.text[0] == "|" and ":" in record.raw.text[:offset]:
            found.append(Problem(line.origin, f"'{line.text[:30]}' comes after options, so it"
                                 " is not an alias: LPRng appends it to the option before;"
                                 " put aliases on the entry's first line"))
    return found


def _check_key(option: Option) -> list[Problem]:
    name = option.name
    if name.startswith(("server.", "client.")):
        name = name.split(".", 1)[1]
    if not name:
        return [_warn(option, f"option '{option.text[:30]}' has no key; LPRng ignores it")]
    if (name in KEYS or name in PARSER_KEYS or name in LPRNG_OTHER_KEYS or is_filter_key(name)
            or name in FILTER_READ_KEYS):
        return []
    if name in BSD_ONLY:
        return [_warn(option, f"{name} has no meaning in LPRng 3.8 and is ignored"
                      f" ({BSD_ONLY[name]})")]
    if "|" in name:
        return [_error(option, f"'{option.text[:40]}' looks like the rest of a printer name:"
                       " a ':' inside the name ends it early (LPRng reads the rest as"
                       " options); rename the queue without ':'")]
    if name.replace("-", "_") in KEYS:
        return [_warn(option, f"{name}: '-' and '_' are not interchangeable in printcap keys;"
                      f" LPRng ignores this key; write {name.replace('-', '_')}")]
    close = did_you_mean(name)
    hint = f"; did you mean '{close}'?" if close else ""
    return [_warn(option, f"unknown key '{name}': neither LPRng nor lpfilter knows it, so"
                  f" both ignore it{hint}")]


#: Every key name checkpc knows: the candidates for "did you mean".
_KNOWN = [*KEYS, *sorted(PARSER_KEYS), *sorted(LPRNG_OTHER_KEYS)]


def did_you_mean(name: str) -> str | None:
    """The known key ``name`` is most likely a typo of: fewest edits (a swap of two
    neighbours is one), then the same length (``pgl`` is ``pjl`` before ``pl``)."""
    close = difflib.get_close_matches(name, _KNOWN, n=8, cutoff=0.6)
    if not close:
        return None
    return min(close, key=lambda k: (_edits(name, k), abs(len(k) - len(name))))


def _edits(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, changes, neighbour swaps."""
    rows = [list(range(len(b) + 1))]
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            cost = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, rows[-2][j - 2] + 1)
            row.append(cost)
        rows.append(row)
    return rows[-1][-1]


def _check_acted_on(option: Option) -> list[Problem]:
    """A note for a key lpfilter's own spool does not act on (filters, banners, sv...),
    when it is set to something that would have an effect."""
    name = option.name
    if name not in NOT_ACTED_ON:
        return []
    value = typed_value(option)
    if value in (None, False, 0, "", "0"):
        return []
    if isinstance(value, str) and _runs_lpfilter_filter(value):
        return []  # lpfilter's own filter: the spool already does what it does
    why = NOT_ACTED_ON[name]
    return [Problem(option.origin, f"{option.text[:40]}: not acted on by lpfilter's own spool"
                    f" (watch, print) yet: {why}; only LPRng's lpd uses it", note=True)]


def _runs_lpfilter_filter(command: str) -> bool:
    """``/usr/bin/lpfilter [options] filter ...``: LPRng's lpd running lpfilter's backends."""
    return filter_arguments(command) is not None


def _check_value(option: Option) -> list[Problem]:
    key = KEYS.get(option.name)
    found: list[Problem] = []
    nul = nul_problem(option)
    if nul:
        return [_error(option, nul)]
    if option.swallowed:
        found.append(_warn(option, f"a value ending in a backslash escapes the ':' after it:"
                           f" LPRng reads '{option.text[:50]}' as one option and loses the"
                           " option that follows it in alphabetical order of keys (LPRng"
                           " sorts an entry's options before it splits them again), not"
                           " the next one in the file; remove the backslash"))
    if option.rejoined:
        shown = redact(option.value or "")
        found.append(_warn(option, f"lp={shown.replace(chr(92) + ':', ':')}: every unescaped"
                           " ':' ends a printcap option, so LPRng's rules read a short lp and"
                           " junk options here; lpfilter reads it as meant, but write"
                           f" :lp={shown}: (LPRng itself has no ftp://, socket:// or"
                           " lpd:// forms)"))
    if option.form == "value" and option.value and is_filter_key(option.name):
        return found + _check_filter(option, option.value)  # (xf, vf...: in no key table)
    if key is None or option.form != "value" or not option.value:
        return found
    text = option.value
    if option.name in _OCTAL_KEYS and text.strip()[:1] not in ("0", ""):
        found.append(_warn(option, f"{option.text} is a decimal number to LPRng"
                           f" (mode {format_octal(number_word(text))}); write"
                           f" {option.name}#0{text.strip()} for an octal mode"))
    if key.type in "NF":
        word = text.strip().lower()
        if word in ("on", "off"):
            read = number_word(text)
            right = f":{option.name}:" if word == "on" else f":{option.name}@:"
            found.append(_warn(option, f"{option.name}={text} reads as {read}: LPRng knows"
                               f" yes/no/true/false but not on/off; write {right}"))
        elif not is_number_word(text):
            leftover = strtol_leftover(text.strip())
            found.append(_warn(option, f"{option.name}={text} reads as {number_word(text)}"
                               f" (LPRng ignores '{leftover}'); write a plain number"))
        elif (text.strip().lstrip("+-").startswith("0") and len(text.strip()) > 1
              and not text.strip().lower().startswith(("0x", "-0x", "+0x"))
              and option.name not in _OCTAL_KEYS):
            found.append(_warn(option, f"{option.name}={text} is octal to LPRng (a leading 0),"
                               f" so it means {number_word(text)}; drop the leading 0"))
    elif option.name == "send_failure_action" and not text.startswith("|"):
        word = text.strip().lower()
        if word.removeprefix("j") not in _FAILURE_ACTIONS:
            found.append(_warn(option, f"send_failure_action={text} is not a word LPRng knows,"
                               " so it means remove (the job is dropped); use hold, abort,"
                               " remove, success or |program"))
    elif option.name in _ACCOUNTING_KEYS:
        found.extend(_check_accounting(option, text))
    elif option.name == "waitend" and text.strip().lower() not in _WAIT_MODES:
        found.append(_warn(option, f"waitend={text} is not a completion mode lpfilter knows, so"
                           " it waits for the printer to close the connection (eof); use one of"
                           f" {', '.join(_WAIT_MODES)}"))
    return found


def _check_filter(option: Option, text: str) -> list[Problem]:
    """LPRng runs a filter only from an absolute path; '$' starts an option expansion."""
    rest = strip_prefixes(text)[0]
    words = rest.split()
    if not words or needs_shell(rest):
        return []
    program = words[0]
    if program.startswith("$"):
        return [_warn(option, f"{option.name}={text}: LPRng expands '{program[:2]}' in a filter"
                      " command (to a job value), so the program is not an absolute path and"
                      " the job is recorded as printed without running it; write the full"
                      " path")]
    if not program.startswith("/"):
        return [_warn(option, f"{option.name}={text}: the program must be an absolute path;"
                      " LPRng refuses it and records the job as printed")]
    return []


def _check_accounting(option: Option, text: str) -> list[Problem]:
    """Values of the accounting keys and of ``shell`` that no program, port or format
    can come of: lpfilter logs each job's failure or falls back, LPRng fails too."""
    name = option.name
    if name == "accounting_format":
        problem = acctarget.format_problem(text)
        return [_warn(option, problem)] if problem else []
    if name == "shell":
        if text.strip().startswith("/"):
            return []
        return [_warn(option, f"shell={text}: the shell must be an absolute path; the jobs of"
                      " a filter or lp=| command it would run (one with < > | ; or a leading"
                      " '(') are refused; write its full path, e.g. /bin/sh")]
    if name == "af" and not text.lstrip().startswith("|"):
        try:
            acctarget.parse_target(text)
        except ConfigError as exc:
            return [_warn(option, exc.message)]
        return []
    rest = strip_prefixes(text)[0] if text.lstrip()[:1] == "|" else ""
    words = rest.split()
    if not words or needs_shell(rest) or words[0].startswith("/"):
        return []
    return [_warn(option, f"{name}={text}: the accounting program '{words[0]}' is not an"
                  " absolute path: LPRng refuses to run it and lpfilter logs the failure, so"
                  " no accounting is done; write its full path")]


def _check_names(pc: Printcap) -> list[Problem]:
    """Names that LPRng gives to a later entry, and queues missing from the printer list."""
    found: list[Problem] = []
    first_owner: dict[str, Record] = {}
    listed = {n.lower() for n in pc.printer_names()} if "all" not in {
        r.primary.lower() for r in pc.records} else None
    for record in pc.records:
        for name in record.names[1:]:
            if not usable_name(name):
                continue  # a description with blanks: it names nothing, so nothing clashes
            lowered = name.lower()
            earlier = first_owner.get(lowered)
            owner = pc.owner(name)
            if earlier is not None and owner != earlier.primary.lower() and (
                    earlier.primary.lower() != record.primary.lower()):
                found.append(_warn(earlier, f"name '{name}' of '{earlier.primary}' is also used"
                                   f" by '{record.primary}' ({record.origin}); LPRng gives it to"
                                   " the later entry"))
            first_owner.setdefault(lowered, record)
        primary = record.primary
        if (listed is not None and primary.lower() not in listed and primary[0].isalnum()
                and primary.lower() != "all" and primary == pc.records_of(primary)[0].primary):
            found.append(_warn(record, f"'{primary}' was already used as a name of another"
                               " entry, so LPRng leaves it out of the printer list (lpq -a,"
                               " queue start-up); rename it or the other entry's alias"))
        first_owner.setdefault(primary.lower(), record)
    return found


def _forwarding(entry: Entry, destination: Destination) -> list[Problem]:
    """Where lp, rm and rp disagree (lprng-printcap.md §5, Fix_Rm_Rp_info): lp wins."""
    lp, rm, rp = (entry.options.get(k) for k in ("lp", "rm", "rp"))
    if not lp or not lp.value:
        return []
    if rm and rm.value and "@" not in lp.value:
        return [Problem(lp.origin, f"queue {entry.name} sets both lp and rm: LPRng prints"
                        " to lp and ignores rm and rp; remove one")]
    if rm and rm.value:
        return [Problem(lp.origin, f"queue {entry.name} sets both lp and rm: LPRng forwards"
                        f" to lp={redact(lp.value)} and ignores rm={redact(rm.value)}"
                        " (and rp); remove rm")]
    if rp and rp.value and isinstance(destination, Socket):
        return [Problem(rp.origin, f"queue {entry.name}: rp={rp.value} means nothing on a"
                        f" socket printer (lp={redact(lp.value)}); for LPD forwarding write"
                        f" lp={rp.value}@{destination.host}, else remove rp")]
    return []


def _check_entry(entry: Entry) -> list[Problem]:
    found: list[Problem] = []
    destination = entry.destination()
    lp, rm = entry.options.get("lp"), entry.options.get("rm")
    where = (lp if lp and lp.value else None) or (rm if rm and rm.value else None)
    if isinstance(destination, Invalid):
        found.append(Problem(entry.origin("lp"), f"queue {entry.name}: lp={destination.display()}:"
                             f" {destination.reason}", fatal=True))
    elif (isinstance(destination, (Socket, Lpd)) and where is not None
          and (bad := host_problem(destination.host))):
        found.append(Problem(where.origin, f"queue {entry.name}: {where.key}="
                             f"{redact(where.value or '')}: {bad}, so no job can ever reach it"
                             " (they would wait as for a printer that is away); fix the host"
                             " name"))
    elif isinstance(destination, Lpd) and lp and lp.value and destination.queue.isdigit():
        found.append(Problem(lp.origin, f"lp={redact(lp.value)}: LPRng reads this as LPD queue"
                             f" '{destination.queue}' on {destination.host}, not a raw socket"
                             " (that is BSD lpd's meaning); for a JetDirect socket write"
                             f" lp={destination.host}%{destination.queue}"))
    waitend = entry.options.get("waitend")
    if (waitend and (waitend.value or "").strip().lower() == "pjl" and not entry.flag("pjl")):
        found.append(Problem(waitend.origin, f"queue {entry.name}: waitend=pjl needs :pjl: (the"
                             " job must be wrapped in PJL for the printer to report its end);"
                             " without it lpfilter waits for eof"))
    found.extend(_forwarding(entry, destination))
    found.extend(check_pool(entry))
    if where is None and not entry.has("sv"):
        found.append(Problem(entry.where, f"queue {entry.name}: no :lp, :rm or :sv entry; LPRng"
                             " sends its jobs to the LPD queue of the same name on localhost"))
    return found


def _check_list(pc: Printcap) -> list[Problem]:
    """The ``all`` entry as LPRng reads it, and names that are patterns, not queues."""
    found: list[Problem] = []
    if pc.owner("all") is not None:
        try:
            entry = pc.lookup("all")
        except LpfilterError:
            return found  # check_printcap reports the broken tc
        option = entry.options.get("all")
        where = option.origin if option else entry.where
        if option is None or option.text[len(option.key):][:1] != "=":
            shown = f"'{option.text[:30]}'" if option else "no all= option"
            fix = (option.value if option and option.form == "value" else "") or "q1,q2"
            found.append(Problem(where, f"entry 'all' has {shown}: LPRng reads the printer"
                                 " list only from all=NAME,NAME..., so its list is the one"
                                 f" name 'all'; write :all={fix}:"))
        for name in pc.printer_names():
            if pc.resolve(name) is None:
                found.append(Problem(where, f"all= lists '{name}', but no entry defines it"
                                     " and no glob or '*' entry matches it: LPRng keeps it"
                                     " in the printer list (lpq -a shows an error for it,"
                                     " lpd skips it) and lpfilter skips it too; define the"
                                     " printer or remove it from all="))
    for record in pc.records:
        primary = record.primary
        if (is_glob(primary) and primary != "*" and primary[0].isalnum()
                and record is pc.records_of(primary)[0]):
            found.append(_warn(record, f"'{primary}' is a pattern: lpfilter serves each"
                               " name it matches as a queue of that name (%P is the name);"
                               " LPRng's lpd refuses a pattern as a server queue name (its"
                               f" %P would be '{primary}'); put the pattern in an alias"
                               " to give the queue one name"))
    return found


def check_printcap(pc: Printcap) -> list[Problem]:
    """Every problem of the printcap, in file order where it has one."""
    found: list[Problem] = list(pc.problems)
    for record in pc.all_records:
        found.extend(_check_layout(record))
        cut, junk = cut_command_uris(record)
        found.extend(cut)
        for index, option in enumerate(record.options):
            if index in junk:
                continue  # the rest of a cut URI, said once (a password in it masked)
            found.extend(_check_key(option))
            found.extend(_check_value(option))
            found.extend(_check_acted_on(option))
            found.extend(check_command_password(option))
            found.extend(check_arithmetic(option))
    found.extend(_check_names(pc))
    found.extend(_check_list(pc))
    for name in pc.printer_names():
        if pc.resolve(name) is None:
            continue  # _check_list said so, with the all= line
        try:
            entry = pc.lookup(name)
        except LpfilterError as exc:
            found.append(Problem(None, str(exc), fatal=True))
            continue
        found.extend(_check_entry(entry))
    unique: dict[str, Problem] = {}
    for problem in found:
        unique.setdefault(str(problem), problem)
    return list(unique.values())
