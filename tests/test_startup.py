"""Start-up cost (issue 16): what a quick command imports, and the fast paths that keep it
quick, each proved equal to the path it shortens.

The import sets are structural facts read from ``python -X importtime`` of the installed
program, never timings: ``print``, ``status`` and ``cancel`` with a warm printcap cache
import no pyparsing, no grammar, no other command's module; ``lpfilter filter`` under lpd
reads ``PRINTCAP_ENTRY`` without pyparsing. The fast entry reader gives what pyparsing
gives on every entry of the corpus and on generated text; the parser built lazily prints
the same help as the parser built whole.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from filterkit import Lpd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sharedkit import CORPUS, require_shared

from lpfilter import cli
from lpfilter.commands import parser as commands_parser
from lpfilter.printcap import grammar
from lpfilter.printcap.entrytext import entry_from_text, entry_to_text

#: Whether a class was made by typing's TypedDict or NamedTuple: building one compiles each
#: field's annotation (a ForwardRef: about 0.2 ms a field), so a quick command makes none.
TYPED = ("def typed(c):\n"
         "    if typing is None:\n        return False\n"
         "    nt = issubclass(c, tuple) and '_fields' in vars(c) and '__annotations__' in vars(c)\n"
         "    return typing.is_typeddict(c) or nt\n")
#: ``lpfilter ARGS`` as the console script runs it (``lpfilter.__main__.main``; runpy, as
#: ``python -m`` would, imports importlib, warnings and contextlib itself), writing, last,
#: the modules it imported (``-X importtime`` does not list what
#: ``importlib.import_module`` imports).
RUN = ("import sys\n"
       "sys.argv = ['lpfilter', *sys.argv[1:]]\n"
       "from lpfilter.__main__ import main\n"
       "try:\n    code = main()\n"
       "except SystemExit as exc:\n    code = exc.code\n"
       "names = sorted(sys.modules)\n"
       "import json\n"
       "typing = sys.modules.get('typing')\n"
       f"{TYPED}\n"
       "made = sorted(f'{m}.{n}' for m, module in list(sys.modules.items())\n"
       "              if m.startswith('lpfilter') for n, c in vars(module).items()\n"
       "              if isinstance(c, type) and c.__module__ == m and typed(c))\n"
       "sys.stderr.write('\\nTYPED ' + json.dumps(made))\n"
       "sys.stderr.write('\\nMODULES ' + json.dumps(names) + '\\n')\n"
       "sys.exit(code)\n")
#: 17 M instructions, and 1.3-1.9 M for each enum class made: lpfilter's enums are
#: lpfilter.enums' (mypy sees enum's), its caches lpfilter.memo's, its annotations'
#: collections.abc names are imported for mypy only, and printcap.source's Origin is
#: written out (round 19).
ENUM_AND_COLLECTIONS = {"enum", "functools", "collections", "collections.abc", "types",
                        "operator", "reprlib", "keyword"}
#: Modules a quick command never needs (pyparsing alone costs more than the command).
NEVER = {"pyparsing", "lpfilter.printcap.grammar", "lpfilter.spool.hotfolder", "secrets",
         # OpenSSL (the cache key is hashed by the interpreter's own SHA-256), and shutil
         # with its compression modules (argparse asks the terminal's width only for help)
         "hashlib", "_hashlib", "shutil", "zlib", "lzma", "bz2",
         # about 2 ms: lpfilter's modules say ``TYPE_CHECKING = False`` (mypy reads the name
         # as true) and import typing's names for mypy only
         "typing",
         # about 6 ms: a module's logger (lpfilter.logs) imports logging at its first record
         # kept, and at the default level a quick command keeps none (tests/test_logs.py)
         "logging", "traceback", "string",
         # the host (Entry.host, only for %h and %H) and a URI's parser (only for lp=ftp://,
         # socket://, lpd://): 1.5 ms and 3 ms of status for a host%port queue
         "ipaddress", "urllib.parse",
         # about 4 ms: argparse, gettext and the locale module gettext's first word imports
         # (a quick command's plain line is read by commands/quickargs.py)
         "argparse", "gettext", "locale",
         # 0.7 ms: the journal's lock and the store's are _thread's; the journal makes its
         # threading.Condition only when a thread must wait for another's flush
         "threading",
         # status of a local queue that is no pool: what a remote or pool queue shows
         "lpfilter.commands.remotequeue", "lpfilter.commands.poolstatus",
         # a host name pattern (oh=, sv=) is matched only where an entry has one
         "fnmatch",
         # 2.7 M instructions: the spool's context managers (the journal's hold, a
         # write's room, a paused flush) are small classes (round 12)
         "contextlib",
         # 4.6 M instructions: %D (the date) comes from time, asked for as soon as an
         # entry's value has a % (lp=host%port does) (round 14)
         "datetime", "_datetime",
         # 14 M instructions with a pip that writes its wrapper without `import re` (25.2
         # and later): the journal's JSON is read and written by lpfilter.jsontext, and the
         # printcap's numbers and %-codes by hand (round 15)
         "re", "json", "json.decoder", *ENUM_AND_COLLECTIONS}
#: A dataclass is built at import (0.3-1 ms: its methods are compiled from source with
#: ``exec``) and ``dataclasses`` imports inspect, ast and dis (4-6 ms; tokenize comes with
#: logging's traceback): a quick command's records (the printcap's, the job's, the spool's,
#: the backends') are lpfilter.structs classes, so neither it nor ``lpfilter filter``
#: imports them.
NO_DATACLASSES = {"dataclasses", "inspect", "ast", "dis"}
#: The TypedDict and typing.NamedTuple classes each run of ``imported`` made, by its argv.
TYPED_CLASSES: dict[tuple[str, ...], list[str]] = {}


def imported(argv: list[str], env: dict[str, str], cwd: Path, *, stdin: object = None,
             stdout: object = subprocess.PIPE, ok: tuple[int, ...] = (0,)) -> set[str]:
    """The modules ``python -m lpfilter argv`` imported (it must exit with one of ``ok``)."""
    done = subprocess.run([sys.executable, "-c", RUN, *argv], env=env, cwd=cwd,
                          stdin=stdin if stdin is not None else subprocess.DEVNULL,
                          stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=60,
                          check=False)
    assert done.returncode in ok, done.stderr[-2000:]
    *_, typed, last = done.stderr.rstrip("\n").split("\n")
    assert last.startswith("MODULES ") and typed.startswith("TYPED "), done.stderr[-2000:]
    TYPED_CLASSES[tuple(argv)] = json.loads(typed.removeprefix("TYPED "))
    return set(json.loads(last.removeprefix("MODULES ")))


def _bare(env: dict[str, str]) -> set[str]:
    """The modules this interpreter has imported before any line of lpfilter runs."""
    done = subprocess.run([sys.executable, "-c", "import sys\n"
                           "print(' '.join(sorted(sys.modules)))"], env=env, timeout=60,
                          capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def _commands(names: set[str]) -> set[str]:
    return {n for n in names if n.startswith("lpfilter.commands.") and n.endswith("_cmd")}


def site_env(tmp_path: Path, lp: str) -> dict[str, str]:
    """A printcap with one queue, ``q|queue`` printing to ``lp``, its spool ``sd``, a 1 KiB
    file ``job``, and the environment naming them with a cache and a lock directory of
    their own (test_logs' site too)."""
    spool = tmp_path / "sd"
    spool.mkdir()
    printcap = tmp_path / "printcap"
    printcap.write_text(f"q|queue:lp={lp}:sd={spool}\n")
    (tmp_path / "job").write_bytes(b"x" * 1024)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LPFILTER", "PYTHON"))}
    env.update(LPFILTER_PRINTCAP=str(printcap), XDG_CACHE_HOME=str(tmp_path / "cache"),
               LPFILTER_LOCK_DIR=str(tmp_path / "lk"))
    return env


@pytest.fixture
def site(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A printcap with one queue, its own cache and lock directories, warmed once."""
    env = site_env(tmp_path, "127.0.0.1%9")  # no command connects
    cold = imported(["status", "-P", "q"], env, tmp_path)  # parses, fills the cache
    assert "pyparsing" in cold  # the control: a cold cache reads the file with pyparsing
    return env, tmp_path


@pytest.mark.parametrize(("argv", "command"), [
    (["print", "--no-wait", "-P", "q", "job"], "print_cmd"),
    (["status", "-P", "q"], "status_cmd"), (["lpq", "-P", "q"], "status_cmd"),
    (["cancel", "-P", "q", "999999"], "jobctl_cmd"), (["lprm", "-P", "q", "999999"], "jobctl_cmd")])
def test_a_quick_command_imports_only_its_own_module(site: tuple[dict[str, str], Path],
                                                     argv: list[str], command: str) -> None:
    env, cwd = site
    # 1: no such job (lprm: 0, as LPRng's)
    names = imported(argv, env, cwd, ok=(1,) if argv[0] == "cancel" else (0,))
    assert _commands(names) == {f"lpfilter.commands.{command}"}
    # (an editable install's finder imports urllib.parse and ipaddress in every interpreter)
    assert not (names - _bare(env)) & NEVER, sorted((names - _bare(env)) & NEVER)
    assert "lpfilter.job" in names  # the control: the command read or made jobs
    assert not names & NO_DATACLASSES, sorted(names & NO_DATACLASSES)
    assert TYPED_CLASSES[tuple(argv)] == []  # Origin, status's data: no typing classes
    assert "socket" not in names  # the lock's host name is os.uname()'s, as gethostname's
    if argv[0] == "print":
        assert (cwd / "sd" / ".lpfilter" / "journal").stat().st_size  # the whole path ran
        assert not names & {"socket", "lpfilter.printcap.destination"}


def _lpd_answering(server: socket.socket, reply: bytes,
                   count: int) -> tuple[threading.Thread, list[bytes]]:
    """An LPD server on ``server`` that answers ``count`` requests with ``reply``, one
    connection each, in a thread."""
    got: list[bytes] = []

    def serve() -> None:
        server.settimeout(30)
        for _ in range(count):
            conn, _ = server.accept()
            with conn:
                conn.settimeout(30)
                got.append(conn.recv(512))
                conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread, got


@pytest.mark.parametrize("argv", [["status", "-P", "f"], ["status", "-P", "q@{server}"],
                                  ["cancel", "-P", "q@{server}", "7"]])
def test_a_forwarded_queue_s_status_and_cancel_import_no_dataclasses_nor_re(
        tmp_path: Path, argv: list[str]) -> None:
    """A client's ``lpq`` and ``lprm`` of a print server's queue (``lp=queue@server``, or
    ``-P queue@server``) ask it over LPD: the protocol's module is loaded
    (protocols/lpd.py), but not dataclasses (52 M instructions), re, nor the socket
    module (round 16)."""
    (tmp_path / "sd").mkdir(mode=0o700)
    printcap = tmp_path / "printcap"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LPFILTER", "PYTHON"))}
    env.update(LPFILTER_PRINTCAP=str(printcap), XDG_CACHE_HOME=str(tmp_path / "cache"),
               LPFILTER_LOCK_DIR=str(tmp_path / "lk"))
    with socket.create_server(("127.0.0.1", 0)) as server:
        where = f"127.0.0.1%{server.getsockname()[1]}"
        printcap.write_text(f"f:lp=q@{where}:sd={tmp_path}/sd\n")
        argv = [a.format(server=where) for a in argv]
        warm = argv[-1] == "f"  # the printcap read once: its parse cache is warm after
        thread, got = _lpd_answering(server, b"no entries\n", 2 if warm else 1)
        if warm:
            assert "pyparsing" in imported(argv, env, tmp_path)  # (the cache's control)
        names = imported(argv, env, tmp_path) - _bare(env)
        thread.join(30)
    asked = b"\x05q " if argv[0] == "cancel" else b"\x03q\n"
    assert got and got[0].startswith(asked), got  # the control: the server was asked
    assert "lpfilter.protocols.lpd" in names
    assert not names & {*NO_DATACLASSES, "re", "socket", "selectors"}, sorted(
        names & {*NO_DATACLASSES, "re", "socket", "selectors"})


def test_a_print_sending_its_own_job_makes_no_dataclass_and_loads_no_openssl(
        fresh_python: Callable[[str], str]) -> None:
    """What a ``print`` serving its own ``lp=queue@server`` queue adds to the send path: the
    control file's records, the filters' plan and the printer's lock name (round 16;
    ``dataclasses`` with ``inspect`` is 52 M instructions, OpenSSL ~5 ms)."""
    code = ("import sys; from lpfilter.protocols import lpdcontrol; from lpfilter.filters "
            "import feed; from lpfilter.spool.printers import device_key; device_key('h%9'); "
            "f = lpdcontrol.ControlFields('h', 'u', (lpdcontrol.DataFile('dfA001h'),)); "
            "assert lpdcontrol.build(f).startswith(b'Hh\\nPu\\n'); "
            "assert lpdcontrol.parse(lpdcontrol.build(f)).files == f.files; "
            "print(sorted({'dataclasses', 'inspect', 'hashlib', '_hashlib'} & set(sys.modules)))")
    assert fresh_python(code) == "[]"


def test_an_ordinary_users_print_through_the_daemon_imports_no_server(
        fresh_python: Callable[[str], str]) -> None:
    """A user who may not write the spool prints, and asks for status or a cancel, through
    the daemon's socket (commands/daemonclient.py, daemonprint.py): the client builds its
    requests and reads the answers without the server's modules, ``dataclasses``, ``json``
    with ``re``, OpenSSL (round 17: they were 119 M instructions of every such command,
    72 M of them these), or the ``socket`` module with ``selectors`` (round 18: the C
    socket type and a sendfile loop that waits with poll)."""
    code = ("import sys, os; from lpfilter.commands import daemonclient, daemonprint; "
            "from lpfilter.protocols import lpdlocal; "
            "assert lpdlocal.client_socket_path({}) == lpdlocal.DEFAULT_SOCKET; "
            "assert lpdlocal.control_request('q', 'u', 'status').startswith(b'\\x06q u st'); "
            "assert lpdlocal.parse_reply(b'{\"ok\": true, \"jobs\": []}')['jobs'] == []; "
            "assert daemonprint.__name__; "
            "print(sorted(m for m in sys.modules if m in {'dataclasses', 'inspect', 'json', "
            "'re', 'hashlib', '_hashlib', 'typing', 'threading', 'socket', 'selectors'} "
            "or m.startswith('lpfilter.server.')))")
    assert fresh_python(code) == "[]"


def test_an_ordinary_users_status_and_cancel_load_no_lpd_module(
        fresh_python: Callable[[str], str]) -> None:
    """Their local request needs the LPD protocol's error and longest line only, which
    live in ``lpfilter.protocols`` (round 18: ``lpd``'s enums were 1.4 ms of each)."""
    code = ("import sys; from lpfilter.commands import daemonclient; "
            "from lpfilter.protocols import lpdlocal; "
            "assert lpdlocal.control_request('q', 'u', 'cancel', named=(7,)); "
            "print(sorted(m for m in sys.modules if m.startswith('lpfilter.protocols.')))")
    assert fresh_python(code) == "['lpfilter.protocols.lpdlocal']"


#: What a ``watch --once`` pass that finds nothing to send needs none of (issue 16: a cron
#: pass every minute paid ~100 ms, 217 modules): the print server (only for the daemon),
#: a pool's modules (only for ``sv=``), the send path with its control-file module,
#: ``tempfile`` (and shutil's compression modules), prctl's ctypes, OpenSSL's hashlib;
#: nor dataclasses (with inspect, ast and dis, ~5 ms) and typing (~2 ms): the records on
#: a pass's way are lpfilter.structs classes, and its Protocols are mypy's; nor argparse
#: (a plain line is read by quickargs) and logging (deferred until its first record, as a
#: quick command's; a pass that finds nothing has none) (round 11); nor psutil and the
#: socket module it brings (a process's own start is read from /proc, round 19), nor
#: subprocess and locale (imported where a program is first run, round 20).
NOT_FOR_AN_EMPTY_PASS = {"lpfilter.server.listener", "lpfilter.server.connection",
                         "lpfilter.spool.pool", "lpfilter.spool.poolround",
                         "lpfilter.filters.send", "lpfilter.protocols.lpdcontrol",
                         "lpfilter.protocols.lpd", "tempfile", "shutil", "ctypes", "hashlib",
                         "_hashlib", "secrets", "ipaddress", *NO_DATACLASSES, "typing",
                         "argparse", "gettext", "logging", "traceback", "psutil", "socket",
                         "subprocess", "locale", "re", "fnmatch"}
#: What a pass that sends a job as spooled to a socket printer needs none of: subprocess
#: and locale (no program runs), re and fnmatch (no filter command line, environment or
#: accounting line is built), tempfile with shutil, random and the compression modules
#: (no bounce, pr or banner file): imported where they are used; nor psutil (the hot
#: folder's writers are read from /proc) (round 20).
NOT_FOR_A_PLAIN_SEND = {"subprocess", "locale", "re", "fnmatch", "tempfile", "shutil",
                        "random", "bz2", "lzma", "zlib", *NO_DATACLASSES, "typing",
                        "psutil", "socket"}


def test_a_cron_pass_with_nothing_to_send_imports_no_sending(
        site: tuple[dict[str, str], Path]) -> None:
    env, cwd = site
    names = imported(["watch", "--once", "-P", "q"], env, cwd) - _bare(env)  # (see above)
    assert "lpfilter.spool.worker" in names  # the control: the queue was served
    assert not names & NOT_FOR_AN_EMPTY_PASS, sorted(names & NOT_FOR_AN_EMPTY_PASS)


def test_a_pass_sending_a_plain_job_imports_no_program_or_pattern_machinery(
        tmp_path: Path) -> None:
    """A ``watch --once`` that prints a spooled job and a file dropped in the hot folder
    to a loopback printer (each read to its end) imports the send path and nothing that
    only filters, programs, bounces or accounting lines need; nor psutil, as the hot
    folder's writers are looked for in /proc."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)  # (the serving thread's accept is bounded too)
    got: list[bytes] = []

    def serve() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            with conn:
                got.append(b"".join(iter(lambda c=conn: c.recv(65536), b"")))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    env = site_env(tmp_path, f"127.0.0.1%{listener.getsockname()[1]}")
    try:
        imported(["print", "--no-wait", "-P", "q", "job"], env, tmp_path)
        (tmp_path / "sd" / "dropped.txt").write_bytes(b"y" * 512)
        # -q: a cron line's pass (without it, the job's INFO line loads logging, and
        # logging imports re)
        names = imported(["watch", "--once", "-q", "-P", "q"], env, tmp_path) - _bare(env)
        thread.join(30)
    finally:
        listener.close()
    assert sorted(got) == [b"x" * 1024, b"y" * 512]  # the control: both were sent
    assert "lpfilter.filters.send" in names and "lpfilter.backends.jetdirect" in names
    assert not names & NOT_FOR_A_PLAIN_SEND, sorted(names & NOT_FOR_A_PLAIN_SEND)


def test_the_command_edge_imports_no_job_and_no_dataclasses() -> None:
    """``lpfilter.cli`` (what every command imports first) brings in neither the job's
    module (json) nor dataclasses (with inspect, ast and dis): a command
    imports them only when it works on jobs."""
    done = subprocess.run([sys.executable, "-c", "import sys, lpfilter.cli\n"
                           "print(' '.join(sorted(sys.modules)))"], capture_output=True,
                          text=True, timeout=60, check=True)
    names = set(done.stdout.split())
    assert "lpfilter.cli" in names
    assert not names & {"lpfilter.job", "json", "dataclasses", "inspect", "shutil", "hashlib"}


#: ``python -m lpfilter ARGS`` that says, last, how many collections the cyclic collector
#: ran while lpfilter.cli and the command's module were imported and the arguments parsed
#: (from the moment lpfilter.cli is in sys.modules until the command's module is), then
#: afterwards, and whether it is on at the end.
COUNT_GC = ("import gc, runpy, sys\n"
            "seen = [0, 0, 0]\n"
            "def note(phase, info):\n"
            "    if phase == 'start':\n"
            "        names = list(sys.modules)\n"
            "        command = any(m.endswith('_cmd') for m in names)\n"
            "        seen[('lpfilter.cli' in names) + command] += 1\n"
            "gc.callbacks.append(note)\n"
            "sys.argv = ['lpfilter', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('lpfilter', run_name='__main__', alter_sys=True)\n"
            "except SystemExit as exc:\n    code = exc.code\n"
            "sys.stderr.write(f'\\nGC {seen[1]} {seen[2]} {gc.isenabled()}\\n')\n"
            "sys.exit(code)\n")


def test_start_up_runs_no_collection(site: tuple[dict[str, str], Path]) -> None:
    """Importing makes no garbage: the collector stays off until the command's module is
    imported (lpfilter.__main__, also the console script's entry point), and is on again
    for the command itself."""
    env, cwd = site
    done = subprocess.run([sys.executable, "-c", COUNT_GC, "print", "--no-wait", "-P", "q",
                           "job"], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    before, _after, enabled = done.stderr.rstrip().rpartition("\n")[2].split()[1:]
    assert (before, enabled) == ("0", "True")
    setup = (Path(__file__).resolve().parent.parent / "setup.py").read_text()
    assert '"lpfilter = lpfilter.__main__:main"' in setup


def test_filter_under_lpd_reads_printcap_entry_without_pyparsing(tmp_path: Path) -> None:
    """As lpd's if= filter: the spool file on stdin, the printer on stdout."""
    lpd = Lpd(tmp_path)
    env = lpd.env(lpd.entry("/dev/null", "pjl@"))
    spooled, out = lpd.spool / "dfA507localhost", tmp_path / "printer"
    spooled.write_bytes(b"@@job@@\n")
    with open(spooled, "rb") as stdin, open(out, "wb") as printer:
        names = imported(["filter", *lpd.argv(lp_pipe=False)], env, lpd.spool, stdin=stdin,
                         stdout=printer)
    assert out.read_bytes() == b"@@job@@\n"
    assert _commands(names) == {"lpfilter.commands.filter_cmd"}
    assert "pyparsing" not in names
    assert "lpfilter.job" in names and "lpfilter.backends.settings" in names  # the control
    assert not names & NO_DATACLASSES, sorted(names & NO_DATACLASSES)  # job, plan: structs
    assert TYPED_CLASSES[("filter", *lpd.argv(lp_pipe=False))] == []


#: What lpd's ``lpfilter filter`` (started for every job) never imports to send a job
#: to a socket printer (~12 ms, issue 16's round 11): argparse (its line is plain:
#: quickargs.read_filter), tempfile with shutil and random (its private copy of the job:
#: safefiles.create_unique), typing (the backends' interfaces), the idna codec (a host
#: name goes to the resolver as bytes), ipaddress, json (the Job it makes is never
#: written) and threading (signal handlers are set where signal.signal may set them).
FILTER_NEVER = {"argparse", "gettext", "locale", "tempfile", "shutil", "random", "bz2", "lzma",
                "typing", "encodings.idna", "stringprep", "unicodedata", "ipaddress",
                "pyparsing", "logging", "json", "threading",
                # PRINTCAP_ENTRY is cut and a PJL job name made safe by hand (round 15)
                "re",
                # its connection is _socket's (backends/connect.py): the socket module
                # makes four enums of its constants and imports selectors (round 16)
                "socket", "selectors",
                # the backends' registry imports with __import__: importlib brings warnings
                "importlib", "warnings",
                # the entry comes from PRINTCAP_ENTRY: no parse cache, no host pattern
                "lpfilter.printcap.cache", "fnmatch",
                # its stop signals are set through _signal (signal's enums: ~0.7 ms), and
                # its context managers are classes (contextlib: 2.7 M instructions)
                "signal", "contextlib",
                # a filter's child processes (an if= under lp=|), their orphans and locks
                "lpfilter.children.orphans", "lpfilter.locks", "psutil",
                # the socket lent to a data filter, and the wait for its exit (round 16)
                "lpfilter.backends.lend", "lpfilter.children.exitwait",
                # enum, functools and collections: as for the quick commands (round 19)
                *ENUM_AND_COLLECTIONS}


def _printer(server: socket.socket) -> tuple[threading.Thread, list[bytes]]:
    """A printer on ``server`` that reads one connection to its end, in a thread."""
    got: list[bytes] = []

    def printer() -> None:
        server.settimeout(30)
        conn, _ = server.accept()
        with conn:
            conn.settimeout(30)
            got.append(b"".join(iter(lambda: conn.recv(65536), b"")))

    thread = threading.Thread(target=printer, daemon=True)
    thread.start()
    return thread, got


def test_filter_sending_to_a_socket_printer_imports_only_what_it_uses(tmp_path: Path) -> None:
    """As lpd's ``lp=|`` program: the job on a socket from lpd (copied to the spool
    first), sent to a JetDirect printer on loopback."""
    lpd = Lpd(tmp_path)
    ours, theirs = socket.socketpair()
    with socket.create_server(("127.0.0.1", 0)) as server, ours, theirs:
        thread, got = _printer(server)
        where = f"127.0.0.1%{server.getsockname()[1]}"
        ours.sendall(b"@@job@@\n")
        ours.shutdown(socket.SHUT_WR)
        names = imported(["filter", *lpd.argv(where)],
                         lpd.env(lpd.entry(f"|lpfilter filter {where}")), lpd.spool,
                         stdin=theirs, stdout=theirs)
        thread.join(30)
    assert got == [b"@@job@@\n"]  # the control: the job went through the socket backend
    assert {"_socket", "lpfilter.backends.jetdirect", "lpfilter.job"} <= names
    names -= _bare(lpd.env(None))  # (an editable install's finder loads ipaddress)
    assert not names & FILTER_NEVER, sorted(names & FILTER_NEVER)


def test_filter_writing_to_lpd_s_printer_socket_imports_only_what_it_uses(
        tmp_path: Path) -> None:
    """As lpd's ``if=`` filter with ``lp=host%port``: standard output is lpd's connection
    to the printer, which the filter wraps as a socket of its own (round 19: it was the
    ``socket`` module's, whose import was a tenth of the filter's start)."""
    lpd = Lpd(tmp_path)
    spooled = lpd.spool / "dfA508localhost"
    spooled.write_bytes(b"@@job@@\n")
    with socket.create_server(("127.0.0.1", 0)) as server:
        thread, got = _printer(server)
        where = f"127.0.0.1%{server.getsockname()[1]}"
        with socket.create_connection(server.getsockname(), timeout=30) as to_printer, \
                open(spooled, "rb") as stdin:
            names = imported(["filter", *lpd.argv(lp_pipe=False)],
                             lpd.env(lpd.entry(where, "pjl@")), lpd.spool, stdin=stdin,
                             stdout=to_printer)
        thread.join(30)
    assert got == [b"@@job@@\n"]  # the control: the job went through lpd's socket
    assert "lpfilter.backends.stdout" in names and "_socket" in names
    names -= _bare(lpd.env(None))
    assert not names & FILTER_NEVER, sorted(names & FILTER_NEVER)
    assert not names & NO_DATACLASSES, sorted(names & NO_DATACLASSES)


def test_the_typed_class_check_sees_typing_s_classes() -> None:
    """The control for ``TYPED``: it flags a TypedDict and a typing.NamedTuple, and neither
    a collections.namedtuple (printcap.source.Origin's base) nor a plain class."""
    import collections
    import typing
    scope: dict[str, object] = {"typing": typing}
    exec(TYPED, scope)  # noqa: S102 (the wrapper's own source, run as the wrapper runs it)
    typed = scope["typed"]
    assert callable(typed)

    class Data(typing.TypedDict):
        a: int

    class Pair(typing.NamedTuple):
        a: int

    plain = collections.namedtuple("plain", "a")
    assert (typed(Data), typed(Pair), typed(plain), typed(int)) == (True, True, False, False)


# --- the fast entry reader ---------------------------------------------------------------

def _same(text: str) -> None:
    assert grammar.parse_entry(text, fast=True) == grammar.parse_entry(text)


def test_fast_entry_reader_equals_pyparsing_on_the_corpus() -> None:
    require_shared()
    count = 0
    for path in sorted(CORPUS.glob("*.printcap")):
        text = path.read_bytes().decode("utf-8", "surrogateescape")
        for raw in grammar.assemble(grammar.physical_lines(text)):
            _same(raw.text)
            count += 1
    assert count > 40


def test_printcap_entry_reads_as_pyparsing_reads_it_on_the_corpus(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every queue of the corpus, written as lpd writes PRINTCAP_ENTRY, is the same entry
    (names, keys, option texts, typed values) read by the fast path and by pyparsing."""
    from lpfilter import printcap
    require_shared()
    texts = []
    for path in sorted(CORPUS.glob("*.printcap")):
        pc = printcap.load([str(path)], cache_dir=None)
        texts += [entry_to_text(pc.lookup(name, usable=False)) for name in pc.queue_names()]
    assert len(texts) > 20

    def shape(text: str) -> object:
        entry = entry_from_text(text)
        return entry.name, entry.names, [(k, o.text, o.value) for k, o in entry.items()]

    fast = [shape(text) for text in texts]
    reference = grammar.parse_entry
    monkeypatch.setattr(grammar, "parse_entry", lambda text, fast=False: reference(text))
    assert [shape(text) for text in texts] == fast


#: Characters that steer the entry grammar, and a few that make keys and values.
ALPHABET = ":|\\#=@ \t\r\n\x0c" + "abclpsz019%."


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=ALPHABET, max_size=80) | st.text(max_size=40))
@example(r"lp|x:\:a=b\\:c\:")
@example(":")
@example("")
@example("a\\")
def test_fast_entry_reader_equals_pyparsing_on_any_text(text: str) -> None:
    _same(text)


# --- the lazy parser ---------------------------------------------------------------------

def _commands_action(parser: argparse.ArgumentParser) -> commands_parser.Commands:
    return next(a for a in parser._actions  # noqa: SLF001
                if isinstance(a, commands_parser.Commands))


def test_lazy_parser_prints_what_the_whole_parser_prints() -> None:
    whole, lazy = cli.build_parser(), cli.build_parser(lazy=True)
    assert lazy.format_help() == whole.format_help()
    assert lazy.format_usage() == whole.format_usage()
    made, built = _commands_action(whole), _commands_action(lazy)
    for name, (_module, _help, aliases) in cli.COMMANDS.items():
        sub = built.parser_for(name)
        assert sub.format_help() == made.parser_for(name).format_help(), name
        assert all(built.parser_for(alias) is sub for alias in aliases)
        assert built.parser_for(name) is sub  # made once, kept


def test_lazy_parser_makes_only_the_chosen_command() -> None:
    lazy = cli.build_parser(lazy=True)
    args = lazy.parse_args(["-P", "q", "status", "--json"])
    assert (args.command, args.printer, args.json) == ("status", ["q"], True) or \
        (args.command, args.json) == ("status", True)
    made = {word for word, parser in _commands_action(lazy)._name_parser_map.items()  # noqa: SLF001
            if isinstance(parser, argparse.ArgumentParser)}
    assert made == {"status", "lpq"}


def test_the_cache_key_is_hashlibs_sha256() -> None:
    """The interpreter's own SHA-256 names the cache file and a printer's lock as
    hashlib's did (the same files)."""
    import hashlib

    from lpfilter.digest import sha256_hex
    from lpfilter.spool.printers import device_key
    for data in (b"", b"/etc/printcap\0/\0" + bytes(range(256)), "é\udc80".encode(
            "utf-8", "surrogateescape") * 1000):
        assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
    assert device_key("127.0.0.1%9100") == (
        "device-127_0_0_1_9100-" + hashlib.sha256(b"127.0.0.1%9100").hexdigest()[:16]
        + ".lock")


def test_help_still_fits_the_terminal(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A parser built without asking the width (lpfilter.commands.parser) still formats its
    help to the terminal's width, as argparse does (COLUMNS, else the terminal), never to
    the fixed width its checks use."""
    widths = {}
    for columns in (40, 200):
        monkeypatch.setenv("COLUMNS", str(columns))
        assert cli.main(["print", "--help"]) == 0
        widths[columns] = max(map(len, capsys.readouterr().out.splitlines()))
    assert widths[40] < 60 < 100 < widths[200] <= 198


def test_an_entry_looks_up_this_host_only_when_asked(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A looked-up entry reads /etc/hosts (and imports ipaddress) only for %h, %H or
    ``host``: never for a command that needs neither, and once for one that does."""
    from lpfilter.printcap import entry as entry_module
    from lpfilter.printcap import load
    from lpfilter.printcap.hostmatch import HostInfo
    printcap = tmp_path / "printcap"
    printcap.write_text("q:lp=127.0.0.1%9100:sd=/var/spool/%h-%P\n")
    looked: list[int] = []
    here = HostInfo.fixed("here.example")

    def local_host() -> HostInfo:
        looked.append(1)
        return here

    monkeypatch.setattr(entry_module, "local_host", local_host)
    entry = load([str(printcap)]).lookup("q")
    assert entry.string("lp") == "127.0.0.1%9100" and looked == []  # a %, not %h or %H
    assert entry.expand(entry.string("sd") or "") == "/var/spool/here-q" and looked == [1]
    assert entry.host is here and looked == [1]
    assert entry.replace(requested="Q").host is here
    fresh = [load([str(printcap)]).lookup("q") for _ in range(2)]
    assert fresh[0] == fresh[1] and len(looked) == 3  # == compares the host: looked up
    given = load([str(printcap)], host=HostInfo.fixed("there.example")).lookup("q")
    assert given.host.short == "there" and len(looked) == 3


#: ``python -m lpfilter filter ARGS`` that says whether the job's backend was imported when
#: the filter began to read the job (``FilterRun._data``).
BEFORE_DATA = ("import runpy, sys\n"
               "from lpfilter.filtermode import run\n"
               "data = run.FilterRun._data\n"
               "def look(self):\n"
               "    sys.stderr.write('\\nBACKEND %s\\n'"
               " % ('lpfilter.backends.jetdirect' in sys.modules))\n"
               "    return data(self)\n"
               "run.FilterRun._data = look\n"
               "sys.argv = ['lpfilter', *sys.argv[1:]]\n"
               "runpy.run_module('lpfilter', run_name='__main__', alter_sys=True)\n")


def test_filter_imports_the_backend_before_it_reads_the_job(tmp_path: Path) -> None:
    """The backend's import (2-3 ms) is not between the job's last byte from lpd and its
    first at the printer (filter_bench's "gap"): it is made before the job is read."""
    lpd = Lpd(tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as server:
        thread, got = _printer(server)
        where = f"127.0.0.1%{server.getsockname()[1]}"  # lp=| lpfilter filter HOST%PORT
        env = lpd.env(lpd.entry(f"|lpfilter filter {where}"))
        job = tmp_path / "job"
        job.write_bytes(b"@@job@@\n")
        with open(job, "rb") as stdin:
            done = subprocess.run([sys.executable, "-c", BEFORE_DATA, "filter",
                                   *lpd.argv(where)], env=env, cwd=lpd.spool, stdin=stdin,
                                  capture_output=True, timeout=60, check=False)
        thread.join(30)
    assert done.returncode == 0, done.stderr[-2000:]
    assert b"\nBACKEND True\n" in done.stderr, done.stderr[-2000:]
    assert got == [b"@@job@@\n"]  # the control: the job went through that backend
