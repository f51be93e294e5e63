"""Day-to-day operation (issue 10, sections 3 and 4): no printcap, one exit status for a
missing spool directory in every command."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from spoolkit import job_ids, kit_at, wait_served, wait_until

from lpfilter.cli import main
from lpfilter.commands import environment
from lpfilter.status import ExitStatus

REPO = Path(__file__).resolve().parents[1]


# --- no printcap --------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["default", "--printcap", "LPFILTER_PRINTCAP"])
@pytest.mark.parametrize("command", [["status"], ["checkpc"], ["watch", "--once"],
                                     ["printcap", "--all"]])
def test_no_printcap_says_how_to_name_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str], source: str,
                                          command: list[str]) -> None:
    """No printcap at all: one line naming the file, --printcap, LPFILTER_PRINTCAP and an
    example printcap that exists on this machine; the config status (3)."""
    missing = tmp_path / "no-printcap"
    monkeypatch.setattr(environment, "SYSTEM_PRINTCAP", str(missing))
    monkeypatch.setenv("HOME", str(tmp_path))
    argv = list(command)
    if source == "--printcap":
        argv = ["--printcap", str(missing), *argv]
    elif source == "LPFILTER_PRINTCAP":
        monkeypatch.setenv("LPFILTER_PRINTCAP", str(missing))
    assert main(argv) == ExitStatus.CONFIG
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lpfilter: no printcap found: "), err
    named = "the default" if source == "default" else f"given by {source}"
    assert f"{missing} ({named}) does not exist" in err, err
    for word in ("--printcap FILE", "LPFILTER_PRINTCAP=FILE", "etc/printcap.example"):
        assert word in err, word
    shown = re.search(r"start from (?:etc/printcap\.example \(installed as )?(/\S+?)\)?$", err)
    assert shown and Path(shown.group(1)).is_file(), err  # a path the user can open
    assert Path(shown.group(1)).read_bytes() == (REPO / "etc" / "printcap.example").read_bytes()


# --- a missing spool directory: one status (ACCESS, 5) for every command ------------------

MISSING_SPOOL_COMMANDS = [
    ["print", "-P", "q", "DOC"], ["print", "-P", "q", "--no-wait", "DOC"],
    ["watch", "--once", "-P", "q"], ["watch", "--once", "--all"],
    ["status", "-P", "q"], ["status", "--all"], ["status", "-P", "q", "--json"],
    ["cancel", "-P", "q", "1"], ["lprm", "-P", "q", "--all"], ["requeue", "-P", "q", "--all"],
    ["hold", "-P", "q", "1"], ["release", "-P", "q", "--all"]]


@pytest.mark.parametrize("argv", MISSING_SPOOL_COMMANDS, ids=" ".join)
def test_a_missing_spool_directory_is_the_same_status_everywhere(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """Every command that meets a missing sd says so in one line naming it and the fix,
    and exits 5; status shows the queue with the problem, never as an empty queue."""
    sd = tmp_path / "spool-q"
    printcap = tmp_path / "printcap"
    printcap.write_text(f"q:sd={sd}:lp=/dev/null\n")
    (tmp_path / "doc.txt").write_text("hello\n")
    argv = [str(tmp_path / "doc.txt") if a == "DOC" else a for a in argv]
    assert main(["--printcap", str(printcap), *argv]) == ExitStatus.ACCESS
    out, err = capsys.readouterr()
    line = (f"lpfilter: queue q: spool directory {sd} does not exist; run 'lpfilter checkpc"
            " --fix' to create it\n")
    assert err == line
    assert "no jobs" not in out
    if argv[0] == "status":
        assert ("no spool directory" in out) if "--json" not in argv else (
            '"error": "queue q: spool directory' in out)
    assert not sd.exists()


def test_a_daemon_that_cannot_start_a_queue_for_want_of_its_spool_directory_exits_5(
        tmp_path: Path) -> None:
    """The daemon keeps running (the directory may appear) but says why the queue does not
    start, and exits 5 when stopped, as every other command does."""
    with kit_at(tmp_path) as kit:
        sd = kit.queue("q", "/dev/null", accounting=False)
        sd.rmdir()
        daemon = kit.start("watch", "-P", "q")
        wait_until(lambda: "does not exist" in daemon.stderr(), what="the daemon's error line")
        assert daemon.popen.poll() is None
        assert daemon.stop() == ExitStatus.ACCESS
        assert (f"queue q: spool directory {sd} does not exist; run 'lpfilter checkpc --fix'"
                in daemon.stderr())


def test_exit_status_page_names_the_missing_spool_directory_for_every_command() -> None:
    from test_docs import MAN1, plain, section
    five = plain(section(MAN1.read_text(encoding="utf-8"), "EXIT STATUS").split(".B 5\n")[1]
                 .split(".TP")[0])
    assert "missing spool directory" in five
    for command in ("print", "watch", "status", "cancel", "requeue", "hold", "release"):
        assert command in five, command


# --- checkpc: unknown keys and keys lpfilter's own spool does not act on -------------------

def _checkpc(tmp_path: Path, capsys: pytest.CaptureFixture[str],
             options: list[str]) -> tuple[int, list[str], str]:
    """checkpc on queue q with each option on a line of its own, from line 2 on."""
    sd = tmp_path / "spool"
    sd.mkdir(mode=0o700, exist_ok=True)
    printcap = tmp_path / "printcap"
    printcap.write_text(f"q:sd={sd}:lp=/dev/null\n" + "".join(
        f"    :{option}\n" for option in options))
    status = main(["--printcap", str(printcap), "checkpc"])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


@pytest.mark.parametrize(("written", "hint"), [
    ("sycn", "sync"), ("pgl", "pjl"), ("connect_timout#5", "connect_timeout"),
    ("ftp_sesions#2", "ftp_sessions"), ("lpd_pol_time#5", "lpd_poll_time"),
    ("frobnicate=1", None), ("Qz", None)])
def test_checkpc_reports_every_unknown_key_with_a_hint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], written: str,
        hint: str | None) -> None:
    """A key of neither LPRng nor lpfilter is a problem on its own line (file:line), with
    the key it most likely misspells."""
    status, out, _ = _checkpc(tmp_path, capsys, [written])
    key = re.split("[=#@]", written)[0].lower()
    assert status == ExitStatus.FAILURE
    assert out == [f"{tmp_path / 'printcap'}:2: unknown key '{key}': neither LPRng nor"
                   " lpfilter knows it, so both ignore it"
                   + (f"; did you mean '{hint}'?" if hint else "")]


def test_checkpc_knows_every_key_of_lprng_and_lpfilter(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """LPRng keys the key table leaves out (lpd.conf settings...), lpfilter's own keys
    and ifhp's options (ifhp= for the ifhp filter, which reads it from PRINTCAP_ENTRY:
    every ifhp site's printcap was one problem a queue) are not unknown."""
    known = ("lpd_poll_time#600 kerberos_keytab=/etc/k ssl_ca_file=/x chooser_interval#5"
             " discard_zero_length_jobs user_printcap=.printcap pjl sync pagecount"
             " ftp_sessions#2 waitend=eof cm=Hello lf=log af=acct ld=\\033E mx#0 sh"
             " ifhp=model=hp4,status@")
    assert _checkpc(tmp_path, capsys, known.split()) == (ExitStatus.OK, [], "")


NOTED = ["chooser=/usr/bin/c", "router=/usr/bin/r", "br#9600",
         "stty=-parity", "rg=staff", "fx=flp", "stop_on_abort", "translate_format=xf",
         "control_filter=/bin/cf"]


def test_checkpc_notes_keys_its_own_spool_does_not_act_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Filters, banners, sv... set: one note line each (file:line, the option, what lpfilter
    does instead); notes alone are no problem (exit 0, nothing on stderr)."""
    status, out, err = _checkpc(tmp_path, capsys, NOTED)
    assert (status, err) == (ExitStatus.OK, "")
    assert len(out) == len(NOTED)
    for line_no, (option, line) in enumerate(zip(NOTED, out), 2):
        assert line.startswith(f"{tmp_path / 'printcap'}:{line_no}: note: {option}: not acted"
                               " on by lpfilter's own spool (watch, print) yet: "), line
        assert line.endswith("; only LPRng's lpd uses it"), line
    assert "it does not route jobs" in out[NOTED.index("router=/usr/bin/r")]
    installed = subprocess.run([sys.executable, "-m", "lpfilter", "--printcap",
                                str(tmp_path / "printcap"), "checkpc"], capture_output=True,
                               text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
    assert (installed.returncode, installed.stdout.splitlines(), installed.stderr) == (
        0, out, "")


def test_pages_name_every_key_checkpc_notes() -> None:
    from test_docs import MAN1, MAN5, mentions, plain, section

    from lpfilter.printcap.keys import NOT_ACTED_ON
    differences = plain(section(MAN5.read_text(encoding="utf-8"), "DIFFERENCES FROM LPRNG"))
    heading = re.search(r'(?m)^\.SS "lpfilter checkpc\b.*$', MAN1.read_text(encoding="utf-8"))
    assert heading
    checkpc = plain(re.split(r"(?m)^\.S[SH] ", MAN1.read_text(encoding="utf-8")[heading.end():],
                             maxsplit=1)[0])
    for key in NOT_ACTED_ON:
        assert mentions(differences, key), f"lpfilter-printcap(5): {key}"
        assert mentions(checkpc, key), f"lpfilter(1) checkpc: {key}"
    assert "did you mean" in checkpc and "note" in checkpc and "status 0" in checkpc


def test_checkpc_notes_come_with_problems_and_spare_what_has_no_effect(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A filter that is lpfilter's own, a flag turned off, an empty value: no note. Notes
    next to a problem: the problem decides the status, and only problems are counted."""
    quiet = [f"if={Path(sys.executable).with_name('lpfilter')} filter -v", "hl@", "ab@",
             "sh", "sv=", "br#0"]
    assert _checkpc(tmp_path, capsys, quiet) == (ExitStatus.OK, [], "")
    status, out, err = _checkpc(tmp_path, capsys, ["router=/usr/libexec/lpf", "sycn"])
    assert status == ExitStatus.FAILURE and len(out) == 2
    assert ": note: router=/usr/libexec/lpf:" in out[0] and "unknown key 'sycn'" in out[1]
    assert err == "lpfilter: checkpc: 1 problem found\n"


# --- watch logs to stderr: start, one line per job outcome, stop ---------------------------

ODD_NAME = "ann\x1b[2Jual\n.txt"  # an escape sequence and a newline in a file name
SHOWN = "ann\\x1b[2Jual\\n.txt"


def _job_line(queue: str, job: str, name: str, size: int, outcome: str) -> str:
    import pwd
    user = pwd.getpwuid(os.getuid()).pw_name
    return (rf"lpfilter: queue {queue}: job {job} '{re.escape(name)}' \(user {user}, {size}"
            rf" bytes\): {outcome} after \d+\.\d\d s: .+")


def test_the_daemon_logs_its_start_each_job_and_its_stop(tmp_path: Path) -> None:
    """A real `lpfilter watch`: its stderr (the journal) has one line at start (version,
    queues, printcap), one per job outcome naming the job with control characters made
    visible, one at stop; `-q` leaves only warnings."""
    from lpfilter import __version__
    with kit_at(tmp_path) as kit:
        kit.queue("q", kit.recorder())
        bad = kit.program("bad.sh", "#!/bin/sh\ncat >/dev/null\nexit 2\n")
        kit.queue("bad", f"|{bad}", accounting=False)
        (kit.root / ODD_NAME).write_bytes(b"hello\n")
        (kit.root / "refused.txt").write_bytes(b"no\n")
        daemon = kit.start("watch")
        wait_until(lambda: "serving" in daemon.stderr(), what="the start line")
        [good] = job_ids(kit.run("print", "-P", "q", "--no-wait",
                                 str(kit.root / ODD_NAME)).stdout, "q")
        [failed] = job_ids(kit.run("print", "-P", "bad", "--no-wait",
                                   str(kit.root / "refused.txt")).stdout, "bad")
        wait_until(lambda: kit.states("q").get(good) == "done"
                   and kit.states("bad").get(failed) == "failed", what="both outcomes")
        assert daemon.stop() == 0
        lines = daemon.stderr().splitlines()
        [later] = job_ids(kit.run("print", "-P", "q", "--no-wait",
                                  str(kit.root / ODD_NAME)).stdout, "q")
        once = kit.run("watch", "--once", "-P", "q")  # from cron: the job line only
        assert once.returncode == 0, once.stderr
        assert re.fullmatch(_job_line("q", later, SHOWN, 6, "done") + "\n", once.stderr)
    assert "\x1b" not in daemon.stderr()
    assert lines[0] == (f"lpfilter: watch started: lpfilter {__version__}, pid {daemon.pid},"
                        f" serving 2 queues: q, bad; printcap {kit.printcap};"
                        f" print server on {kit.lock_dir / 'lpfilter.sock'}")
    assert lines[-1] == f"lpfilter: watch stopped (pid {daemon.pid}), exit status 0"
    jobs = sorted(lines[1:-1])
    assert len(jobs) == 2, lines
    assert re.fullmatch(_job_line("bad", failed, "refused.txt", 3, "failed"), jobs[0]), jobs
    assert "bad.sh exited 2" in jobs[0]
    assert re.fullmatch(_job_line("q", good, SHOWN, 6, "done"), jobs[1]), jobs


def test_watch_quiet_logs_only_warnings(tmp_path: Path) -> None:
    with kit_at(tmp_path) as kit:
        kit.queue("q", kit.recorder())
        daemon = kit.start("watch", "-q", "-P", "q")
        wait_served(kit, "q", daemon)
        [job] = job_ids(kit.run("print", "-P", "q", "--no-wait", str(kit.printcap)).stdout,
                        "q")
        wait_until(lambda: kit.states("q").get(job) == "done", what="the job")
        assert daemon.stop() == 0
        assert daemon.stderr() == ""


def test_watch_once_logs_each_job_but_no_start_or_stop_and_print_stays_quiet(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """From cron, only the jobs are news; other commands keep their quiet default even in
    the same process after a watch."""
    sd = tmp_path / "spool"
    sd.mkdir(mode=0o700)
    printcap = tmp_path / "printcap"
    printcap.write_text(f"q:sd={sd}:lp=/dev/null\n")
    (tmp_path / ODD_NAME).write_bytes(b"hi\n")
    base = ["--printcap", str(printcap)]
    assert main([*base, "print", "-P", "q", "--no-wait", str(tmp_path / ODD_NAME)]) == 0
    capsys.readouterr()
    assert main([*base, "watch", "--once", "-P", "q"]) == 0
    err = capsys.readouterr().err
    assert re.fullmatch(_job_line("q", "000001", SHOWN, 3, "done") + "\n", err), err
    import logging
    assert logging.getLogger("lpfilter.spool.worker").level == logging.NOTSET  # not leaked
    assert main([*base, "watch", "--once", "-q", "-P", "q"]) == 0
    assert main([*base, "print", "-P", "q", str(tmp_path / ODD_NAME)]) == 0
    assert capsys.readouterr() == ("q-000002\n", "")


# --- etc/lpfilter.service and etc/lpfilter.cron --------------------------------------------

SERVICE = REPO / "etc" / "lpfilter.service"
CRON = REPO / "etc" / "lpfilter.cron"


def _unit(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_service_finds_lpfilter_on_the_path_and_is_hardened_without_breaking_printing(
        tmp_path: Path) -> None:
    text = SERVICE.read_text(encoding="utf-8")
    unit = _unit(text)
    [start] = unit["ExecStart"]
    assert start.split()[0] == "lpfilter", "ExecStart finds lpfilter in systemd's search path"
    assert "write\n# its full path here" in text and "ExecStart=/opt/" in text
    for key, value in (("NoNewPrivileges", "yes"), ("PrivateTmp", "yes"),
                       ("ProtectSystem", "strict"), ("RuntimeDirectory", "lpfilter"),
                       ("RuntimeDirectoryPreserve", "yes"), ("CacheDirectory", "lpfilter"),
                       ("CacheDirectoryMode", "0700"), ("RuntimeDirectoryMode", "0700")):
        assert unit.get(key) == [value], key
    assert "-/var/spool/lpd" in unit["ReadWritePaths"]
    # root's printer locks are in /run/lpfilter (environment.lock_dir), the parse cache is
    # where the unit points it
    assert unit["Environment"] == ["LPFILTER_CACHE_DIR=/var/cache/lpfilter"]
    # these would take the printer devices or the network away
    for breaking in ("PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock",
                     "PrivateNetwork", "IPAddressDeny", "RestrictAddressFamilies", "User"):
        assert breaking not in unit, breaking
    analyze = shutil.which("systemd-analyze")
    if analyze is not None:  # where systemd is installed: its own check of the unit
        installed = Path(sys.executable).with_name("lpfilter")
        assert installed.is_file()
        copy = tmp_path / "lpfilter.service"
        copy.write_text(text.replace("ExecStart=lpfilter ", f"ExecStart={installed} "))
        done = subprocess.run([analyze, "verify", "--man=no", str(copy)], capture_output=True,
                              text=True, timeout=120, check=False)
        assert (done.returncode, done.stderr) == (0, ""), done.stderr


SOCKET = REPO / "etc" / "lpfilter.socket"


def test_socket_unit_hands_port_515_to_the_service(tmp_path: Path) -> None:
    """etc/lpfilter.socket: systemd listens on 515 and passes the socket to
    lpfilter.service (one service, not one per connection); the ExecStart its comment
    suggests is one the parser accepts; systemd's own check passes where it is installed."""
    from lpfilter import cli
    text = SOCKET.read_text(encoding="utf-8")
    unit = _unit(text)
    assert unit["ListenStream"] == ["515"]
    assert unit["Accept"] == ["no"] and unit["Service"] == ["lpfilter.service"]
    assert unit["WantedBy"] == ["sockets.target"]
    [suggested] = [line.split("=", 1)[1] for line in text.splitlines()
                   if line.startswith("#   ExecStart=lpfilter")]
    parsed = cli.build_parser().parse_args(suggested.split()[1:])
    assert parsed.command == "watch" and parsed.allow == ["192.0.2.0/24"]
    analyze = shutil.which("systemd-analyze")
    if analyze is not None:
        installed = Path(sys.executable).with_name("lpfilter")
        service = SERVICE.read_text(encoding="utf-8")
        (tmp_path / "lpfilter.service").write_text(
            service.replace("ExecStart=lpfilter ", f"ExecStart={installed} "))
        (tmp_path / "lpfilter.socket").write_text(text)
        done = subprocess.run([analyze, "verify", "--man=no", str(tmp_path / "lpfilter.socket")],
                              capture_output=True, text=True, timeout=120, check=False)
        assert (done.returncode, done.stderr) == (0, ""), done.stderr


def test_cron_line_finds_lpfilter_on_its_path() -> None:
    text = CRON.read_text(encoding="utf-8")
    path = re.search(r"(?m)^PATH=(\S+)$", text)
    assert path and "/usr/local/bin" in path.group(1).split(":")
    [line] = [row for row in text.splitlines() if row and not row.startswith("#") and "=" not in
              row.split()[0]]
    assert line.split()[6:9] == ["lpfilter", "watch", "--once"], line
    assert "full path of lpfilter" in text and "-q" in text


# --- pyproject.toml: the standard build -------------------------------------------------

LEGACY = re.compile(r"DEPRECATION|legacy (setup\.py|editable|install)|setup\.py (install|develop"
                    r"|bdist_wheel)", re.I)


def test_pyproject_builds_the_standard_way(tmp_path: Path) -> None:
    """pyproject.toml names setuptools' PEP 517 backend (metadata stays in setup.py), and
    a real build of a copy of the source makes a wheel with the command and the data files,
    without a word about a legacy build (no network: the venv's setuptools builds it)."""
    import tomllib
    import zipfile
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"
    [requirement] = project["build-system"]["requires"]
    assert re.fullmatch(r"setuptools>=(\d+)", requirement) and int(requirement[12:]) >= 64
    assert "project" not in project  # one source of metadata: setup.py
    from importlib.metadata import version
    have = tuple(int(p) for p in version("setuptools").split(".")[:2])
    assert have >= (70, 1), (f"setuptools {version('setuptools')} cannot build a wheel by"
                             " itself: install the test extras again (pip install '.[test]')")
    source = tmp_path / "src"
    source.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    for name in ("lpfilter", "man", "etc"):
        shutil.copytree(REPO / name, source / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "--no-build-isolation", "--no-index", "-w", str(tmp_path / "out"),
                            str(source)], capture_output=True, text=True, timeout=300,
                           check=False, stdin=subprocess.DEVNULL)
    output = built.stdout + built.stderr
    assert built.returncode == 0, output
    assert "(pyproject.toml)" in output and not LEGACY.search(output), output
    [wheel] = (tmp_path / "out").glob("lpfilter-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names
                            if n.endswith(".dist-info/entry_points.txt"))
    assert "lpfilter = lpfilter.__main__:main" in entry_points  # start-up without collection
    for data in ("share/doc/lpfilter/printcap.example", "share/man/man1/lpfilter.1",
                 "share/man/man5/lpfilter-printcap.5"):
        assert any(n.endswith(f".data/data/{data}") for n in names), data
    assert environment.EXAMPLE_DOC == "share/doc/lpfilter/printcap.example"  # what errors name


# --- found by review after issue 10 -----------------------------------------------------
@pytest.mark.parametrize("option", ["--settle", "--grace"])
@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_watch_takes_only_a_finite_number_of_seconds(tmp_path: Path, option: str,
                                                     value: str) -> None:
    """--settle nan passed the check (nan < 0 is false) and the worker spun at full CPU."""
    (tmp_path / "sd").mkdir()
    (tmp_path / "printcap").write_text(f"q:sd={tmp_path / 'sd'}:lp=/dev/null\n")
    assert main(["--printcap", str(tmp_path / "printcap"), "watch", "--once", "-P", "q",
                 option, value]) == ExitStatus.USAGE


def test_cancel_a_passes_over_a_listed_printer_nothing_defines(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """all=lp,ghost: watch and status skip ghost; cancel -a stopped at it (exit 4) before
    removing anything."""
    (tmp_path / "sd").mkdir()
    (tmp_path / "printcap").write_text(f"all:all=lp,ghost\nlp:sd={tmp_path / 'sd'}"
                                       ":lp=/dev/null\n")
    pc = ["--printcap", str(tmp_path / "printcap")]
    assert main([*pc, "print", "--no-wait", "--hold", "-P", "lp", "/dev/null"]) in (0, 5, 6)
    (tmp_path / "doc").write_text("a page\n")
    assert main([*pc, "print", "--no-wait", "--hold", "-P", "lp", str(tmp_path / "doc")]) == 0
    capsys.readouterr()
    assert main([*pc, "cancel", "-a", "all"]) == 0
    assert "cancelled" in capsys.readouterr().out


def test_release_starts_a_new_wait_for_the_printer(tmp_path: Path) -> None:
    """A job held after the printer was away kept its "unreachable since": released a week
    later, it dated every new job's "since" back to then."""
    from lpfilter.spool.store import SpoolStore
    (tmp_path / "sd").mkdir()
    (tmp_path / "printcap").write_text(f"q:sd={tmp_path / 'sd'}:lp=/dev/null\n")
    (tmp_path / "doc").write_text("a page\n")
    pc = ["--printcap", str(tmp_path / "printcap")]
    assert main([*pc, "print", "--no-wait", "--hold", "-P", "q", str(tmp_path / "doc")]) == 0
    store = SpoolStore(str(tmp_path / "sd"), "q")
    job = store.read("000001")
    assert job is not None
    job.unreachable_since, job.unreachable_tries = 1_000_000.0, 7
    with store.tickets_locked():
        store.write(job)
    assert main([*pc, "release", "-P", "q", "1"]) == 0
    job = store.read("000001")
    assert job is not None and (job.unreachable_since, job.unreachable_tries) == (0.0, 0)
    store.close()


def test_queue_names_from_the_command_line_reach_the_log_visible(tmp_path: Path) -> None:
    """A glob entry takes its queue name (and %P in sd) from -P: a BEL in it reached
    stderr raw in watch --once's line about a file left for later."""
    spool = tmp_path / "spool"
    (spool / "lp\az").mkdir(parents=True)
    (tmp_path / "printcap").write_text(f"lp*:sd={spool}/%P:lp=/dev/null\n")
    held = spool / "lp\az" / "doc.txt"
    writer = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                               f"f = open({str(held)!r}, 'w'); f.write('x'); f.flush()\n"
                               "print('open', flush=True); time.sleep(30)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "open\n"
        done = subprocess.run([sys.executable, "-m", "lpfilter", "--printcap",
                               str(tmp_path / "printcap"), "watch", "--once", "-P", "lp\az"],
                              capture_output=True, text=True, timeout=60, check=False,
                              stdin=subprocess.DEVNULL)
    finally:
        writer.kill()
        writer.wait(timeout=10)
        if writer.stdout is not None:
            writer.stdout.close()
    assert done.returncode == 8, done.stderr
    assert "left doc.txt" in done.stderr and "\a" not in done.stderr, done.stderr


def test_checkpc_names_a_host_name_that_can_never_resolve(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """lp=-foo%9100: its jobs wait like a printer that is away, and checkpc said nothing."""
    for name in ("sd1", "sd2", "sd3"):
        (tmp_path / name).mkdir(mode=0o700)
    (tmp_path / "printcap").write_text(f"bad:sd={tmp_path / 'sd1'}:lp=-foo%9100\n"
                                       f"good:sd={tmp_path / 'sd2'}:lp=printer.example%9100\n"
                                       f"dots:sd={tmp_path / 'sd3'}:lp=printer..example%9100\n")
    assert main(["--printcap", str(tmp_path / "printcap"), "checkpc"]) == ExitStatus.FAILURE
    out = capsys.readouterr().out
    assert f"{tmp_path / 'printcap'}:1: queue bad: lp=-foo%9100: '-foo' is not a valid host" in out
    assert (f"{tmp_path / 'printcap'}:3: queue dots: lp=printer..example%9100:"
            " 'printer..example' is not a valid host name (an empty part between dots") in out
    assert "queue good" not in out


def test_checkpc_names_a_bad_host_in_rm_and_a_colon_that_is_no_ipv6_address(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """rm=-foo (forwarding written LPRng's old way) and lp=q@host\\:515 (a port after
    ':'): never reached, and checkpc said nothing; a real IPv6 address is good."""
    lines = ["fwd:rm=-foo:rp=q", "colon:lp=q@printer\\:515", "six:lp=raw@[fe80\\:\\:1]",
             "sixp:lp=fe80\\:\\:1%9100", "ok:rm=printer.example:rp=q"]
    for number in range(len(lines)):
        (tmp_path / f"sd{number}").mkdir(mode=0o700)
    (tmp_path / "printcap").write_text("".join(
        f"{line}:sd={tmp_path / f'sd{number}'}\n" for number, line in enumerate(lines)))
    assert main(["--printcap", str(tmp_path / "printcap"), "checkpc"]) == ExitStatus.FAILURE
    out = capsys.readouterr().out.splitlines()
    where = f"{tmp_path / 'printcap'}"
    assert out == [
        f"{where}:1: queue fwd: rm=-foo: '-foo' is not a valid host name (letters, digits,"
        " '-', '.' and '_'), so no job can ever reach it (they would wait as for a printer"
        " that is away); fix the host name",
        f"{where}:2: queue colon: lp=q@printer\\:515: 'printer:515' is not a valid IPv6"
        " address (a port is written after '%': host%515), so no job can ever reach it (they"
        " would wait as for a printer that is away); fix the host name"], out
