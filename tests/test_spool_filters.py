"""Filters under lpfilter's own spool (issue 15): ``if=``/``Xf=``/``filter=`` run as LPRng's
lpd runs them (fds, argv, environment, directory), their exit statuses decide the job's
state, their output streams to the printer, a stalled or killed filter is bounded and
the job stays in the spool with the reason (lprng-filters.md §1-§5)."""
from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import pytest
from localkit import need_root
from filterrunkit import lp_of as _lp
from filterrunkit import print_bytes as _print
from filterrunkit import printer  # noqa: F401 - a fixture
from filterrunkit import watch_once as _watch
from spoolkit import Kit, kit, wait_until  # noqa: F401 - kit: a fixture

from lpfilter.emulator.jetdirect import VirtualPrinter

PY = sys.executable

#: A data filter that records what it was given: argv, environment, fds, cwd, its input.
RECORDING = r'''#!{python} -IS
import json, os, sys
fds = sorted(int(n) for n in os.listdir("/proc/self/fd"))
info = {{"argv": sys.argv[1:], "env": dict(os.environ), "cwd": os.getcwd(),
        "fds": fds, "stdin_regular": os.path.isfile("/proc/self/fd/0"),
        "stdin_offset": os.lseek(0, 0, os.SEEK_CUR), "uid": os.getuid()}}
data = sys.stdin.buffer.read()
info["data"] = data.decode("latin-1")
with open({out!r}, "a") as handle:
    handle.write(json.dumps(info) + "\n")
sys.stderr.write("recorded one run\n")
sys.stdout.buffer.write(b"<" + data + b">")
'''




def _printed(printer: VirtualPrinter, count: int = 1) -> list[bytes]:
    printer.wait_for("closed", count, timeout=30)
    return [r.path.read_bytes() for r in list(printer.records)[:count]]  # type: ignore[union-attr]


def test_if_tr_upper_cases_the_job_at_the_printer(kit: Kit, printer: VirtualPrinter) -> None:  # noqa: F811
    kit.queue("q", _lp(printer), **{"if": "-$ /usr/bin/tr a-z A-Z"}, user="root")
    job = _print(kit, "q", b"hello, printer\n")
    _watch(kit, "q")
    assert _printed(printer) == [b"HELLO, PRINTER\n"]
    assert kit.states("q") == {job: "done"}


def test_the_filter_gets_lprngs_argv_environment_fds_and_directory(
        kit: Kit, printer: VirtualPrinter) -> None:  # noqa: F811
    record = kit.root / "runs.jsonl"
    program = kit.program("record.py", RECORDING.format(python=PY, out=str(record)))
    sd = kit.queue("q", _lp(printer), **{"if": str(program)}, ps="status", lf="log",
                   cm="Test queue", mc=3, user="root")
    _print(kit, "q", b"abc\n", "-J", "MyJob", "-T", "title1", "-C", "Z", "-K", "2")
    _watch(kit, "q")
    assert _printed(printer) == [b"<abc\n><abc\n>"]  # once per copy, rewound each time
    runs = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(runs) == 2
    run = runs[0]
    argv = run["argv"]
    assert "-Ff" in argv and "-Pq" in argv and "-JMyJob" in argv and "-Ttitle1" in argv
    assert "-Ndoc.txt" in argv and "-fdoc.txt" in argv  # the file's name, -J or not
    assert "-CZ" in argv and "-STest queue" in argv and f"-d{sd}" in argv
    assert "-w80" in argv and "-l66" in argv and any(a.startswith("-b4") for a in argv)
    assert any(a.startswith("-e") and a.endswith(".data") for a in argv)
    assert argv[-1] == "acct"  # the bare accounting file ends the default option list
    env = run["env"]
    assert env["PRINTER"] == "q" and env["SPOOL_DIR"] == str(sd)
    assert env["PRINTCAP_ENTRY"].startswith("q\n :")
    assert "LPFILTER_PRINTCAP" not in env  # nothing of lpfilter's own environment
    assert run["cwd"] == str(sd)
    assert run["fds"] == [0, 1, 2, 3]  # 3: the listing of /proc/self/fd itself
    assert run["stdin_regular"] and run["stdin_offset"] == 0
    assert runs[1]["stdin_offset"] == 0 and runs[1]["data"] == "abc\n"
    assert run["uid"] == os.getuid()
    assert "recorded one run" in (sd / "log").read_text()


def test_lpr_z_w_and_i_reach_the_filter_as_lprngs_lpd_gives_them(
        kit: Kit, printer: VirtualPrinter) -> None:  # noqa: F811
    """``print -Z a -Z b -w 100 -i 4 -R acct`` as LPRng's ``lpr``: the job's Z line joins
    the -Z options with commas, and the filter gets ``-Za,b``, ``-W100``, ``-I4`` and
    ``-Racct``."""
    record = kit.root / "runs.jsonl"
    program = kit.program("record.py", RECORDING.format(python=PY, out=str(record)))
    kit.queue("q", _lp(printer), **{"if": str(program)}, user="root")
    _print(kit, "q", b"abc\n", "-Z", "duplex", "-Z", "landscape=1", "-w", "100", "-i", "4",
           "-R", "cc-4711")
    _print(kit, "q", b"plain\n")
    _watch(kit, "q")
    assert _printed(printer, 2) == [b"<abc\n>", b"<plain\n>"]
    first, second = (json.loads(line)["argv"] for line in record.read_text().splitlines())
    assert {"-Zduplex,landscape=1", "-W100", "-I4", "-Rcc-4711"} <= set(first)
    assert not [a for a in second if a[:2] in ("-Z", "-W", "-I", "-R")]
    for bad in (["-Z", "a\nb"], ["-w", "-1"], ["-i", "-4"], ["-R", "a\tb"]):
        out = kit.run("print", "-P", "q", *bad, str(record))
        assert out.returncode == 2 and "nothing was printed" in out.stderr, out


@pytest.mark.parametrize(("code", "state"), [(1, "queued"), (2, "failed"), (3, "removed"),
                                             (6, "held")])
def test_exit_codes_decide_the_jobs_state(kit: Kit, printer: VirtualPrinter, code: int,  # noqa: F811
                                          state: str) -> None:
    program = kit.program("fail.sh", f"#!/bin/sh\ncat\necho 'paper jam {code}' >&2\n"
                                     f"exit {code}\n")
    kit.queue("q", _lp(printer), **{"if": f"-$ {program}"}, send_try=2, connect_interval=60,
              user="root")
    job = _print(kit, "q", b"data\n")
    _watch(kit, "q")
    ticket = kit.ticket("q", job)
    assert ticket["state"] == state
    assert f"paper jam {code}" in ticket["last_error"]
    assert str(program) in ticket["last_error"]
    assert os.path.exists(kit.sd("q") / ".lpfilter" / "jobs" / f"{job}.data") or (
        state == "removed")


def test_a_filter_killed_by_a_signal_fails_the_job(kit: Kit, printer: VirtualPrinter) -> None:  # noqa: F811
    program = kit.program("die.sh", "#!/bin/sh\nkill -9 $$\n")
    kit.queue("q", _lp(printer), **{"if": f"-$ {program}"}, user="root")
    job = _print(kit, "q", b"data\n")
    _watch(kit, "q")
    ticket = kit.ticket("q", job)
    assert ticket["state"] == "failed"
    assert "signal 9" in ticket["last_error"] or "SIGKILL" in ticket["last_error"]


def test_a_stalled_filter_is_killed_after_the_stall_limit(kit: Kit,  # noqa: F811
                                                           printer: VirtualPrinter) -> None:
    pid_file = kit.root / "stalled.pid"
    program = kit.program("stall.sh", f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 600\n")
    kit.queue("q", _lp(printer), **{"if": f"-$ {program}"}, stall_timeout=2, send_try=1,
              user="root")
    job = _print(kit, "q", b"data\n")
    _watch(kit, "q")
    ticket = kit.ticket("q", job)
    assert ticket["state"] == "failed" and "wrote nothing for 2 s" in ticket["last_error"]
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_vf_runs_for_format_v_and_if_for_the_rest(kit: Kit, printer: VirtualPrinter) -> None:  # noqa: F811
    kit.queue("q", _lp(printer), **{"if": "-$ /usr/bin/tr a-z A-Z",
                                    "vf": "-$ /usr/bin/tr a-z x"}, user="root")
    _print(kit, "q", b"abc\n", "-F", "v")
    _watch(kit, "q")
    assert _printed(printer) == [b"xxx\n"]


def test_lprs_format_letters_choose_their_filters(kit: Kit,  # noqa: F811
                                                 printer: VirtualPrinter) -> None:
    """LPRng lpr's -b (binary: format l) -c -d -g -n -t: each the filter of its letter;
    -f the default, if."""
    filters = {f"{letter}f": f"-$ /bin/sed s/^/{letter}=/" for letter in "cdgnt"}
    kit.queue("q", _lp(printer), **filters, **{"if": "-$ /bin/sed s/^/if=/"}, user="root")
    for letter in "bcdfgnt":
        _print(kit, "q", b"x\n", f"-{letter}")
    _watch(kit, "q")
    assert sorted(_printed(printer, 7)) == sorted(
        [b"if=x\n", b"c=x\n", b"d=x\n", b"if=x\n", b"g=x\n", b"n=x\n", b"t=x\n"])


def test_format_p_goes_through_pr_first(kit: Kit, printer: VirtualPrinter) -> None:  # noqa: F811
    pr = kit.program("pr.sh", "#!/bin/sh\necho PAGE-HEADER\ncat\n")
    kit.queue("q", _lp(printer), pr=str(pr), **{"if": "-$ /bin/cat"}, user="root")
    _print(kit, "q", b"body\n", "-p")
    _watch(kit, "q")
    assert _printed(printer) == [b"PAGE-HEADER\nbody\n"]


def test_pr_is_built_as_every_filter_is(kit: Kit, printer: VirtualPrinter) -> None:  # noqa: F811
    """H2: ``pr``'s command line comes from the one filter builder: its ``$`` tokens are
    expanded (a shell form's through the environment), and no option list is added."""
    pr = kit.program("pr.sh", '#!/bin/sh\necho "HEADER $# [$1] [$2]"\ncat\n')
    kit.queue("q", _lp(printer), pr=f"{pr} $-J '$-T' | /bin/cat", **{"if": "-$ /bin/cat"},
              user="root")
    _print(kit, "q", b"body\n", "-p", "-J", "my job", "-T", "$(id)")
    _watch(kit, "q")
    assert _printed(printer) == [b"HEADER 2 [my job] [$(id)]\nbody\n"]


def test_cancel_kills_the_filter(kit: Kit, printer: VirtualPrinter) -> None:  # noqa: F811
    pid_file = kit.root / "slow.pid"
    program = kit.program("slow.sh", f"#!/bin/sh\necho $$ > {pid_file}\necho started\n"
                                     "exec sleep 600\n")
    kit.queue("q", _lp(printer), **{"if": f"-$ {program}"}, user="root")
    job = _print(kit, "q", b"data\n")
    watch = kit.start("watch", "--once", "-P", "q")
    wait_until(pid_file.exists, what="the filter to start")
    done = kit.run("cancel", f"q-{job}")
    assert done.returncode == 0, done.stderr
    assert watch.wait(60) in (0, 8)
    assert kit.states("q")[job] == "cancelled"
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, signal.SIG_DFL)


def test_checkpc_no_longer_notes_filter_and_banner_keys(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lpfilter.cli import main
    sd = tmp_path / "spool"
    sd.mkdir(mode=0o700)
    keys = "".join(f"{key}=/bin/true:" for key in ("if", "of", "filter", "vf", "pr", "bp",
                                                     "bs", "be"))
    keys += "ab:hl:sb:generate_banner:lpd_bounce"  # (checkpc: each program is there)
    (tmp_path / "printcap").write_text(f"q:sd={sd}:lp=/dev/null:{keys}\n")
    status = main(["--printcap", str(tmp_path / "printcap"), "checkpc"], {})
    out = capsys.readouterr().out
    assert status == 0 and "not acted on" not in out, out


def test_a_failed_filters_leftover_children_are_killed(kit: Kit,  # noqa: F811
                                                        printer: VirtualPrinter) -> None:
    """A child the filter left behind holds the output pipe open: it is killed with the
    filter's session, so the filter's own status decides at once (not the stall limit)."""
    pid_file = kit.root / "child.pid"
    program = kit.program("leave.sh", f"#!/bin/sh\nsleep 600 &\necho $! > {pid_file}\n"
                                      "exit 2\n")
    kit.queue("q", _lp(printer), **{"if": f"-$ {program}"}, stall_timeout=600, user="root")
    job = _print(kit, "q", b"data\n")
    _watch(kit, "q")
    ticket = kit.ticket("q", job)
    assert ticket["state"] == "failed" and "exited 2" in ticket["last_error"]
    wait_until(lambda: _gone(int(pid_file.read_text())), what="the child to be gone")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("hostile", ["';touch PWNED;'", "$(touch PWNED)", "`touch PWNED`",
                                     '";touch PWNED;"\\'])
def test_a_shell_form_filter_gets_a_hostile_job_name_whole_and_runs_nothing(
        kit: Kit, printer: VirtualPrinter, hostile: str) -> None:  # noqa: F811
    """C1 end to end: ``print -J``/``-T`` text in '$-J', "$-T" and a bare $-J of a
    shell-form if=, run by the watcher through /bin/sh."""
    record = kit.root / "runs.jsonl"
    program = kit.program("record.py", RECORDING.format(python=PY, out=str(record)))
    value = hostile.replace("PWNED", str(kit.root / "pwned"))
    kit.queue("q", _lp(printer), **{"if": f"""{program} '$-J' "$-T" $-J | /bin/cat"""}, user="root")
    job = _print(kit, "q", b"abc\n", "-J", value, "-T", value)
    _watch(kit, "q")
    assert _printed(printer) == [b"<abc\n>"]
    assert kit.states("q") == {job: "done"}
    runs = [json.loads(line) for line in record.read_text().splitlines()]
    assert [run["argv"] for run in runs] == [[value, value, value]]
    assert not (kit.root / "pwned").exists()


#: A filter that floods its stderr with 30000 lines (3 MB) and then prints its input.
FLOOD = r'''#!/bin/sh
/usr/bin/yes "$(/usr/bin/printf '%099d' 0 | /usr/bin/tr 0 e)" | /usr/bin/head -n 30000 >&2
echo "the last word" >&2
exec /bin/cat
'''


def test_a_filters_stderr_flood_is_bounded_in_status_and_log(
        kit: Kit, printer: VirtualPrinter) -> None:  # noqa: F811
    """I2: a flood of stderr lines is said a few lines at a time with the count passed
    over, not line by line into the status file and the log; the job prints once."""
    program = kit.program("flood.sh", FLOOD)
    sd = kit.queue("q", _lp(printer), **{"if": f"-$ {program}"}, ps="status", lf="log", user="root")
    job = _print(kit, "q", b"hello\n")
    _watch(kit, "q")
    assert _printed(printer) == [b"hello\n"]
    assert kit.states("q") == {job: "done"}
    log = (sd / "log").read_text().splitlines()
    said = [line for line in log if "IF filter 'flood.sh'" in line]
    assert 0 < len(said) < 3000  # not one per line of its 30000
    assert "the last word" in said[-1]
    passed = [int(m.group(1)) for line in log
              for m in [re.search(r"\.\.\. (\d+) more filter message lines not shown", line)]
              if m]
    assert sum(passed) + len(said) == 30001  # every line said or counted


def test_a_root_spools_filters_run_as_user_and_group_root_only_when_asked(
        kit: Kit, printer: VirtualPrinter) -> None:  # noqa: F811
    """M3: under a root watcher a root-owned spool's filters run as LPRng's ``user`` and
    ``group`` (default daemon and lp), as root only with ``ROOT`` (or ``user=root``)."""
    need_root("filters run as another user")
    where = Path(tempfile.mkdtemp(prefix="lpfilter-m3-"))
    try:
        where.chmod(0o755)  # daemon must reach the program and its record
        out = where / "ids"
        out.touch()
        out.chmod(0o666)
        rec = where / "rec.sh"
        rec.write_text(f"#!/bin/sh\necho \"$1 $(id -u) $(id -g)\" >> {out}\nexec /bin/cat\n")
        rec.chmod(0o755)
        kit.queue("a", _lp(printer), **{"if": f"-$ {rec} default"}, write=False)
        kit.queue("b", _lp(printer), **{"if": f"-$ ROOT {rec} root"}, write=False)
        kit.queue("c", _lp(printer), **{"if": f"-$ {rec} named"}, user="lp", group="daemon")
        for queue in "abc":
            job = _print(kit, queue, b"x\n")
            _watch(kit, queue)
            assert kit.states(queue) == {job: "done"}
        daemon, lp = pwd.getpwnam("daemon").pw_uid, grp.getgrnam("lp").gr_gid
        assert sorted(out.read_text().splitlines()) == [
            f"default {daemon} {lp}",
            f"named {pwd.getpwnam('lp').pw_uid} {grp.getgrnam('daemon').gr_gid}",
            "root 0 0"]
    finally:
        shutil.rmtree(where)
