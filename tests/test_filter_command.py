"""A filter's command line, environment and exit codes, checked against what LPRng 3.8.B
was observed to do (shared/reference/lprng-filters.md §1, §2, §4, §5)."""
from __future__ import annotations

import re
import subprocess
import tempfile
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lpfilter.errors import HoldJob, JobRefused, RemoveJob, TransientError
from lpfilter.filters.command import (JobFacts, build_command, facts_for, filter_environment,
                                      filter_key, lprng_time)
from lpfilter.children.exits import exit_error
from lpfilter.job import Job
from lpfilter.printcap.entrytext import entry_from_text

SPOOL = "/tmp/lpdlab/spool/q1"
#: The lab's job: lpr -Pq1 -J MyJob -C Z -T title1 -w 100 -i 4 -Z opt1=a,opt2=b job1.txt
FACTS = JobFacts(
    queue="q1", spool_dir=SPOOL, job_number="507", user="root", host="localhost",
    job_name="MyJob", title="title1", job_class="Z", file_name="/tmp/lpdlab/job1.txt",
    data_file="dfA507localhost", control_file="", size=18, fmt="f", copies=1, indent="4",
    width="100", control_lines={"A": "root@localhost+507", "D": "2026-11-21-04:12:41.392",
                                "L": "root", "Q": "q1", "Z": "opt1=a,opt2=b"},
    now=time.mktime((2026, 11, 21, 4, 12, 41, 0, 0, -1)))
LAB = f"q1|queue1:sd={SPOOL}:lp=/file:if=/path/iffilter:cm=Test queue one\n"
#: lprng-filters.md §2 "Observed argv", one element per item.
OBSERVED = ["-Aroot@localhost+507", "-CZ", "-D2026-11-21-04:12:41.392", "-Ff", "-Hlocalhost",
            "-I4", "-JMyJob", "-Lroot", "-N/tmp/lpdlab/job1.txt", "-Pq1", "-Qq1",
            "-STest queue one", "-Ttitle1", "-W100", "-Zopt1=a,opt2=b", "-aacct", "-b18",
            f"-d{SPOOL}", "-edfA507localhost", "-f/tmp/lpdlab/job1.txt", "-hlocalhost",
            "-i4", "-j507", "-l66", "-nroot", "-sstatus", "-t2026-11-21-04:12:41.000",
            "-w80", "-x0", "-y0", "acct"]
PER_FILE = {"-Ff", "-N/tmp/lpdlab/job1.txt", "-edfA507localhost", "-f/tmp/lpdlab/job1.txt"}


def entry(extra: str = "", base: str = LAB):  # noqa: ANN201 - an Entry
    return entry_from_text(base.rstrip("\n") + extra + "\n")


def argv(text: str, role: str = "data", facts: JobFacts = FACTS, key: str = "if") -> list[str]:
    return build_command(entry(text), key, facts, role=role).argv


def test_data_filter_gets_exactly_the_observed_argv() -> None:
    command = build_command(entry(), "if", FACTS, role="data")
    assert command.argv == ["/path/iffilter", *OBSERVED]
    assert (command.key, command.as_root, command.shell) == ("if", False, False)


def test_lprng_time_has_no_milliseconds() -> None:
    assert lprng_time(FACTS.now) == "2026-11-21-04:12:41.000"


def test_bkf_gives_the_observed_bsd_layout() -> None:
    facts = FACTS.replace(queue="qbkf", job_name="Jobqbkf", job_class="A",
                                indent="", control_lines={"L": "root"})
    got = build_command(entry(":bkf"), "if", facts, role="data").argv
    assert got == ["/path/iffilter", "-Pqbkf", "-w80", "-l66", "-x0", "-y0", "-Ff", "-Lroot",
                   "-JJobqbkf", "-CA", "-n", "root", "-h", "localhost", "acct"]


def test_of_filter_has_no_per_file_items_and_format_o() -> None:
    got = argv(":of=/path/of", role="of", key="of")
    expected = [a for a in OBSERVED if a not in PER_FILE]
    expected.insert(expected.index("-Hlocalhost"), "-Fo")
    assert got == ["/path/of", *expected]


def test_of_filter_options_and_bk_of_filter_options() -> None:
    assert argv(":of=/p/of:of_filter_options=$P $F", role="of", key="of") == [
        "/p/of", "-Pq1", "-Fo"]
    assert argv(":of=/p/of:bkf:of_filter_options=$P", role="of", key="of") == [
        "/p/of", "-w80", "-l66", "-x0", "-y0"]


def test_lp_pipe_loses_format_and_per_file_items() -> None:
    got = argv(":lp=|/path/pipe", role="lp", key="lp")
    assert got == ["/path/pipe", *(a for a in OBSERVED if a not in PER_FILE)]


@pytest.mark.parametrize(("text", "expected"), [
    ("$P", ["-Pq1"]),
    ("$0P", ["-P", "q1"]),
    ("$ P", ["-P", "q1"]),
    ("$-P", ["q1"]),
    ("$'P", ["-Pq1"]),
    ("${cm}", ["Test queue one"]),
    ("x${nosuchkey}y", ["x0y"]),
    ("${lf}", ["0"]),          # absent from the entry: 0 although the key has a default
    ("${Z}", ["opt1=a,opt2=b"]),
    ("$M $Z $R", ["-Zopt1=a,opt2=b"]),
    ("$k $0k $-k $g $m $o $p $q $r $u $v $z", []),
    ("$c", []),
    ("-J$-J", ["-JMyJob"]),
], ids=lambda v: v if isinstance(v, str) else None)
def test_dollar_token_forms(text: str, expected: list[str]) -> None:
    assert argv(f":if=-$ /f {text}") == ["/f", *expected]


def test_c_is_a_bare_flag_for_format_l_only() -> None:
    facts = FACTS.replace(fmt="l")
    assert argv(":if=-$ /f $c $F", facts=facts) == ["/f", "-c", "-Fl"]


def test_control_lines_of_any_upper_case_letter() -> None:
    facts = FACTS.replace(control_lines={**FACTS.control_lines,
                                                      "M": "root@h", "U": "x"})
    assert argv(":if=-$ /f $M $U $0M", facts=facts) == ["/f", "-Mroot@h", "-Ux", "-M",
                                                        "root@h"]


def test_quotes_and_the_option_list_as_in_the_lab() -> None:
    got = argv(""":if=/path one "two words" 'three x' $0P""")
    assert got == ["/path", "one", "two words", "three x", "-P", "q1", *OBSERVED]


def test_minus_dollar_and_root_prefixes_any_order_any_case() -> None:
    for text in ("-$ ROOT /f $P", "ROOT $- /f $P", "| root -$ /f $P", "  |Root -$ /f $P"):
        command = build_command(entry(f":if={text}"), "if", FACTS, role="data")
        assert command.argv == ["/f", "-Pq1"], text
        assert command.as_root
    assert not build_command(entry(":if=-$ /f"), "if", FACTS, role="data").as_root


def test_shell_form_names_expansions_and_appends_no_options() -> None:
    command = build_command(entry(":if=/path $P | /bin/cat"), "if", FACTS, role="data")
    assert command.shell
    assert command.argv == ["/bin/sh", "-c", '( /path "${LPF_1}" | /bin/cat )']
    assert command.env == {"LPF_1": "-Pq1"}
    both = build_command(entry(":if=(/a $0J; /b):shell=/bin/bash"), "if", FACTS, role="data")
    assert both.argv == ["/bin/bash", "-c", '(/a "${LPF_1}" "${LPF_2}"; /b)']
    assert both.env == {"LPF_1": "-J", "LPF_2": "MyJob"}
    late = build_command(entry(":if=/a >/dev/null $-t"), "if", FACTS, role="data")
    assert late.argv[2] == '( /a >/dev/null "${LPF_1}" )'
    assert late.env == {"LPF_1": "2026-11-21-04:12:41.000"}


def test_shell_form_references_follow_the_printcap_quoting() -> None:
    command = build_command(entry(""":if=/a 'x$-Jy' "x$-Ty" \\'$-P | /b"""), "if", FACTS,
                            role="data")
    assert command.argv[2] == ("""( /a 'x'"${LPF_1}"'y' "x${LPF_2}y" \\'"${LPF_3}" | /b )""")
    assert command.env == {"LPF_1": "MyJob", "LPF_2": "title1", "LPF_3": "q1"}


#: Job names and titles a user chooses; each tries to run ``touch PWNED`` in its own way.
HOSTILE = ["';touch PWNED;'", '";touch PWNED;"', ";touch PWNED;", "$(touch PWNED)",
           "`touch PWNED`", "\\';touch PWNED;'\\", '\\";touch PWNED;\\"', "a\ntouch PWNED\n",
           "x'\"$(touch PWNED)\"'`touch PWNED`\\"]


def _recorder(tmp_path) -> str:  # noqa: ANN001
    """A filter that writes each argument it gets, NUL-terminated, to its stdout."""
    path = tmp_path / "rec"
    path.write_text("#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done\n")
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_shell_form_hostile_names_run_nothing_and_arrive_whole(tmp_path, hostile: str) -> None:  # noqa: ANN001
    """C1: '$-J', "$-J", bare $-J and $0T inside quotes, run through /bin/sh: each
    argument is exactly the user's text, and nothing the text names is run."""
    value = hostile.replace("PWNED", str(tmp_path / "pwned"))
    facts = FACTS.replace(job_name=value, title=value)
    rec = _recorder(tmp_path)
    text = f""":if={rec} '$-J' "$-J" $-J 'a$-Jb' "a$-Tb" $0T '$0T' | /bin/cat"""
    command = build_command(entry(text), "if", facts, role="data")
    assert command.argv[0] == "/bin/sh" and value not in command.argv[2]
    done = subprocess.run(command.argv, env={"PATH": "/usr/bin:/bin", **command.env},
                          cwd=tmp_path, capture_output=True, check=True, timeout=30)
    got = done.stdout.decode().split("\0")[:-1]
    assert got == [value, value, value, f"a{value}b", f"a{value}b", "-T", value,
                   f"-T {value}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec"]


@pytest.mark.parametrize("value", ["-n x y", "*", "a b", "';touch PWNED;'", "$(touch PWNED)"])
def test_tokens_inside_command_substitutions_are_quoted_afresh(tmp_path, value: str) -> None:  # noqa: ANN001
    """Inside ``$(...)`` or backquotes the shell's quoting starts again, even within
    double quotes: a value there must not be split, globbed or become an option of the
    inner program (second review, I-c)."""
    value = value.replace("PWNED", str(tmp_path / "pwned"))
    facts = FACTS.replace(job_name=value)
    rec = _recorder(tmp_path)
    text = (f""":if={rec} "$(printf '%s' $-J)" "$(printf '%s' '$-J')" """
            f""""`printf '%s' $-J`" "x$( (printf '%s' $-J) )y" | /bin/cat""")
    command = build_command(entry(text), "if", facts, role="data")
    done = subprocess.run(command.argv, env={"PATH": "/usr/bin:/bin", **command.env},
                          cwd=tmp_path, capture_output=True, check=True, timeout=30)
    assert done.stdout.decode().split("\0")[:-1] == [value, value, value, f"x{value}y"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec"]


def test_backslashes() -> None:
    assert argv(r":if=-$ /path\tx\101\033y\ny\rz\040w") == ["/path", "xA", "y", "y", "z", "w"]


def test_absent_values_drop_the_whole_option() -> None:
    facts = FACTS.replace(indent="", title="", control_lines={})
    got = argv(":if=/f", facts=facts)
    assert not [a for a in got if re.fullmatch(r"-[A-Za-z]", a)]
    assert "-i" not in " ".join(got) and not any(a.startswith(("-T", "-k", "-L")) for a in got)


@pytest.mark.parametrize("text", ["filter", "$HOME/bin/filter", "bin/x $P", "-$", ""])
def test_program_not_an_absolute_path_is_refused(text: str) -> None:
    with pytest.raises(JobRefused, match=r"if=.*not an absolute path") as caught:
        argv(f":if={text}" if text else ":if=-$ $k")
    assert caught.value.queue == "q1"


def test_home_trap_expands_h_as_lprng_does() -> None:
    with pytest.raises(JobRefused, match="-HlocalhostOME/bin/filter"):
        argv(":if=$HOME/bin/filter")


def test_a_is_omitted_when_af_is_a_program() -> None:
    got = argv(":af=|/usr/bin/acct")
    assert not any(a.startswith("-a") for a in got) and got[-1] != "acct"


def test_filter_key_by_format() -> None:
    plain = entry(base="q:lp=/dev/null\n")
    assert [filter_key(plain, f) for f in "flpv"] == [None] * 4
    full = entry(":vf=/v:filter=/all")
    assert [filter_key(full, f) for f in "flpaiosvdc"] == ["if"] * 7 + ["vf", "filter",
                                                                          "filter"]
    assert filter_key(entry(base="q:filter=/all\n"), "f") == "filter"


def test_printcap_entry_exact_text() -> None:
    e = entry_from_text("q1|queue1:sd=/spool:lp=/file:if=/path:cm=Test queue one\n")
    env = filter_environment(e, FACTS, inherited={}, login=("root", "/root"))
    assert env["PRINTCAP_ENTRY"] == (
        "q1|queue1\n :cm=Test queue one\n :if=/path\n :lp=/file\n :sd=/spool\n")


def test_environment_inherits_only_pass_env_and_tz() -> None:
    inherited = {"SECRET": "x", "PATH": "/evil", "LANG": "C.UTF-8", "LC_ALL": "C",
                 "TZ": "UTC", "LD_PRELOAD": "/x.so", "HOME": "/home/me"}
    env = filter_environment(entry(), FACTS, inherited=inherited, login=("daemon", "/usr/sbin"))
    assert env == {
        "PRINTER": "q1", "USER": "daemon", "LOGNAME": "daemon", "HOME": "/usr/sbin",
        "LOGDIR": "/usr/sbin", "PATH": "/bin:/usr/bin:/usr/local/bin", "SHELL": "/bin/sh",
        "IFS": " \t", "TZ": "UTC", "SPOOL_DIR": SPOOL, "LANG": "C.UTF-8", "LC_ALL": "C",
        "PRINTCAP_ENTRY": env["PRINTCAP_ENTRY"], "HF": env["HF"],
        "DATAFILES": "dfA507localhost "}
    assert "J=MyJob\n" in env["HF"] and "A=root@localhost+507\n" in env["HF"]
    assert "number=507\n" in env["HF"]
    custom = filter_environment(entry(":pass_env=FOO:filter_path=/opt/bin:filter_ld_path=/l"),
                                FACTS, inherited={"FOO": "1", "LANG": "C"}, login=("a", "/"))
    assert (custom["FOO"], custom["PATH"], custom["LD_LIBRARY_PATH"]) == ("1", "/opt/bin", "/l")
    assert "LANG" not in custom and "TZ" not in custom


def test_facts_for_a_job_as_lprng_control_lines() -> None:
    job = Job("000042", "q1", "ann", "report.txt", 1234, FACTS.now, title="T", copies=2,
              host="ws1", job_class="B")
    e = entry()
    facts = facts_for(e, job, data_file="dfA042ws1", fmt="", now=FACTS.now)
    assert (facts.job_number, facts.fmt, facts.spool_dir) == ("42", "f", SPOOL)
    got = build_command(e, "if", facts, role="data").argv
    assert got[:10] == ["/path/iffilter", "-Aann@ws1+42", "-CB", "-D2026-11-21-04:12:41.000",
                        "-Ff", "-Hws1", "-Jreport.txt", "-Lann", "-Nreport.txt", "-Pq1"]
    job.no_banner = True
    job.extra["control"] = {"Z": "duplex", "M": "ann@ws1"}
    later = facts_for(e, job, data_file="dfA042ws1", fmt="v", now=FACTS.now)
    assert "L" not in later.control() and later.control()["Z"] == "duplex"


# --- §5 exit codes --------------------------------------------------------------------------
@pytest.mark.parametrize(("status", "error", "name"), [
    (1, TransientError, "JFAIL"), (32, TransientError, "JFAIL"),
    (2, JobRefused, "JABORT"), (33, JobRefused, "JABORT"),
    (3, RemoveJob, "JREMOVE"), (34, RemoveJob, "JREMOVE"),
    (6, HoldJob, "JHOLD"), (37, HoldJob, "JHOLD"),
    (10, JobRefused, "JFAILNORETRY"), (41, JobRefused, "JFAILNORETRY"),
    (12, TransientError, "JTIMEOUT"), (43, TransientError, "JTIMEOUT"),
    (7, JobRefused, "JNOSPOOL"), (38, JobRefused, "JNOSPOOL"), (39, JobRefused, "JNOPRINT"),
    (40, JobRefused, "JSIGNAL"), (42, JobRefused, "JSUSP"), (44, JobRefused, "JWRERR"),
    (45, JobRefused, "JRDERR"), (46, JobRefused, "JCHILD"), (47, JobRefused, "JNOWAIT"),
    (4, JobRefused, "unknown"), (5, JobRefused, "unknown"), (35, JobRefused, "unknown"),
    (36, JobRefused, "unknown"), (31, JobRefused, "unknown"), (48, JobRefused, "unknown"),
    (255, JobRefused, "unknown"),
])
def test_exit_codes(status: int, error: type, name: str) -> None:
    got = exit_error(status, key="if", program="/usr/bin/x", detail="out of paper")
    assert type(got) is error
    assert str(got) == f"if filter /usr/bin/x exited {status} ({name}" + (
        ", as JABORT)" if name == "unknown" else ")") + ": out of paper"


def test_exit_zero_and_signals() -> None:
    assert exit_error(0, key="if", program="/x", detail="") is None
    for signal_number in (9, 15, 11):
        got = exit_error(-signal_number, key="vf", program="/x", detail="")
        assert type(got) is JobRefused
        assert str(got) == f"vf filter /x was killed by signal {signal_number} (JSIGNAL)"


def test_every_status_maps_to_an_error() -> None:
    for status in range(-64, 256):
        got = exit_error(status, key="if", program="/x", detail="")
        assert (got is None) == (status == 0)


# --- properties -----------------------------------------------------------------------------
TEXT = st.text(st.characters(codec="utf-8"), max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.tuples(TEXT, TEXT, TEXT, TEXT, TEXT, TEXT), st.sampled_from("flvo"),
       st.sampled_from(["data", "of", "lp", "banner", "accounting"]))
def test_no_empty_option_and_no_nul(values: tuple[str, ...], fmt: str, role: str) -> None:
    user, host, name, title, indent, z = values
    facts = FACTS.replace(user=user, host=host, job_name=name, title=title,
                                indent=indent, fmt=fmt, file_name=name,
                                control_lines={"Z": z, "L": user})
    e = entry(":of=/of:lp=|/lp")
    got = build_command(e, {"of": "of", "lp": "lp"}.get(role, "if"), facts, role=role).argv
    bare = [a for a in got if re.fullmatch(r"-[A-Za-z]", a) and a != "-c"]
    assert bare == [] and "" not in got
    assert not any("\0" in a for a in got)
    env = filter_environment(e, facts, inherited={"LANG": "\0"}, login=("u", "/"))
    assert not any("\0" in k + v for k, v in env.items())


@settings(max_examples=150, deadline=None)
@given(st.text(st.characters(codec="utf-8", exclude_characters="\0\n\r\f\x04\x14:\\"),
               max_size=40))
def test_any_filter_string_expands_without_nul_or_crash(text: str) -> None:
    try:
        e = entry(f":if=/f {text}")
    except Exception:  # noqa: BLE001 - the printcap reader's business, not this test's
        return
    try:
        got = build_command(e, "if", FACTS, role="data").argv
    except JobRefused:
        return
    assert not any("\0" in a for a in got)


def test_filter_messages_are_bounded_and_said_a_few_at_a_time() -> None:
    """I2: the queue of stderr lines keeps the newest, counts the rest, and says a few."""
    from lpfilter.children.output import QUEUE_LINES, SAY_LINES, Messages
    messages = Messages()
    for n in range(100000):
        messages.put(f"line {n}")
    assert len(messages._lines) == QUEUE_LINES  # noqa: SLF001 - the bound itself
    said: list[str] = []
    messages.drain(said.append)
    assert said == [f"... {100000 - SAY_LINES} more filter message lines not shown",
                    *(f"line {n}" for n in range(100000 - SAY_LINES, 100000))]
    messages.put("soon after")
    messages.drain(said.append, flush=True)  # the attempt's end: whatever the interval
    assert said[-1] == "soon after"


# --- which jobs get a production (filters/plan.py) ---------------------------------------
PRODUCING = {"if": "/f", "of": "/o", "filter": "/g", "vf": "/v", "pr": "/usr/bin/pr",
             "bp": "/b", "bs": "/s", "be": "/e", "sb": None, "generate_banner": None,
             "sh": None, "hl": None, "ab": None}


@settings(max_examples=300, deadline=None)
@given(keys=st.sets(st.sampled_from(sorted(PRODUCING))), fmt=st.sampled_from("flpvoc"),
       no_banner=st.booleans())
def test_a_job_gets_a_production_exactly_when_something_makes_its_bytes(
        keys: set[str], fmt: str, no_banner: bool) -> None:
    """LPRng's rules (the module's docstring), written out here on their own: a data
    filter for the format, ``pr`` for ``p``, ``of``, or a banner made. A job that gets
    none has no facts built for it (most queues' every job, in the worker's loop)."""
    from lpfilter.filters import plan
    text = "".join(f":{key}={PRODUCING[key]}" if PRODUCING[key] else f":{key}"
                   for key in sorted(keys))
    e = entry(text, base=f"q1:sd={tempfile.gettempdir()}:lp=/file\n")
    job = Job("000042", "q1", "ann", "r.txt", 12, FACTS.now, no_banner=no_banner,
              print_format=fmt)
    as_f = fmt in "flpo"  # ``o`` is one of the formats LPRng takes as ``f``
    data = ("if" in keys if as_f else f"{fmt}f" in keys) or "filter" in keys
    named = not no_banner or "ab" in keys
    made = {"bp", "sb", "generate_banner"} & keys
    start = "hl" not in keys and bool(made or "bs" in keys)
    end = ("hl" in keys or "be" in keys) and bool(made or "be" in keys)
    banner = "sh" not in keys and named and (start or end)
    pr = fmt == "p" and bool((e.string("pr") or "").strip())  # (LPRng's default: /usr/bin/pr)
    expected = data or pr or "of" in keys or banner
    built: list[Job] = []
    real = plan.facts_for

    def counted(*args: object, **kwargs: object) -> JobFacts:
        built.append(job)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    plan.facts_for = counted  # type: ignore[assignment]
    try:
        got = plan.plan_for(e, job, data_file="d", kind="file", stall=0, environ={},
                            now=FACTS.now)
    finally:
        plan.facts_for = real
    assert (got is not None) == expected, (text, fmt, no_banner)
    assert plan.produces(e, job, "file") or not expected  # send_job's question first
    if not (keys & {"if", "of", "filter", "vf", "bp", "bs", "be", "sb", "generate_banner"}
            or pr):
        assert not built


def test_ab_names_the_banner_user_to_the_filters_even_with_no_banner_made() -> None:
    """``ab`` on a job sent with no banner (``lpr -h``): LPRng names its user (``L``) in
    what the filters get (``HF``) whether or not the queue makes a banner page. Round 20's
    shortcut for queues that make none had dropped the line from a data filter's HF."""
    from lpfilter.filters import plan
    e = entry(":if=/f:ab", base=f"q1:sd={tempfile.gettempdir()}:lp=/file\n")
    job = Job("000042", "q1", "ann", "r.txt", 12, FACTS.now, no_banner=True,
              print_format="f")
    got = plan.plan_for(e, job, data_file="d", kind="file", stall=0, environ={},
                        now=FACTS.now)
    assert got is not None and got.start_banner is None and got.end_banner is None
    assert "L=ann" in got.env["HF"].splitlines()
