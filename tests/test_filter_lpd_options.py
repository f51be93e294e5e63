"""Hostile values in the option list lpd passes to ``lpfilter filter``, through the
installed program run as lpd runs it (filterkit: lpd's socketpair, environment and cwd):
an accounting file that is a symbolic link, a FIFO or a device is never opened (nor
followed), and a generated walk of overlong values, control characters, letters missing
their values, ``-P`` with path characters, job names with shell metacharacters or
``../`` and garbage in numeric fields ends with an LPRng exit code, no traceback and
nothing written outside the spool and the printer, as lpd's output device (lp=|) and as
its data filter (if=)."""
from __future__ import annotations

import os
import pty
import select
import socket
import stat
import subprocess
from pathlib import Path

import pytest
from filterkit import LPFILTER, Lpd, MakePrinter, data_filter, dest, lp_pipe, lpd, printer, stored  # noqa: F401
from ftpkit import hang_guard  # noqa: F401
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

DATA = b"accounting\x0c"
#: lpd's spooled data file, a data filter's standard input.
SPOOLED = "dfA507localhost"
#: LPRng's filter exit codes (lprng-filters.md §5).
LPRNG_CODES = {0, 1, 2, 3, 6}


def device_entry(lpd: Lpd, where: str, *flags: str) -> str:
    return lpd.entry(f"|{LPFILTER} filter {where}", *flags)


# --- the accounting file --------------------------------------------------------------------
def test_an_accounting_symlink_is_not_followed(lpd: Lpd, printer: MakePrinter,
                                               tmp_path: Path) -> None:
    """A link planted where lpd's af is (``acct -> a file of someone else's``): the job
    prints, the link's target is untouched, one status line says why no line was written."""
    emulator = printer()
    where = dest(emulator)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    lpd.acct().symlink_to(victim)
    run = lp_pipe(lpd, lpd.argv(where), lpd.env(device_entry(lpd, where)), DATA)
    assert run.rc == 0, run.text
    assert stored(emulator) == DATA
    assert victim.read_text() == "precious\n"
    assert run.has("symbolic link") and run.has("no line written"), run.text
    assert "Traceback" not in run.text


def test_an_accounting_fifo_is_never_opened(lpd: Lpd, printer: MakePrinter) -> None:
    """A FIFO with a reader (an open for writing would succeed at once and the line would
    arrive): nothing arrives, and the filter does not wait on it."""
    emulator = printer()
    where = dest(emulator)
    os.mkfifo(lpd.acct())
    reader = os.open(lpd.acct(), os.O_RDONLY | os.O_NONBLOCK)
    try:
        run = lp_pipe(lpd, lpd.argv(where), lpd.env(device_entry(lpd, where)), DATA)
        assert run.rc == 0, run.text
        assert stored(emulator) == DATA
        assert os.read(reader, 4096) == b""  # no writer has it open, and none wrote
    finally:
        os.close(reader)
    assert run.has("not a regular file") and "Traceback" not in run.text


def test_an_accounting_device_is_never_opened(lpd: Lpd, printer: MakePrinter) -> None:
    """A terminal (a pty's slave) named as the accounting file: no byte reaches it."""
    emulator = printer()
    where = dest(emulator)
    master, slave = pty.openpty()
    try:
        device = os.ttyname(slave)
        assert stat.S_ISCHR(os.stat(device).st_mode)
        argv = lpd.argv(where, a=device)
        run = lp_pipe(lpd, argv, lpd.env(device_entry(lpd, where)), DATA)
        assert run.rc == 0, run.text
        ready, _, _ = select.select([master], [], [], 0.5)
        assert not ready, os.read(master, 4096)
    finally:
        os.close(master)
        os.close(slave)
    assert run.has("not a regular file") and "Traceback" not in run.text


# --- a generated walk -----------------------------------------------------------------------
def _text(alphabet: st.SearchStrategy[str], most: int) -> st.SearchStrategy[str]:
    return st.text(alphabet, max_size=most)


CONTROL = st.characters(min_codepoint=1, max_codepoint=31)
ANY_BUT_NUL = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
HOSTILE_VALUE = st.one_of(
    _text(ANY_BUT_NUL, 40),
    _text(CONTROL, 10),
    st.sampled_from(["../../../../etc/passwd", "../x", "/etc/shadow", "-", "--",
                     "$(touch pwned)", "`touch pwned`;rm -rf /", "a|b&&c>d<e", "%s%n%x",
                     "99999999999999999999999", "-1", "0x7f", "1e309", "nan", " 12 ",
                     "\u2028", "\x1b[2J\x1b]0;t\x07"]),
    st.integers(min_value=1, max_value=120_000).map(lambda n: "J" * n),  # overlong
)
#: Not ``-a``: lpd takes the accounting file from the printcap's af (the admin's, never a
#: user's), and an absolute name that exists is appended to, as LPRng's rule says: a walk
#: run as root must not append to /etc/shadow. The tests above cover its hostile forms.
LETTERS = st.sampled_from(list("ACDHIJLNPQSTWZbdefhijklnstwxyFc"))
NUMERIC = "bijklswxy"


@st.composite
def option_lists(draw: st.DrawFn) -> dict[str, object]:
    """lpd's list with some values replaced, some letters left without a value (then
    the next argument, or nothing, follows) and some numeric fields made garbage."""
    values = {letter: draw(HOSTILE_VALUE) for letter in draw(st.sets(LETTERS, max_size=8))}
    for letter in draw(st.sets(st.sampled_from(list(NUMERIC)), max_size=3)):
        values[letter] = draw(st.sampled_from(["", "x", "-5", "1" * 5000, "3.5", "\x7f"]))
    bare = draw(st.lists(st.sampled_from(list("JPnhjd")), max_size=3))
    return {"values": values, "bare": bare,
            "where": draw(st.sampled_from(["ok", "none", "if"])),
            "flags": draw(st.sampled_from([(), ("pjl",)]))}


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=option_lists())
def test_hostile_option_lists_end_with_an_lprng_code(lpd: Lpd, printer: MakePrinter,
                                                      tmp_path: Path,
                                                      case: dict[str, object]) -> None:
    """The fixtures are shared by the examples: each starts its own printer and empties
    the accounting file."""
    emulator = printer()
    where = dest(emulator)
    values: dict[str, str] = dict(case["values"])  # type: ignore[arg-type]
    data_filter_mode = case["where"] == "if"
    argv = lpd.argv(where if case["where"] == "ok" else None, lp_pipe=not data_filter_mode,
                    **values)
    for letter in case["bare"]:  # type: ignore[union-attr]
        argv.insert(len(argv) - 1, f"-{letter}")  # a letter whose value went missing
    lpd.acct().write_text("")
    (lpd.spool / SPOOLED).write_bytes(DATA)
    before = tree(tmp_path)
    flags: tuple[str, ...] = case["flags"]  # type: ignore[assignment]
    if data_filter_mode:  # if=: stdin lpd's spool file, stdout the printer's connection
        entry = lpd.entry(where, *flags, **{"if": f"{LPFILTER} filter"})
        with socket.create_connection(emulator.address) as conn:
            run = data_filter(lpd, argv, lpd.env(entry), DATA, conn.fileno(), timeout=30)
    else:
        run = lp_pipe(lpd, argv, lpd.env(device_entry(lpd, where, *flags)), DATA,
                      timeout=30)
    assert run.rc in LPRNG_CODES, (run.rc, run.text)
    assert "Traceback" not in run.text and "internal error" not in run.text, run.text
    assert all(line.isprintable() for line in run.lines), run.lines
    made = tree(tmp_path) - before
    assert all(p.split("/")[0] == "locks" or p.startswith("out") for p in made), made
    assert sorted(p.name for p in lpd.spool.iterdir()) == sorted([SPOOLED, "acct"])
    assert not list(tmp_path.rglob("pwned"))
    acct = lpd.acct().read_text()
    assert acct.count("\n") <= 1 and acct[:-1].isprintable(), acct


@pytest.mark.parametrize("queue", ["../../../../etc/passwd", "/etc/printcap", "q/../lp",
                                   "lp\x1b[2J", "a" * 100_000])
def test_by_hand_a_queue_named_with_path_characters_is_no_queue(tmp_path: Path,
                                                                  queue: str) -> None:
    """By hand ``-P`` picks a queue of lpfilter's printcap: a path is no queue name, and
    nothing is opened or written by that name."""
    printcap = tmp_path / "printcap"
    printcap.write_text(f"lp:lp=127.0.0.1%9:sd={tmp_path / 'sd'}\n")
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin",
           "LPFILTER_LOCK_DIR": str(tmp_path / "locks")}
    before = tree(tmp_path)
    done = subprocess.run([LPFILTER, "--printcap", str(printcap), "filter", f"-P{queue}"],
                          input=b"job", capture_output=True, env=env, cwd=tmp_path,
                          timeout=30, check=False)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.decode().splitlines()
    assert line.isprintable() and "Traceback" not in line
    made = tree(tmp_path) - before  # the lock directory, the printcap cache in $HOME
    assert all(p.split("/")[0] in ("locks", ".cache") for p in made), made
