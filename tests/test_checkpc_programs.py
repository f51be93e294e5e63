"""checkpc looks at every program a queue runs (filters, banners, ``lp=|``, accounting
pipes): missing, not a file, not executable are problem lines naming file:line, as LPRng's
checkpc warns of its filters; a shell command line or a relative path is left to other
checks; a path the user may not look at is a note. LPRng's own checkpc, run here in a
private mount namespace, flags the same filters."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from localkit import made_user
from lpdkit import need_lprng

from lpfilter.cli import main
from lpfilter.status import ExitStatus


def _programs(tmp_path: Path) -> dict[str, Path]:
    made = {"good": tmp_path / "good", "plain": tmp_path / "plain", "dir": tmp_path / "dir"}
    made["good"].write_text("#!/bin/sh\ncat\n")
    made["good"].chmod(0o755)
    made["plain"].write_text("#!/bin/sh\ncat\n")
    made["plain"].chmod(0o644)
    made["dir"].mkdir()
    return made


def _checkpc(printcap: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    status = main(["--printcap", str(printcap), "checkpc"])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def test_each_program_that_cannot_run_is_a_line_of_its_own(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _programs(tmp_path)
    sd = tmp_path / "sd"
    sd.mkdir(mode=0o700)
    gone = tmp_path / "gone"
    printcap = tmp_path / "printcap"
    printcap.write_text(f"q:sd={sd}:lp=|{gone}/lp -x\n"
                        f"  :if={p['good']}:of={p['plain']}:vf=-$ ROOT {p['dir']} -a\n"
                        f"  :bp={gone}/banner:af=|{gone}/acct:as=jobstart $P:ae={gone}/x\n"
                        f"  :filter={gone}/f | cat:xf=relative/filter\n")
    status, out, err = _checkpc(printcap, capsys)
    assert status == ExitStatus.FAILURE and err == "lpfilter: checkpc: 6 problems found\n"
    assert out == [
        f"{printcap}:4: xf=relative/filter: the program must be an absolute path; LPRng"
        " refuses it and records the job as printed",
        f"{printcap}:3: af=|{gone}/acct: no such program (No such file or directory): no"
        " accounting is done (each job's try is logged); install it or correct the path",
        f"{printcap}:3: bp={gone}/banner: no such program (No such file or directory):"
        " the jobs that need it fail; install it or correct the path",
        f"{printcap}:1: lp=|{gone}/lp: no such program (No such file or directory): the"
        " jobs that need it fail; install it or correct the path",
        f"{printcap}:2: of={p['plain']}: not executable (mode 0644): the jobs that need it"
        f" fail; chmod a+x {p['plain']}",
        f"{printcap}:2: vf={p['dir']}: not a file, so it cannot be run: the jobs that need"
        " it fail; correct the path"], out
    # ae= without '|' is a file to write, filter= with '|' runs through the shell: neither
    # is looked at; if= is there and executable.


def test_a_template_program_is_said_once_and_percent_codes_are_expanded(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    filters = tmp_path / "filters"
    filters.mkdir()
    (filters / "a").write_text("#!/bin/sh\n")
    (filters / "a").chmod(0o755)
    lines = [f".t:if={tmp_path}/nope/if:of={filters}/%P"]
    for name in ("a", "b"):
        (tmp_path / name).mkdir(mode=0o700)
        lines.append(f"{name}:tc=.t:sd={tmp_path / name}:lp=/dev/null")
    printcap = tmp_path / "printcap"
    printcap.write_text("\n".join(lines) + "\n")
    status, out, _err = _checkpc(printcap, capsys)
    assert status == ExitStatus.FAILURE
    assert [line.split(": ", 2)[1] for line in out] == [
        f"if={tmp_path}/nope/if", f"of={filters}/b"], out


def test_a_path_the_user_may_not_look_at_is_a_note() -> None:
    """An ordinary user's checkpc cannot see into root's 0700 directory: a note naming
    whom to run it as, never a claim that the program is missing."""
    with made_user() as user:
        open_dir = Path(tempfile.mkdtemp(prefix="lpfilter-programs-"))
        try:
            open_dir.chmod(0o755)
            closed = open_dir / "closed"
            closed.mkdir(mode=0o700)
            (closed / "if").write_text("#!/bin/sh\n")
            (closed / "if").chmod(0o755)
            printcap = open_dir / "printcap"
            printcap.write_text(f"q:sd={open_dir}/sd:lp=/dev/null:if={closed}/if\n")
            printcap.chmod(0o644)
            done = user.run("--printcap", str(printcap), "checkpc",
                            env={"PATH": "/usr/bin:/bin", "LPFILTER_NO_CACHE": "1"})
        finally:
            shutil.rmtree(open_dir)
    assert (f"printcap:1: note: if={closed}/if: cannot be looked at by this user (Permission"
            " denied); run checkpc as the user the queue's programs run as") in done.stdout, (
        done.stdout, done.stderr)
    assert "no such program" not in done.stdout


def test_lprng_checkpc_flags_the_same_filters(capsys: pytest.CaptureFixture[str]) -> None:
    """LPRng 3.8.B's checkpc over the same printcap (its config bind-mounted over
    /etc/lprng in a private mount namespace) warns of the same filters. It reads them as
    daemon: the directory is open to all (pytest's tmp_path is not)."""
    need_lprng()
    tmp_path = Path(tempfile.mkdtemp(prefix="lpfilter-programs-"))
    try:
        tmp_path.chmod(0o755)
        _compare_with_lprng(tmp_path, capsys)
    finally:
        shutil.rmtree(tmp_path)


def _compare_with_lprng(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _programs(tmp_path)
    (tmp_path / "sd").mkdir()
    (tmp_path / "sd").chmod(0o755)  # (LPRng's checkpc looks into it as daemon)
    printcap = tmp_path / "printcap"
    printcap.write_text(f"q:sd={tmp_path}/sd:lp=/dev/null:if={p['good']}:of={p['plain']}"
                        f":vf={p['dir']}:bp={tmp_path}/gone:filter={tmp_path}/nope -x\n")
    conf = tmp_path / "lprng"
    conf.mkdir()
    shutil.copy("/etc/lprng/lpd.perms", conf / "lpd.perms")
    (conf / "lpd.conf").write_text(f"printcap_path={printcap}\nlpd_printcap_path=\n"
                                   f"perms_path={conf}/lpd.perms\nlockfile={conf}/lpd\n"
                                   "syslog_device=/dev/null\n")
    done = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                           'mount --bind "$1" /etc/lprng && exec /usr/sbin/checkpc', "-",
                           str(conf)], capture_output=True, text=True, timeout=60, check=False)
    theirs = {word for line in (done.stdout + done.stderr).splitlines() if "filter '" in line
              for word in ("if", "of", "vf", "bp", "filter") if f"'{word}' filter" in line}
    _status, out, _err = _checkpc(printcap, capsys)
    ours = {line.split(": ", 2)[1].partition("=")[0] for line in out if "spool dir" not in line}
    assert theirs == ours == {"of", "vf", "bp", "filter"}, (done.stdout, done.stderr, out)
