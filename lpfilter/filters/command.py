"""A filter's command line and environment exactly as LPRng 3.8.B builds them
(lprng-filters.md §1, §2, §4). Pure: no files, no processes; the caller gathers a job's
facts once (``facts_for``) and runs what ``build_command`` returns.
"""
from __future__ import annotations

import time
from collections.abc import Mapping

from lpfilter.children.run import FilterCommand, program_environment
from lpfilter.errors import JobRefused
from lpfilter.filters.dollars import Lookup, Token, expand_shell, expand_words, unescape
from lpfilter.job import Job
from lpfilter.printcap.entry import Entry
from lpfilter.printcap.entrytext import entry_to_text
from lpfilter.programs import needs_shell, shell_argv, split_words, strip_prefixes
from lpfilter.structs import FrozenStruct

ROLES = ("data", "of", "lp", "banner", "accounting", "pr")
#: Letters that name one data file: absent from the OF's, an lp-pipe's, a banner's and an
#: accounting program's command line (lp-pipes lose -F too).
_PER_FILE = frozenset("Nef")
#: Formats LPRng calls invalid and prints as f (§1.2).
_AS_F = frozenset("aios")
#: Letters whose value is a number (§2, Letters: indent, width, job number). A received
#: control file's ``I``/``W`` line may hold any text, and bash or ksh evaluate a
#: variable's value as an expression in ``$((...))``, ``[[ -eq ]]`` or ``let`` (where
#: ``a[$(cmd)]`` runs cmd): such a value passes only as digits, else it is dropped, as an
#: unknown value is (LPRng's lpr refuses a non-numeric -i/-w outright). ``b l w x y``
#: are numbers lpfilter makes itself.
_NUMERIC = frozenset("IWij")


class JobFacts(FrozenStruct):
    """What the ``$`` letters of one filter run need, gathered by the caller. (A
    FrozenStruct, not a dataclass: dataclasses costs a cron pass ~5 ms of imports; a
    copy with changes is ``facts.replace(...)``.)"""

    __slots__ = _fields = ("queue", "spool_dir", "job_number", "user", "host", "job_name",
                           "title", "job_class", "file_name", "data_file", "control_file",
                           "size", "fmt", "copies", "indent", "width", "account",
                           "control_lines", "now")
    queue: str
    spool_dir: str
    job_number: str
    user: str
    host: str
    job_name: str
    title: str
    job_class: str
    file_name: str
    data_file: str
    control_file: str
    size: int
    fmt: str
    copies: int
    indent: str
    width: str
    account: str
    #: Other control-file lines by letter (``A``, ``D``, ``L``, ``M``, ``Q``, ``Z``...).
    control_lines: Mapping[str, str]
    now: float

    def __init__(self, queue: str, spool_dir: str, job_number: str, user: str, host: str,
                 job_name: str, title: str, job_class: str, file_name: str, data_file: str,
                 control_file: str, size: int, fmt: str, copies: int, indent: str = "",
                 width: str = "", account: str = "",
                 control_lines: Mapping[str, str] | None = None, now: float = 0.0) -> None:
        control_lines = {} if control_lines is None else control_lines
        self._assign(locals())

    def control(self) -> dict[str, str]:
        """Every control-file line by letter, the named fields over ``control_lines``."""
        lines = dict(self.control_lines)
        named = {"C": self.job_class, "H": self.host, "I": self.indent, "J": self.job_name,
                 "N": self.file_name, "R": self.account, "T": self.title, "W": self.width}
        lines.update({k: v for k, v in named.items() if v})
        return lines


def _number(job: Job) -> str:
    return str(int(job.id)) if job.id.isascii() and job.id.isdigit() else job.id


def facts_for(entry: Entry, job: Job, *, data_file: str, fmt: str, now: float) -> JobFacts:
    """A job's facts as LPRng's control file would carry them: ``A`` user@host+number,
    ``D`` the submit time, ``L`` the banner user unless the job asked for none, ``Q`` the
    queue. A ticket's ``extra["control"]`` (lines of a received control file) adds the
    rest (``M``, ``Z``, ``I``, ``W``...). The class is LPRng's default ``A`` when unset."""
    from lpfilter.protocols.lpdcontrol import lprng_date  # (not loaded by a pass sending none)
    host = job.host or entry.host.fqdn or "localhost"
    number = _number(job)
    lines = {"A": f"{job.user}@{host}+{number}", "D": lprng_date(job.submitted),
             "Q": entry.name}
    if not job.no_banner:
        lines["L"] = job.user
    given = job.extra.get("control")
    if isinstance(given, dict):
        lines.update({str(k)[:1]: str(v) for k, v in given.items()
                      if str(k)[:1].isupper() and len(str(k)) == 1})
    return JobFacts(
        queue=entry.name, spool_dir=entry.string("sd") or "", job_number=number,
        user=job.user, host=host, job_name=job.name, title=job.title,
        job_class=job.job_class or "A", file_name=lines.pop("N", job.name), data_file=data_file,
        control_file="", size=job.size, fmt=fmt or "f", copies=job.copies,
        indent=lines.pop("I", ""), width=lines.pop("W", ""), account=lines.pop("R", ""),
        control_lines=lines, now=now)


def filter_key(entry: Entry, fmt: str) -> str | None:
    """The printcap key of the data filter for format ``fmt`` (§1), None for no filter."""
    fmt = "f" if fmt in _AS_F or not fmt else fmt
    if fmt in "flp" and entry.string("if"):
        return "if"
    if fmt not in "flp" and entry.string(fmt + "f"):
        return fmt + "f"
    return "filter" if entry.string("filter") else None


def lprng_time(when: float) -> str:
    """``$t``: local time as ``YYYY-MM-DD-hh:mm:ss.000`` (lpd writes no milliseconds)."""
    return time.strftime("%Y-%m-%d-%H:%M:%S", time.localtime(when)) + ".000"


def _template(entry: Entry, role: str) -> str:
    """The option list appended to a filter (§2.4); none for ``pr`` (Filter_file)."""
    if role == "pr":
        return ""
    bkf = entry.flag("bkf")
    if role == "of":
        if bkf:
            return entry.string("bk_of_filter_options") or ""
        return entry.string("of_filter_options") or entry.string("filter_options") or ""
    return entry.string("bk_filter_options" if bkf else "filter_options") or ""


def raw_value(entry: Entry, name: str) -> str:
    """``${name}``: the option as stored (``%`` codes expanded, backslashes kept); ``0``
    for a key the entry does not set, as LPRng's Find_value answers."""
    option = entry.options.get(name.lower())
    if option is None or option.form == "off":
        return "0"
    if option.form == "flag":
        return "1"
    return entry.expand(option.text[len(option.key) + 1:])


def _clean(value: str) -> str:
    """No NUL reaches an argument (execve cannot pass one; a control file may hold one)."""
    return value.replace("\0", " ")


def _number_only(value: str | None) -> str | None:
    """A numeric letter's value as plain decimal digits (no leading zeros, which bash
    reads as octal), None when it is not a number."""
    if value is None or not (value.isascii() and value.isdigit()):  # (no re: see memo)
        return None
    return value.lstrip("0") or "0"


def letter_value(entry: Entry, facts: JobFacts, letter: str, role: str) -> str | list[str] | None:
    """What ``$X`` holds for this entry, job and role (§2, Letters)."""
    if (role != "data" and letter in _PER_FILE) or (role == "lp" and letter == "F"):
        return None
    if letter in _NUMERIC:
        value = facts.job_number if letter == "j" else facts.control().get(letter.upper())
        return _number_only(value)
    if letter.isupper():
        special = {"F": "o" if role == "of" else facts.fmt, "P": facts.queue}
        if letter == "S":
            return raw_value(entry, "cm") if entry.has("cm") else None
        return special.get(letter, facts.control().get(letter))
    if letter == "c":
        return ["-c"] if facts.fmt == "l" else None
    if letter in "lwxy":
        return str(entry.number({"l": "pl", "w": "pw", "x": "px", "y": "py"}[letter]))
    af = entry.string("af") or ""
    values = {"a": "" if af.startswith("|") else af, "b": str(facts.size),
              "d": facts.spool_dir, "e": facts.data_file, "f": facts.file_name,
              "h": facts.host, "k": facts.control_file, "n": facts.user,
              "s": entry.string("ps") or "", "t": lprng_time(facts.now)}
    return values.get(letter)


def _lookup(entry: Entry, facts: JobFacts, role: str, template: list[str]) -> Lookup:
    def lookup(token: Token) -> str | list[str] | None:
        name = token.name
        if name == "*":
            words, template[:] = list(template), []  # $* inside the list: nothing more
            return expand_words(words, lookup) if words else None
        if name.startswith("{"):
            inner = name[1:-1]
            if len(inner) == 1 and inner.isupper():
                value = letter_value(entry, facts, inner, role)
                return value if isinstance(value, list) else _clean(value or "")
            return _clean(raw_value(entry, inner))
        value = letter_value(entry, facts, name, role)
        return value if isinstance(value, list) else (_clean(value) if value else None)
    return lookup


def build_command(entry: Entry, key: str, facts: JobFacts, *, role: str) -> FilterCommand:
    """The argv of the filter ``key`` names, as LPRng builds it (§2): prefixes ``-$`` and
    ``ROOT``, the shell form (no option list; each expansion an environment variable the
    shell text names, never spliced into it), quoted words,
    backslashes, the role's option list appended, ``$`` tokens expanded, options with an
    empty value dropped. JobRefused when the program is not an absolute path."""
    if role not in ROLES:
        raise ValueError(f"unknown filter role {role!r}")
    text = entry.string(key) or ""
    rest, no_options, as_root = strip_prefixes(unescape(text))
    template = [] if no_options else split_words(unescape(_template(entry, role)))
    lookup = _lookup(entry, facts, role, list(template))
    if needs_shell(rest):
        shell = entry.string("shell") or "/bin/sh"
        body, values = expand_shell(rest.strip(), lookup)
        argv = shell_argv(body, shell)
        program, is_shell = shell, True
    else:
        argv = expand_words(split_words(rest) + template, lookup)
        program, is_shell, values = (argv[0] if argv else ""), False, {}
    if not program.startswith("/"):
        raise JobRefused(f"{key}={text}: the program '{program}' is not an absolute path"
                         " (LPRng refuses it too: 'bad filter - not absolute path name');"
                         " write its full path", where=str(entry.origin(key) or "") or None,
                         queue=entry.name)
    return FilterCommand(key, argv, as_root, is_shell, values)


def _hold_file(facts: JobFacts) -> str:
    """``HF``: the job ticket as LPRng writes it, ``key=value`` lines."""
    lines = dict(sorted(facts.control().items()))
    lines.update({"datafiles": facts.data_file, "hf_name": f"hfA{facts.job_number}",
                  "number": facts.job_number, "size": str(facts.size)})
    return "".join(f"{k}={_clean(v).replace(chr(10), ' ')}\n" for k, v in lines.items())


def _passed(names: str, inherited: Mapping[str, str]) -> dict[str, str]:
    import fnmatch  # (it imports re: only where an environment is built, see memo.Pattern)
    patterns = [n for n in names.replace(",", " ").replace(";", " ").split() if n]
    return {k: v for k, v in inherited.items()
            if any(fnmatch.fnmatchcase(k, p) for p in patterns)}


def filter_environment(entry: Entry, facts: JobFacts, *, inherited: Mapping[str, str],
                       login: tuple[str, str] | None = None) -> dict[str, str]:
    """The filter's whole environment (§4): nothing of ours but ``pass_env`` names and
    ``TZ``. ``login`` is (name, home) of the real uid, looked up when not given."""
    env = _passed(entry.string("pass_env") or "", inherited)
    env.update(program_environment(
        queue=facts.queue, spool_dir=facts.spool_dir, path=entry.string("filter_path") or "",
        shell=entry.string("shell") or "", printcap_text=entry_to_text(entry),
        inherited=inherited, login=login))
    env.update({"HF": _hold_file(facts), "DATAFILES": facts.data_file + " "})
    ld_path = entry.string("filter_ld_path")
    env.update({"LD_LIBRARY_PATH": ld_path} if ld_path else {})
    return {k: _clean(v) for k, v in env.items()}
