"""A job's text in bash arithmetic (issue 15 review, minor 1).

A shell-form filter gets each ``$`` token's value in an environment variable, but bash
evaluates a variable's *value* as an expression in ``$((...))``, ``$[...]``, ``((...))``,
``let``, ``[[ -eq ]]``, an array subscript and ``declare -i``: ``a[$(touch marker)]``
there runs touch. The numeric letters carry only
digits (a control file's ``I``/``W`` line that is not a number is dropped), and checkpc
warns, file:line, where any other token stands in arithmetic. Real bash runs."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from sharedkit import CORPUS, SHARED, require_shared
from test_filter_command import FACTS, entry
from test_operations import _checkpc

from lpfilter import printcap
from lpfilter.filters.command import JobFacts, build_command, facts_for, filter_environment
from lpfilter.job import Job
from lpfilter.printcap.check import check_printcap
from lpfilter.status import ExitStatus

BASH = shutil.which("bash") or "/bin/bash"
#: Every arithmetic context bash has for a variable's value, each naming one token.
CONTEXTS = ["[[ {t} -eq 1 ]]", "echo $(( {t} + 1 ))", "(( {t} > 0 ))", "let x={t}",
            "echo $[ {t} + 1 ]", "a[{t}]=1", "declare -i n={t}", "typeset -i n={t}",
            "f() {{ local -ri n={t}; }}; f", "a=([{t}]=1)", "a+=(x [{t}]=1)"]


def attack(marker: Path) -> str:
    return f"a[$(touch {marker})]"


def run_in_bash(text: str, facts: JobFacts, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The filter ``text`` under shell=/bin/bash as the spool runs it: its argv and the
    environment filter_environment gives, plus the expansions' variables."""
    e = entry(f":if={text}:shell={BASH}")
    command = build_command(e, "if", facts, role="data")
    assert command.shell and command.argv[0] == BASH
    env = {**filter_environment(e, facts, inherited={}, login=("u", "/")),
           "PATH": "/usr/bin:/bin", **command.env}
    return subprocess.run(command.argv, env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=30, check=False)


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("token", ["$-W", "$-I", "$-i", "${W}", "${I}", "$0W"])
def test_a_non_numeric_width_or_indent_runs_nothing_in_bash_arithmetic(
        tmp_path: Path, context: str, token: str) -> None:
    marker = tmp_path / "pwned"
    facts = FACTS.replace(width=attack(marker), indent=attack(marker))
    shown = run_in_bash("/bin/true; " + context.format(t=token), facts, tmp_path)
    assert not marker.exists(), (context, token, shown.stderr)


@pytest.mark.parametrize("context", CONTEXTS)
def test_the_same_bash_run_does_run_a_job_name_in_arithmetic(tmp_path: Path,
                                                             context: str) -> None:
    """The control: the harness above does see an attack, through a text token ($-J),
    which is why checkpc warns of it."""
    marker = tmp_path / "pwned"
    facts = FACTS.replace(job_name=attack(marker))
    run_in_bash("/bin/true; " + context.format(t="$-J"), facts, tmp_path)
    assert marker.exists(), context


def test_a_received_control_files_width_and_indent_pass_as_digits_only(tmp_path: Path) -> None:
    """The control-file path: ``extra["control"]`` of an LPD job, through facts_for."""
    marker = tmp_path / "pwned"
    job = Job("000042", "q1", "ann", "report.txt", 10, FACTS.now, host="ws1")
    job.extra["control"] = {"W": attack(marker), "I": "12abc"}
    e = entry()
    facts = facts_for(e, job, data_file="dfA042ws1", fmt="f", now=FACTS.now)
    argv = build_command(e, "if", facts, role="data").argv
    assert not [a for a in argv if a.startswith(("-W", "-I", "-i"))], argv
    assert "-j42" in argv
    shown = run_in_bash("/bin/true; (( $-W + $-I )); let x=$-i", facts, tmp_path)
    assert not marker.exists(), shown.stderr
    job.extra["control"] = {"W": "0132", "I": "007"}
    good = facts_for(e, job, data_file="dfA042ws1", fmt="f", now=FACTS.now)
    argv = build_command(e, "if", good, role="data").argv
    assert {"-W132", "-I7", "-i7"} <= set(argv)  # no leading 0: bash reads that as octal


@pytest.mark.parametrize("value", ["-5", "+5", "5 ", " 5", "0x10", "\u0663", "1e3", "5;"])
def test_only_ascii_digits_are_a_number(value: str) -> None:
    facts = FACTS.replace(width=value, indent=value)
    argv = build_command(entry(), "if", facts, role="data").argv
    assert not [a for a in argv if a.startswith(("-W", "-I", "-i"))], argv


# --- checkpc ------------------------------------------------------------------------------
WARNED = {"if=/bin/cat; [[ $-W -eq 1 && $-J -gt 2 ]]": "$-J",
          "vf=/bin/cat | x=$(( $-J + ${T} + $-I ))": "$-J, ${T}",
          "of=/bin/cat; let y=$0T+1; echo $-J": "$0T",
          "bp=/bin/cat; (( ${pw} + $-n ))": "$-n",
          "lp=|/bin/cat; (( $* ))": "$*",
          "as=|/bin/acct; echo $(( $-A ))": "$-A",
          "if=/bin/cat; echo $[ $-J + $-W ]": "$-J",
          "vf=/bin/cat; a[$-J]=1; b[${T}]=$-n": "$-J, ${T}",
          "of=/bin/cat; declare -i n=$-J": "$-J",
          "bp=/bin/cat; typeset -g -i n=${P}": "${P}",
          "lp=|/bin/cat; f() { local -i n=$-n; }; f": "$-n",
          "if=/bin/cat; a=([$-J]=1); cat": "$-J",
          "vf=/bin/cat; declare -a a=(x $(echo $-W) [${T}]=2)": "${T}"}
QUIET = ["if=/bin/cat; [[ $-J == x ]]", "vf=/bin/cat | x=$(( $-W + $-I + $-j + $-b ))",
         "of=/bin/cat; let y=$0W+$-w", "ae=jobend $-J $((x))", "lp=|/bin/cat; (( $-j ))",
         "filter=/bin/cat $J (( $-J ))", "cf=/bin/cat; echo $-J ${pw}",
         "if=/bin/cat; a[$-W]=$-J; echo $[ $-I ]", "vf=/bin/cat; declare -r n=$-J",
         "of=/bin/cat; local n=$-J; tr '[a-z]' '[A-Z]'; echo $-J[1]",
         "bp=/bin/cat; echo ${a[$-J]}", "if=/bin/cat; a=($-J [$-W]=1 $(echo [$-J]))"]


def test_checkpc_warns_of_a_job_token_in_shell_arithmetic_on_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _checkpc(tmp_path, capsys, list(WARNED))
    assert (status, err) == (ExitStatus.FAILURE, f"lpfilter: checkpc: {len(WARNED)} problems"
                                                 " found\n"), out
    assert len(out) == len(WARNED), out
    pc = tmp_path / "printcap"
    for line_no, (option, line) in enumerate(zip(WARNED, out), 2):
        assert line.startswith(f"{pc}:{line_no}: {option}: {WARNED[option]} inside shell"
                               " arithmetic"), line
        assert line.endswith("or pass the value to a program as an argument"), line


def test_checkpc_is_quiet_on_numeric_tokens_strings_and_templates(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _checkpc(tmp_path, capsys, QUIET) == (ExitStatus.OK, [], "")


def test_no_arithmetic_warning_for_the_corpus() -> None:
    require_shared(SHARED)
    files = sorted(CORPUS.glob("*.printcap"))
    assert files
    for path in files:
        said = [str(p) for p in check_printcap(printcap.load([str(path)]))
                if "inside shell arithmetic" in str(p)]
        assert said == [], path
