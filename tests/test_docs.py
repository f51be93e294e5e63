"""The manual pages and the example printcap stay true to the code.

* both man pages render with groff without a single warning;
* lpfilter-printcap(5) lists every key of the key table, with its type and default;
* lpfilter(1) documents every command, alias and option, the job states, the
  environment of pipe programs, the accounting line, and exactly the exit statuses;
* etc/printcap.example loads without problems and checkpc is happy with it;
* etc/lpfilter.service and etc/lpfilter.cron run ``lpfilter watch`` with options the
  parser accepts;
* the socket printer sections of both pages name lpfilter's own keys and the waitend modes,
  and the FTP printer sections its ftp_* keys, what "sent" means and how errors end;
* README's first command ends with ``lpfilter demo``, and ``lpfilter demo`` works; the
  tour's commands are ones the parser accepts;
* ``lpfilter filter``: its options, its three printcap forms (in the page, in the example
  printcap, read as lpd would pass them), LPRng's exit codes, the status lines, the
  accounting line and the differences from ifhp are documented, and README says how.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from lpfilter import cli, printcap
from lpfilter.job import STATES, Job
from lpfilter.printcap.check import check_printcap
from lpfilter.printcap.datatypes import format_octal
from lpfilter.printcap.destination import Device, Ftp, Lpd, Pipe, Socket
from lpfilter.printcap.keys import BSD_ONLY, KEYS, PARSER_KEYS
from lpfilter.spool.records import QueueRecords
from lpfilter.status import ExitStatus

ROOT = Path(__file__).resolve().parents[1]
MAN1 = ROOT / "man" / "lpfilter.1"
MAN5 = ROOT / "man" / "lpfilter-printcap.5"
EXAMPLE = ROOT / "etc" / "printcap.example"
SERVICE = ROOT / "etc" / "lpfilter.service"
CRON = ROOT / "etc" / "lpfilter.cron"
README = ROOT / "README.md"

# The queues of etc/printcap.example, in file order, and where each one prints.
EXAMPLE_QUEUES = {
    "laser": Socket("jetdirect.example", 9100),
    "dotmatrix": Socket("jetdirect.example", 9101),
    "color": Socket("color.example", 9100),
    "ftplaser": Ftp("printer.example", 21, "PORT1"),
    "usb": Device("/dev/usb/lp0"),
    "batch": Device("/dev/usb/lp0"),
    "handoff": Pipe("/usr/bin/lpr -Pother"),
    "remote": Lpd("raw", "printhost.example"),
    "remote5515": Lpd("raw", "printhost.example", 5515),
    "remotelp": Lpd("lp", "printhost.example"),
    # For LPRng's lpd (lpfilter filter); lpfilter's reader loads them too.
    "jdpipe": Pipe("/usr/bin/lpfilter filter printer.example%9100"),
    "ftppipe": Pipe("/usr/bin/lpfilter filter ftp\\://printer.example/PORT1"),
    "jdfilter": Socket("printer.example", 9100),
}

_ESCAPE = re.compile(r"\\(f(?:\[[^\]]*\]|\(..|.)|\(..|.)")
_SPECIAL = {"(aq": "'", "(dq": '"', "(bu": "*", "(lq": '"', "(rq": '"', "(em": "--"}


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    if code.startswith("f") or code in ("&", "c"):
        return ""
    if code == "e":
        return "\\"
    if code in ("~", " "):
        return " "
    return _SPECIAL.get(code, code)


def roff_text(source: str) -> str:
    """Roff source with escapes resolved (``\\-`` to ``-``, ``\\e`` to ``\\``, fonts dropped)."""
    return _ESCAPE.sub(_unescape, source)


def section(source: str, title: str, level: str = "SH") -> str:
    """The source of one ``.SH``/``.SS`` section, up to the next heading of that level."""
    pattern = rf'(?ms)^\.{level} "?{re.escape(title)}"?\n(.*?)(?=^\.SH |^\.{level} |\Z)'
    match = re.search(pattern, source)
    assert match, f"no {level} section {title!r}"
    return match.group(1)


def mentions(text: str, word: str) -> bool:
    """``word`` occurs in ``text`` on its own (``-v`` does not count inside ``--verbose``)."""
    return re.search(rf"(?<![\w.-]){re.escape(word)}(?![\w-])", text) is not None


# --- (a) rendering ------------------------------------------------------------------------

@pytest.mark.parametrize("page", [MAN1, MAN5], ids=lambda p: p.name)
def test_man_page_renders_without_warnings(page: Path) -> None:
    groff = shutil.which("groff")
    if groff is None:
        pytest.fail("groff is not installed; install groff-base (apt-get install groff-base)"
                    " to check the manual pages")
    result = subprocess.run([groff, "-man", "-ww", "-z", str(page)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0
    assert result.stderr == "", f"groff warnings for {page.name}:\n{result.stderr}"


# --- (b) the key table ------------------------------------------------------------------

_TYPE_WORDS = {"S": "string", "N": "number", "F": "flag"}
_KEY_ENTRY = re.compile(
    r"(?m)^\.TP\n\.B (\S+)\n\((string|number|flag), (no default|default (.*))\)$")


def _documented_default(key) -> str:  # noqa: ANN001 - a keys.Key
    if key.default is None:
        return "no default"
    if key.type == "F":
        return "default " + ("on" if key.default else "off")
    if key.type == "N":
        shown = format_octal(key.default) if key.name.endswith("_perms") else str(key.default)
        return f"default {shown}"
    return f'default "{key.default}"'


def test_every_key_is_in_the_printcap_page_with_type_and_default() -> None:
    table = section(MAN5.read_text(encoding="utf-8"), "Key table", level="SS")
    documented = {name: (type_, roff_text(default))
                  for name, type_, default, _ in _KEY_ENTRY.findall(table)}
    assert sorted(set(KEYS) - set(documented)) == [], "keys missing from lpfilter-printcap.5"
    assert sorted(set(documented) - set(KEYS)) == [], "page lists keys that keys.KEYS lacks"
    for name, key in KEYS.items():
        type_, default = documented[name]
        assert type_ == _TYPE_WORDS[key.type], name
        assert default == _documented_default(key), name


def test_printcap_page_covers_parser_and_bsd_keys_and_required_sections() -> None:
    source = MAN5.read_text(encoding="utf-8")
    text = roff_text(source)
    for key in sorted(PARSER_KEYS | set(BSD_ONLY) | {"server.KEY", "client.KEY"}):
        assert mentions(text, key), key
    for title in ("DESTINATIONS", "DIFFERENCES FROM LPRNG", "PERCENT CODES", "SPECIAL NAMES"):
        section(source, title)
    for form in ("ftp\\://", "socket\\://", "lpd\\://", "9100@printer"):
        assert form in text, form


# --- (c) commands and options -----------------------------------------------------------

def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # noqa: SLF001 - argparse has no public walk
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return dict(action.choices)
    raise AssertionError("lpfilter has no subcommands")


def _tags(source: str) -> str:
    """The ``.TP`` tag lines of some roff source, escapes resolved, one per line."""
    return "\n".join(roff_text(tag) for tag in re.findall(r"(?m)^\.TP\n(.*)$", source))


def test_every_command_and_option_is_in_lpfilter_1() -> None:
    source = MAN1.read_text(encoding="utf-8")
    parser = cli.build_parser()
    global_options = {o for a in parser._actions for o in a.option_strings}  # noqa: SLF001
    global_tags = _tags(section(source, "GLOBAL OPTIONS"))
    for option in sorted(global_options):
        assert mentions(global_tags, option), f"global option {option} has no entry"
    subparsers = _subparsers(parser)
    aliases = {alias: name for name, (_, _, names) in cli.COMMANDS.items() for alias in names}
    assert set(subparsers) == set(cli.COMMANDS) | set(aliases)
    synopsis = roff_text(section(source, "SYNOPSIS"))
    for name in cli.COMMANDS:
        sub = subparsers[name]
        assert mentions(synopsis, name), f"command {name} is not in the SYNOPSIS"
        heading = re.search(rf'(?m)^\.SS "lpfilter {re.escape(name)}\b.*$', source)
        assert heading, f"command {name} has no subsection under COMMANDS"
        body = re.split(r"(?m)^\.S[SH] ", source[heading.end():], maxsplit=1)[0]
        for alias in cli.COMMANDS[name][2]:
            # An alias shares its command's subsection, which names it.
            assert subparsers[alias] is sub
            assert mentions(roff_text(body), f"lpfilter {alias}"), f"alias {alias} of {name}"
            assert mentions(synopsis, alias), f"alias {alias} is not in the SYNOPSIS"
        command_tags = _tags(body)
        for action in sub._actions:  # noqa: SLF001
            for option in action.option_strings:
                if option not in global_options:
                    assert mentions(command_tags, option), f"{name} {option} has no entry"
                else:
                    assert mentions(global_tags, option), f"{name} {option} has no entry"


def test_every_environment_variable_the_code_reads_is_documented() -> None:
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "lpfilter").rglob("*.py"))
    names = set(re.findall(r"""\b(?:env|environ)(?:\.get\(|\[)["']([A-Z][A-Z0-9_]*)["']""",
                           code))
    assert {"LPFILTER_PRINTCAP", "PRINTER", "LPDEST", "HOME", "PRINTCAP_ENTRY",
            "SPOOL_DIR"} <= names
    tags = _tags(section(MAN1.read_text(encoding="utf-8"), "ENVIRONMENT"))
    assert sorted(n for n in names if not mentions(tags, n)) == []


def test_job_states_are_documented() -> None:
    states = section(MAN1.read_text(encoding="utf-8"), "Job states", level="SS")
    assert sorted(re.findall(r"(?m)^\.TP\n\.B (\w+)$", states)) == sorted(STATES)


def test_environment_of_pipe_programs_is_documented() -> None:
    """What pipe.py adds to a filter's environment (``job_variables``) and gives a
    program when no caller built one (``clean_environment``: the core every program gets,
    ``children.run.program_environment``, and those)."""
    code = (ROOT / "lpfilter" / "backends" / "pipe.py").read_text(encoding="utf-8")
    built = re.search(r"\ndef job_variables\(.*?\ndef pipe_command\(", code, re.S)
    assert built, "pipe.py no longer builds the program's environment in job_variables ..."
    run = (ROOT / "lpfilter" / "children" / "run.py").read_text(encoding="utf-8")
    core = re.search(r"\ndef program_environment\(.*?\n(?:def|class|@)", run, re.S)
    assert core, "children/run.py no longer builds the core in program_environment ..."
    names = re.findall(r"""["']([A-Z][A-Z0-9_]*)["']:""", built.group(0) + core.group(0))
    assert {"PRINTER", "LPFILTER_JOB", "PATH", "HOME"} <= set(names)
    source = section(MAN1.read_text(encoding="utf-8"), "Pipe programs", level="SS")
    text, tags = roff_text(source), _tags(source)
    assert sorted(n for n in names if not mentions(text, n)) == []
    own = [n for n in names if n.startswith("LPFILTER_") or n in (
        "PRINTER", "SPOOL_DIR", "PRINTCAP_ENTRY")]  # each with an entry of its own
    assert len(own) == 6 and sorted(n for n in own if not mentions(tags, n)) == []


def test_accounting_line_matches_the_page(tmp_path: Path) -> None:
    """The fields of a real accounting line, in order, are those of the RECORDS template."""
    copy = tmp_path / "printcap"
    copy.write_text(f"lp:sd={tmp_path}:af=acct:lp=/dev/null\n", encoding="utf-8")
    (tmp_path / "acct").touch()
    entry = printcap.load([str(copy)]).lookup("lp")
    job = Job("000012", "lp", "ann", "report", 5120, 1.0e9, state="done", attempts=1,
              started=1.0e9, finished=1.0e9 + 0.41, bytes_sent=5120, delivery="sent")
    QueueRecords(entry).account(job, "done")
    line = (tmp_path / "acct").read_text(encoding="utf-8")
    written = re.findall(r" (\w+)=", line)
    records = section(MAN1.read_text(encoding="utf-8"), "RECORDS")
    blocks = re.findall(r"(?ms)^\.EX\n(.*?)^\.EE$", records)
    templates = [" ".join(roff_text(b).split()) for b in blocks if " queue=" in b]
    assert templates, "RECORDS shows no accounting line"
    for template in templates:
        assert re.findall(r" (\w+)=", template) == written, template
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d queue=lp job=000012 user=ann bytes=5120"
                    r" pages=- seconds=0\.41 outcome=done attempts=1 duplicate=no"
                    r" delivery=sent\n$", line), line


# --- (d) exit statuses ------------------------------------------------------------------

def test_exit_status_section_lists_exactly_the_exit_statuses() -> None:
    exit_section = section(MAN1.read_text(encoding="utf-8"), "EXIT STATUS")
    listed = {int(n) for n in re.findall(r"(?m)^\.TP\n\.B (\d+)$", exit_section)}
    assert listed == {int(status) for status in ExitStatus}


# --- (e) the example printcap -----------------------------------------------------------

def test_example_loads_without_problems() -> None:
    pc = printcap.load([str(EXAMPLE)])
    assert pc.problems == []
    assert check_printcap(pc) == []
    assert pc.printer_names() == list(EXAMPLE_QUEUES)
    for name, destination in EXAMPLE_QUEUES.items():
        entry = pc.lookup(name)
        assert entry.destination() == destination, name
        assert entry.string("sd") == f"/var/spool/lpd/{name}"
    assert pc.lookup("LJ").name == "laser"  # aliases, in any letter case


def test_example_uses_documentation_host_names_only() -> None:
    pc = printcap.load([str(EXAMPLE)])
    for name in pc.printer_names():
        destination = pc.lookup(name).destination()
        host = getattr(destination, "host", None)
        assert host is None or host.endswith(".example"), (name, host)
    assert not re.search(r"\b\d{1,3}(\.\d{1,3}){3}\b", EXAMPLE.read_text(encoding="utf-8"))


def test_example_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(["--printcap", str(EXAMPLE), "printcap", "--all", "--json"])
    out, err = capsys.readouterr()
    assert (status, err) == (0, "")
    queues = {q["name"]: q for q in json.loads(out)}
    assert list(queues) == list(EXAMPLE_QUEUES)
    laser = queues["laser"]
    assert laser["aliases"] == ["lj"]
    options = laser["options"]
    assert options["lp"] == "jetdirect.example%9100"
    assert options["ld"] == options["tr"] == "\\033E"  # stored as written; decoded when sent
    assert options["sh"] is True
    assert options["mx"] == 0
    assert options["sd"] == "/var/spool/lpd/laser"
    assert "tc" not in options
    assert queues["dotmatrix"]["options"]["mx"] == 20480  # the queue's own value beats tc
    assert queues["ftplaser"]["options"]["lp"] == "ftp\\://printer.example/PORT1"
    assert queues["handoff"]["options"]["lp"] == "|/usr/bin/lpr -Pother"


def test_example_passes_checkpc_once_spool_directories_exist(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The programs the example names (/usr/bin/lpfilter, /usr/bin/lpr) are where a
    distribution installs them; here they are stand-ins, and checkpc without them names
    each line that runs one, as it would on a site where one is missing."""
    spool = tmp_path / "spool"
    copy = tmp_path / "printcap"
    text = EXAMPLE.read_text(encoding="utf-8").replace("/var/spool/lpd", str(spool))
    copy.write_text(text.replace("/usr/bin/", "/nonexistent/bin/"), encoding="utf-8")
    missing = [line for line in _checkpc_lines(copy, capsys) if "no such program" in line]
    runs = [line for line in text.splitlines() if "/usr/bin/" in line and "#" not in line]
    assert len(missing) == len(runs) == 4, missing
    (tmp_path / "bin").mkdir()
    for name in ("lpfilter", "lpr"):
        (tmp_path / "bin" / name).write_text("#!/bin/sh\n")
        (tmp_path / "bin" / name).chmod(0o755)
    copy.write_text(text.replace("/usr/bin/", f"{tmp_path}/bin/"), encoding="utf-8")
    argv = ["--printcap", str(copy), "checkpc"]

    assert cli.main(argv + ["--fix"]) == ExitStatus.OK
    out, err = capsys.readouterr()
    assert err == ""
    created = [line for line in out.splitlines() if "created spool directory" in line]
    assert len(created) == len(out.splitlines()) == len(EXAMPLE_QUEUES)
    for name in EXAMPLE_QUEUES:
        assert stat.S_IMODE(os.stat(spool / name).st_mode) == 0o700

    assert cli.main(argv) == ExitStatus.OK
    assert capsys.readouterr() == ("", "")


def _checkpc_lines(printcap: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    cli.main(["--printcap", str(printcap), "checkpc"])
    return capsys.readouterr().out.splitlines()


# --- (f) the systemd unit and the cron line -------------------------------------------------

def _watch_commands(path: Path) -> list[list[str]]:
    """The argument lists after ``lpfilter`` in a unit's ExecStart= or a cron line."""
    found = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or re.match(r"[A-Z_]+=", line):
            continue  # a comment, or a cron variable (PATH=...)
        if path.suffix == ".service":
            if not line.startswith("ExecStart="):
                continue
            line = line.removeprefix("ExecStart=")
        else:
            line = " ".join(line.split()[6:])  # minute hour dom month dow user: the command
        words = shlex.split(line)
        start = next(i for i, w in enumerate(words) if os.path.basename(w) == "lpfilter")
        args = []
        for word in words[start + 1:]:
            if word[:1] in "<>|;&" or re.match(r"\d*>", word):
                break  # a redirection or the next shell command
            args.append(word)
        found.append(args)
    return found


@pytest.mark.parametrize(("path", "once"), [(SERVICE, False), (CRON, True)],
                         ids=lambda v: v.name if isinstance(v, Path) else str(v))
def test_service_and_cron_run_watch_with_options_the_parser_accepts(path: Path,
                                                                    once: bool) -> None:
    commands = _watch_commands(path)
    assert commands, f"{path.name} runs no lpfilter command"
    parser = cli.build_parser()
    for args in commands:
        assert "watch" in args, f"{path.name}: {args} is not lpfilter watch"
        try:
            parsed = parser.parse_args(args)
        except SystemExit:
            pytest.fail(f"{path.name}: lpfilter {shlex.join(args)}: the parser refuses it")
        assert parsed.command == "watch"
        assert parsed.once is once, f"{path.name}: --once is {'missing' if once else 'wrong'}"
        assert parsed.grace >= 0 and parsed.settle >= 0
    assert "lpfilter watch" in path.read_text(encoding="utf-8")


# --- (g) socket printers --------------------------------------------------------------------

WAITEND_MODES = ("pjl", "echo", "eof", "delay", "none")
#: The keys of the table that are lpfilter's own (LPRng ignores them).
OWN_KEYS = sorted(name for name, key in KEYS.items() if key.meaning.startswith("lpfilter:"))
#: lpfilter's own keys for FTP printers: documented under FTP PRINTERS, not SOCKET PRINTERS.
FTP_KEYS = [name for name in OWN_KEYS if name.startswith("ftp_")]
#: lpfilter's own keys for LPD forwarding: documented under LPD FORWARDING.
LPD_KEYS = [name for name in OWN_KEYS if name.startswith("lpd_")]
#: lpfilter's own accounting keys: documented under ACCOUNTING.
ACCOUNTING_KEYS = [name for name in OWN_KEYS if name.startswith("accounting_")]
SOCKET_KEYS = [name for name in OWN_KEYS if name not in FTP_KEYS + LPD_KEYS + ACCOUNTING_KEYS]


def test_accounting_section_names_its_own_keys() -> None:
    text = roff_text(section(MAN5.read_text(encoding="utf-8"), "ACCOUNTING"))
    assert ACCOUNTING_KEYS == ["accounting_format"]
    for name in ACCOUNTING_KEYS:
        assert mentions(text, name), name


def test_lpd_forwarding_names_its_own_keys() -> None:
    text = roff_text(section(MAN5.read_text(encoding="utf-8"), "LPD FORWARDING"))
    assert LPD_KEYS == ["lpd_batch", "lpd_reserved_port"]
    for name in LPD_KEYS:
        assert mentions(text, name), name


def test_socket_sections_name_the_own_keys_and_the_waitend_modes() -> None:
    from lpfilter.backends.settings import WAIT_MODES
    assert set(WAIT_MODES) == set(WAITEND_MODES)
    assert {"pjl", "sync", "pagecount", "waitend", "stall_timeout"} <= set(SOCKET_KEYS)
    printcap_page = MAN5.read_text(encoding="utf-8")
    own = section(printcap_page, "SOCKET PRINTERS (lpfilter keys)")
    own_text = roff_text(own)
    for name in SOCKET_KEYS:
        assert re.search(rf"(?m)^\.TP\n\.B {re.escape(name)}\n\(lpfilter; ", own), name
    for mode in WAITEND_MODES:
        assert re.search(rf"(?m)^\.TP.*\n\.B {mode}$", own), f"waitend={mode} in page 5"
    assert "LPRng ignores" in " ".join(own_text.split())
    table = " ".join(roff_text(section(printcap_page, "Key table", level="SS")).split())
    assert "When unset: pjl when pjl is set, else eof." in table  # waitend's default
    manual = section(MAN1.read_text(encoding="utf-8"), "SOCKET PRINTERS")
    tags = _tags(manual)
    for mode in WAITEND_MODES:
        assert mentions(tags, mode), f"waitend={mode} in lpfilter(1)"
    for kind in ("printer busy", "printer offline", "printer name does not resolve"):
        assert kind in tags, kind
    from lpfilter.commands.terminal import BAR_AFTER
    from lpfilter.protocols.pjl import MAX_NAME
    text = " ".join(roff_text(manual).split())
    for word in ("connect_timeout", "connect_grace", "sendfile", "half_close",
                 "stall_timeout", "send_job_rw_timeout", "waitend_timeout",
                 f"cut at {MAX_NAME} characters", "possible duplicate", "delivery"):
        assert word in text, word
    whole = " ".join(roff_text(MAN1.read_text(encoding="utf-8")).split())
    assert BAR_AFTER == 1.0 and "a job that takes more than about a second" in whole  # the bar
    assert "it stays until the printer has taken the last byte" in whole


# --- (h) FTP printers -------------------------------------------------------------------

def test_ftp_sections_name_the_ftp_keys_sent_and_the_error_mapping() -> None:
    assert {"ftp_active", "ftp_idle", "ftp_password_file", "ftp_sessions",
            "ftp_user"} <= set(FTP_KEYS)
    printcap_page = MAN5.read_text(encoding="utf-8")
    own = section(printcap_page, "FTP PRINTERS (lpfilter keys)")
    for name in FTP_KEYS:
        assert re.search(rf"(?m)^\.TP\n\.B {re.escape(name)}\n\(lpfilter; ", own), name
    text = " ".join(roff_text(own).split())
    for word in (":lp=ftp\\://printer.example/PORT1:", "checkpc", "ftp_idle", "240",
                 "270", "900", "netrc", "NETRC", "anonymous", "TYPE I", "PASV", "EPSV",
                 "STOR", "226", "421", "530", "550", "possible duplicate", "no back channel",
                 "LPRng ignores", "connect_timeout", "stall_timeout", "send_job_rw_timeout",
                 "keepalive"):
        assert word in text, word
    from lpfilter.protocols.ftp import MAX_STORE_NAME
    assert f"at most {MAX_STORE_NAME} characters" in text
    manual = section(MAN1.read_text(encoding="utf-8"), "FTP PRINTERS")
    text = " ".join(roff_text(manual).split())
    for word in ("226", "421", "530", "550", "ftp_idle", "ftp_sessions", "QUIT",
                 "waiting for an FTP session", "possible duplicate", "delivery=sent",
                 "no back channel", "slot"):
        assert word in text, word
    files = " ".join(roff_text(section(MAN1.read_text(encoding="utf-8"), "FILES")).split())
    assert "~/.netrc" in files and "-slot" in files


# --- (i) README and the demo ------------------------------------------------------------

def _code_blocks(markdown: str) -> list[str]:
    return re.findall(r"(?ms)^```(?:sh)?\n(.*?)^```$", markdown)


def test_readme_set_up_is_two_commands_the_first_ending_with_the_demo() -> None:
    readme = README.read_text(encoding="utf-8")
    set_up = re.search(r"(?ms)^## Set up\n(.*?)(?=^## )", readme)
    assert set_up, "README has no Set up section"
    blocks = [b.strip() for b in _code_blocks(set_up.group(1))]
    assert len(blocks) == 2, blocks
    assert all("\n" not in b for b in blocks), "each set-up command is one line"
    first, second = blocks
    assert first.startswith("python3 -m venv --upgrade-deps .venv && .venv/bin/pip install . && ")
    assert first.endswith(".venv/bin/lpfilter demo"), first
    assert second == "bash .ci/run"


def test_readme_tour_commands_are_accepted_by_the_parser() -> None:
    parser = cli.build_parser()
    commands = []
    for block in _code_blocks(README.read_text(encoding="utf-8")):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "lpfilter":
                commands.append(_before_redirection(words[1:]))
    assert len(commands) >= 10
    assert ["demo"] in commands
    for args in commands:
        head, _raw = cli._split_filter(args)  # noqa: SLF001 - as main() reads them
        try:
            parser.parse_args(head)
        except SystemExit:
            pytest.fail(f"README: lpfilter {shlex.join(args)}: the parser refuses it")


def _before_redirection(words: list[str]) -> list[str]:
    """The arguments of a command line, without a redirection or a next command."""
    args = []
    for word in words:
        if word[:1] in "<>|;&" or re.match(r"\d*>", word):
            break
        args.append(word)
    return args


def test_demo_prints_through_the_virtual_printer_and_shows_the_accounting_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """``lpfilter demo`` (README's first command) exits 0; it uses loopback only."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # its directory goes here
    assert cli.main(["demo"]) == ExitStatus.OK
    out, _ = capsys.readouterr()
    assert re.search(r"(?m)^virtual printer listening on 127\.0\.0\.1:\d+ ", out), out
    printed = re.search(r"(?m)^the printer received the bytes in (\S+)$", out)
    assert printed, out
    landed = Path(printed.group(1))
    assert landed.is_file() and tmp_path in landed.parents
    accounting = re.search(
        r"(?m)^accounting \((\S+)\): (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d queue=demo job=000001"
        r" user=\S+ bytes=(\d+) pages=3 seconds=[\d.]+ outcome=done attempts=1 duplicate=no"
        r" delivery=confirmed)$", out)
    assert accounting, out
    acct, line, sent = accounting.groups()
    assert Path(acct).read_text(encoding="utf-8") == line + "\n"
    assert landed.stat().st_size >= int(sent) > 0
    assert "printed: the printer confirmed it, 3 pages" in out


# --- (j) lpfilter filter: LPRng's drop-in -------------------------------------------------

LPRNG = "USING LPFILTER FROM LPRNG"
#: The three printcap forms, as the page writes them (README and the example printcap too).
DEVICE_FORM = ":lp=|/usr/bin/lpfilter filter printer.example%9100:"
FTP_FORM = ":lp=|/usr/bin/lpfilter filter ftp\\://printer.example/PORT1:"
IF_FORM = ":if=/usr/bin/lpfilter filter:"
BY_HAND = "lpfilter filter -Plp < file"
#: The option list LPRng 3.8.B appended for an lp=| program in the lab
#: (shared/reference/lprng-filters.md §2, "Observed argv", minus -F -N -e -f).
LPD_OPTIONS = ["-Aroot@localhost+507", "-CZ", "-D2026-11-21-04:12:41.392", "-Hlocalhost",
               "-I4", "-JMyJob", "-Lroot", "-Pq1", "-Qq1", "-STest queue one", "-Ttitle1",
               "-W100", "-Zopt1=a,opt2=b", "-aacct", "-b18", "-d/tmp/lpdlab/spool/q1",
               "-hlocalhost", "-i4", "-j507", "-l66", "-nroot", "-sstatus",
               "-t2026-11-21-04:12:41.000", "-w80", "-x0", "-y0", "acct"]


def _lpd_argv(command: str) -> list[str]:
    """What LPRng runs for a filter or ``lp=|`` value without shell characters: the value
    split at blanks (backslashes kept), then its option list."""
    return command.removeprefix("|").split() + LPD_OPTIONS


_ARGUMENT = re.compile(r'"([^"]*)"|(\S+)')
#: Macros whose arguments are text: joined with blanks, or (font alternation) without.
_TEXT_MACROS = {"B": " ", "I": " ", "SM": " ", "BR": "", "RB": "", "IR": "", "RI": "",
                "BI": "", "IB": ""}


def plain(source: str) -> str:
    """Roff source as running text, as a reader sees it: macro lines give their text
    (``.BR lp= host`` is ``lp=host``), other requests nothing, blanks squeezed."""
    words = []
    for line in source.splitlines():
        if line.startswith((".", "'")):
            name, _, rest = line[1:].partition(" ")
            if name not in _TEXT_MACROS:
                continue
            args = [quoted if quoted or bare == "" else bare
                    for quoted, bare in _ARGUMENT.findall(rest)]
            line = _TEXT_MACROS[name].join(args)
        words.append(roff_text(line))
    return " ".join(" ".join(words).split())


def _lprng_text(title: str | None = None) -> str:
    source = section(MAN1.read_text(encoding="utf-8"), LPRNG)
    if title is not None:
        source = section(source, title, level="SS")
    return plain(source)


def test_filter_subsection_matches_the_usage_and_names_its_own_long_options() -> None:
    from lpfilter.commands import filter_cmd
    from lpfilter.filtermode.arguments import LONG_OPTIONS
    source = MAN1.read_text(encoding="utf-8")
    heading = re.search(r'(?m)^\.SS "(lpfilter filter\b.*)"$', source)
    assert heading, "no lpfilter filter subsection"
    usage = filter_cmd.USAGE.splitlines()[0].removeprefix("usage: ")
    assert roff_text(heading.group(1)).lower() == usage.lower()
    body = re.split(r"(?m)^\.S[SH] ", source[heading.end():], maxsplit=1)[0]
    tags = _tags(body)
    for option in LONG_OPTIONS:
        assert mentions(tags, option), f"filter {option} has no entry"
    text = plain(body)
    for word in ("PRINTCAP_ENTRY", "$PRINTER", "$LPDEST", "-n root", "accounting file",
                 "refused", "terminal", LPRNG):
        assert word in text, word


def test_lprng_section_shows_the_three_forms_as_lpd_runs_them() -> None:
    from lpfilter.filtermode import arguments
    from lpfilter.printcap.destination import classify
    text = _lprng_text()
    for form in (DEVICE_FORM, FTP_FORM, IF_FORM, BY_HAND):
        assert form in text, form
    for word in ("socket pair", "PRINTCAP_ENTRY", "SPOOL_DIR", "backslashes", "absolute",
                 "once per file and per copy", "waitend=eof", "never closed or half-closed",
                 "-n login -h host"):
        assert word in text, word
    for value, target in ((DEVICE_FORM, Socket("printer.example", 9100)),
                          (FTP_FORM, Ftp("printer.example", 21, "PORT1"))):
        argv = _lpd_argv(value.strip(":").removeprefix("lp="))
        assert os.path.isabs(argv[0]) and argv[1] == "filter"
        args = arguments.parse(argv[2:])
        assert classify(args.destination, queue="q1") == target, value
        assert (args.get("P"), args.get("J"), args.get("j"), args.accounting) == (
            "q1", "MyJob", "507", "acct")
    args = arguments.parse(_lpd_argv(IF_FORM.strip(":").removeprefix("if="))[2:])
    assert args.destination is None  # a data filter: the job goes to standard output


def test_example_printcap_has_the_lprng_forms() -> None:
    pc = printcap.load([str(EXAMPLE)])
    assert f":lp={pc.lookup('jdpipe').string('lp')}:" == DEVICE_FORM
    assert f":lp={pc.lookup('ftppipe').string('lp')}:" == FTP_FORM
    jdfilter = pc.lookup("jdfilter")
    assert f":if={jdfilter.string('if')}:" == IF_FORM
    assert jdfilter.flag("pjl") and jdfilter.flag("sync") and jdfilter.flag("pagecount")
    text = EXAMPLE.read_text(encoding="utf-8")
    assert "lpfilter filter -P color < report.ps" in text
    assert "LPRng's /etc/printcap" in text and LPRNG in text


def test_lprng_section_names_the_keys_that_matter() -> None:
    text = _lprng_text("Which printcap keys matter")
    keys = set(OWN_KEYS) | {"connect_timeout", "connect_grace", "keepalive", "socket_linger",
                            "half_close", "send_job_rw_timeout", "ld", "tr", "send_try",
                            "connect_interval", "max_connect_interval", "send_failure_action"}
    for key in sorted(keys):
        assert mentions(text, key), key
    assert "eof means none" in text


def test_lprng_section_exit_codes_are_lprngs_and_say_what_gives_each() -> None:
    from lpfilter.filtercodes import FilterCode
    # The codes lpfilter filter returns to lpd (JFAILNORETRY and JTIMEOUT it only reads).
    codes = (FilterCode.JSUCC, FilterCode.JFAIL, FilterCode.JABORT, FilterCode.JREMOVE,
             FilterCode.JHOLD)
    assert codes == (0, 1, 2, 3, 6)
    source = section(section(MAN1.read_text(encoding="utf-8"), LPRNG), "Exit codes",
                     level="SS")
    entries = {int(n): plain(body) for n, body in
               re.findall(r"(?ms)^\.TP\n\.B (\d+)\n(.*?)(?=^\.TP|^\.PP|\Z)", source)}
    assert sorted(entries) == sorted(codes)
    for word in ("busy", "421", "offline", "does not resolve", "reset", "dropped",
                 "stall_timeout", "4xx", "signal", "stored"):
        assert word in entries[FilterCode.JFAIL], f"exit 1: {word}"
    for word in ("refused", "530", "5xx", "queue@host", "PRINTCAP_ENTRY", "printcap",
                 "no destination", "terminal", "internal error", "the job is kept"):
        assert word in entries[FilterCode.JABORT], f"exit 2: {word}"
    text = plain(source)
    assert "never do" in text  # 3 and 6: no backend that filter uses asks for them today
    assert "a bug" in text and "70" not in text  # even a crash exits 2, an abort lpd knows
    exit_status = plain(section(MAN1.read_text(encoding="utf-8"), "EXIT STATUS"))
    assert "filter is the exception" in exit_status and "LPRng's filter codes" in exit_status


def test_lprng_section_status_lines_are_the_ones_filter_writes() -> None:
    from lpfilter.errors import (LpfilterError, NameNotFound, PrinterBusy, PrinterOffline,
                                 TransientError, in_brief)
    code = (ROOT / "lpfilter" / "filtermode" / "run.py").read_text(encoding="utf-8") + (
        ROOT / "lpfilter" / "commands" / "filter_cmd.py").read_text(encoding="utf-8")
    code = re.sub(r'"\n\s*f?"', "", code)  # string literals continued on the next line, joined
    tags = plain("\n".join(re.findall(r"(?m)^\.TP\n(.*)$", section(
        section(MAN1.read_text(encoding="utf-8"), LPRNG), "Status lines", level="SS"))))
    for fixed in ("job confirmed by printer", "job sent to ", ", retrying later: ",
                  "possible duplicate: ", " bytes were sent before the failure",
                  "job refused: ", "stopped (", "; lpd will send the job again",
                  "cannot take the job: ", "internal error: ", "; the job is kept",
                  "lpfilter filter: "):
        assert fixed in tags, f"page: {fixed}"
        assert fixed in code, f"code: {fixed}"
    error: LpfilterError
    for error in (PrinterBusy("x"), PrinterOffline("x"), NameNotFound("x"), TransientError("x")):
        assert f"{in_brief(error)}, retrying later: " in tags, in_brief(error)
    assert "job sent to the printer" in _lprng_text("Status lines")
    assert '"the printer"' in code  # where a data filter's job went


def test_lprng_section_accounting_line_is_the_one_filter_writes() -> None:
    import time

    from lpfilter.filtermode.accounting import line
    when = time.mktime((2026, 3, 1, 14, 2, 7, 0, 0, -1))
    written = line(queue="lp", user="ann", host="client.example", name="report",
                   bytes_sent=48213, pages=2, seconds=4.21, outcome="confirmed", when=when)
    source = section(section(MAN1.read_text(encoding="utf-8"), LPRNG), "Accounting",
                     level="SS")
    blocks = [plain(b) for b in re.findall(r"(?ms)^\.EX\n(.*?)^\.EE$", source)]
    assert blocks == [written.rstrip("\n")]
    text = plain(source)
    for word in ("only if the file exists", "|program", "host%port", "confirmed", "sent",
                 "failed", "jobstart"):
        assert word in text, word


def test_lprng_section_compares_with_ifhp() -> None:
    text = _lprng_text("Compared with ifhp")
    for word in ("ifhp.conf", ":ifhp=", "converts nothing", "-Z", "IPv4", "dev_retries",
                 "exit code 1"):
        assert word in text, word


def test_readme_says_how_to_use_lpfilter_from_lprng() -> None:
    readme = README.read_text(encoding="utf-8")
    using = re.search(r"(?ms)^## Using lpfilter from LPRng\n(.*?)(?=^## )", readme)
    assert using, "README has no 'Using lpfilter from LPRng' section"
    text = " ".join(using.group(1).split())
    for word in (DEVICE_FORM.removeprefix(":"), IF_FORM, "lpfilter filter -P lj",
                 "ftp\\://printer.example/PORT1", "man/lpfilter.1", LPRNG,
                 "etc/printcap.example", "1 retry later"):
        assert word in text, word
