"""Hostile printcaps: special files, endless or enormous files, include bombs, huge entries.

Every case runs the read-only commands as real processes with a timeout, and each must
end with a documented exit status (never 70), a short stderr and no traceback.
"""
from __future__ import annotations

import os
import random
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lpfilter.cli import main
from lpfilter.errors import ConfigError
from lpfilter.printcap.entrytext import entry_from_text
from lpfilter.printcap.source import MAX_ENTRY_BYTES, MAX_PRINTCAP_BYTES
from lpfilter.status import ExitStatus

#: Each command of the walk must end within this many seconds.
TIMEOUT = 20.0
#: The read-only commands every hostile printcap goes through.
COMMANDS = (["printcap"], ["printcap", "--all"], ["checkpc"], ["status"], ["status", "-a"],
            ["lpq"])
DOCUMENTED = {int(s) for s in ExitStatus} - {int(ExitStatus.INTERNAL)}


def _limit_memory() -> None:
    """A child may use at most 1.5 GiB: a printcap that grows memory without end fails
    (MemoryError) instead of taking the machine."""
    limit = 1536 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def lpfilter(tmp: Path, printcap: str, *args: str,
             timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PRINTER", "LPDEST")}
    env.update(LPFILTER_CACHE_DIR=str(tmp / "cache"), LPFILTER_LOCK_DIR=str(tmp / "locks"),
               HOME=str(tmp))
    return subprocess.run([sys.executable, "-m", "lpfilter", "--printcap", printcap, *args],
                          env=env, cwd=tmp, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, preexec_fn=_limit_memory, check=False)


def assert_answered(done: subprocess.CompletedProcess[str], what: str) -> None:
    assert done.returncode in DOCUMENTED, (what, done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr, (what, done.stderr[-2000:])
    assert "internal error" not in done.stderr, (what, done.stderr[-2000:])
    # One line per message: a command about every queue may say one per queue.
    every = "-a" in what.split() or "--all" in what.split() or "checkpc" in what.split()
    assert every or len(done.stderr) < 4000, (what, done.stderr[:2000])
    assert all(len(line) < 2000 for line in done.stderr.splitlines()), (what, done.stderr[:2000])


def _write(path: Path, data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return str(path)


def hostile_printcaps(tmp: Path) -> dict[str, str]:
    """name -> printcap path (or path list) of every hostile case."""
    sd = tmp / "spool"
    sd.mkdir(exist_ok=True)
    good = f"lp:sd={sd}:lp=/dev/null\n"
    rng = random.Random(11)
    cases: dict[str, str] = {}
    cases["random bytes"] = _write(tmp / "random.pc", rng.randbytes(300_000))
    cases["random printable"] = _write(tmp / "printable.pc", "".join(
        rng.choice(":|=#@\\\n \tabcz019%.") for _ in range(200_000)))
    cases["huge line"] = _write(tmp / "hugeline.pc", good.rstrip("\n")
                                + ":cm=" + "x" * (3 * MAX_ENTRY_BYTES) + "\n")
    cases["many continuation lines"] = _write(tmp / "cont.pc", good + ":a=b\n" * 600_000)
    cases["many entries"] = _write(tmp / "many.pc", "".join(
        f"q{i}|alias{i}:sd={sd}:lp=/dev/null:tc=.t{i % 3}\n" for i in range(5000))
        + ".t0:tc=.t1\n.t1:tc=.t2\n.t2:tc=.t0\n")
    chain = "".join(f".c{i}:tc=.c{i + 1}\n" for i in range(200))
    cases["deep tc chain"] = _write(tmp / "tc.pc", good.rstrip("\n") + ":tc=.c0\n" + chain)
    deep = tmp / "deep0.pc"
    for level in range(10):
        _write(tmp / f"deep{level}.pc", f"d{level}:sd={sd}\ninclude {tmp}/deep{level + 1}.pc\n")
    cases["deep includes"] = str(deep)
    loop_a, loop_b = tmp / "loop_a.pc", tmp / "loop_b.pc"
    _write(loop_a, good + f"include {loop_b}\n")
    _write(loop_b, f"include {loop_a}\n")
    cases["include loop"] = str(loop_a)
    fan = tmp / "fan.pc"
    _write(fan, good + "include" + f" {fan}" * 60 + "\n")
    cases["include fan-out"] = str(fan)
    fifo = tmp / "fifo"
    os.mkfifo(fifo)
    cases["FIFO"] = str(fifo)
    cases["include FIFO"] = _write(tmp / "incfifo.pc", good + f"include {fifo}\n")
    cases["/dev/zero"] = "/dev/zero"
    cases["include /dev/zero"] = _write(tmp / "inczero.pc", good + "include /dev/zero\n")
    cases["a directory"] = str(tmp)
    cases["include a directory"] = _write(tmp / "incdir.pc", good + f"include {tmp}\n")
    cases["NUL bytes"] = _write(tmp / "nul.pc", b"# a\0comment\n" + good.encode().rstrip(b"\n")
                                + b":cm=x\0y\n")
    cases["NUL in sd"] = _write(tmp / "nulsd.pc", b"lp:sd=" + str(sd).encode()
                                + b"/a\0b:lp=/dev/null\n")
    cases["NUL in a name and lp"] = _write(tmp / "nulname.pc", b"l\0p|lp:sd="
                                           + str(sd).encode() + b":lp=/dev/\0null\n")
    cases["not UTF-8"] = _write(tmp / "latin1.pc", b"l\xe9\xff:sd=" + str(sd).encode()
                                + b":lp=/dev/null:cm=\xc3\x28\xa0\n")
    big = tmp / "big.pc"
    with open(big, "wb") as handle:
        handle.write(b"# " + b"x" * 100 + b"\n")
        handle.truncate(MAX_PRINTCAP_BYTES + 4096)  # sparse: no 16 MiB written
    cases["over the size limit"] = str(big)
    cases["include over the limit"] = _write(tmp / "incbig.pc", good + f"include {big}\n")
    return cases


def test_hostile_printcaps_get_an_answer(tmp_path: Path) -> None:
    """Done-when walk of issue 11: each command answers every hostile printcap in time."""
    cases = hostile_printcaps(tmp_path)
    for name, printcap in cases.items():
        for command in COMMANDS:
            done = lpfilter(tmp_path, printcap, *command)
            assert_answered(done, f"{name}: lpfilter {' '.join(command)}")


@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "dir"])
def test_special_file_is_refused_naming_it(tmp_path: Path, special: str) -> None:
    """A FIFO blocked for ever and /dev/zero grew memory without end: now one line, exit 3."""
    path = {"fifo": str(tmp_path / "pc"), "/dev/zero": "/dev/zero", "dir": str(tmp_path)}[special]
    if special == "fifo":
        os.mkfifo(path)
    top = _write(tmp_path / "top.pc", f"lp:sd={tmp_path}\ninclude {path}\n")
    for printcap in (path, top):
        done = lpfilter(tmp_path, printcap, "status", "-a")
        assert done.returncode == ExitStatus.CONFIG, done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
        assert path in done.stderr and "not a regular file" in done.stderr, done.stderr


def test_symlink_to_a_regular_printcap_is_read(tmp_path: Path) -> None:
    """/etc/printcap -> somewhere: the admin's symlink is followed; its target is a file."""
    real = _write(tmp_path / "real.pc", f"lp:sd={tmp_path}:lp=/dev/null\n")
    link = tmp_path / "printcap"
    link.symlink_to(real)
    done = lpfilter(tmp_path, str(link), "printcap", "--all")
    assert done.returncode == ExitStatus.OK, done.stderr
    assert done.stdout.startswith("lp\n"), done.stdout


def test_dev_null_is_an_empty_printcap(tmp_path: Path) -> None:
    """/etc/printcap -> /dev/null is how some admins say "no printcap": read as empty."""
    link = tmp_path / "printcap"
    link.symlink_to("/dev/null")
    top = _write(tmp_path / "top.pc", f"lp:sd={tmp_path}:lp=/dev/null\ninclude /dev/null\n")
    for printcap, shown in ((str(link), ""), (top, "lp\n")):
        done = lpfilter(tmp_path, printcap, "printcap", "--all")
        assert done.returncode == ExitStatus.OK, done.stderr
        assert done.stdout.startswith(shown), done.stdout


def test_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.pc"
    with open(big, "wb") as handle:
        handle.write(f"lp:sd={tmp_path}:lp=/dev/null\n# ".encode())
        handle.truncate(MAX_PRINTCAP_BYTES + 1)
    assert main(["--printcap", str(big), "printcap", "--all"],
                environ={"LPFILTER_NO_CACHE": "1"}) == ExitStatus.CONFIG
    small = _write(tmp_path / "ok.pc", f"lp:sd={tmp_path}:lp=/dev/null\n# "
                   + "x" * (MAX_PRINTCAP_BYTES - 200) + "\n")
    assert main(["--printcap", small, "printcap", "--all"],
                environ={"LPFILTER_NO_CACHE": "1"}) == ExitStatus.OK


def test_include_fan_out_is_bounded(tmp_path: Path) -> None:
    """A file naming itself 60 times on one include line read it 60**4 times."""
    fan = tmp_path / "fan.pc"
    _write(fan, f"lp:sd={tmp_path}:lp=/dev/null\ninclude" + f" {fan}" * 60 + "\n")
    done = lpfilter(tmp_path, str(fan), "checkpc")
    assert done.returncode in (ExitStatus.CONFIG, ExitStatus.FAILURE), done.stderr
    assert "more than 1000 files read through include lines" in done.stdout + done.stderr


def test_long_entry_is_refused_quickly(tmp_path: Path) -> None:
    """600,000 continuation lines took minutes (each joined by copying the entry so far);
    one entry over 1 MiB is a fatal error naming its file:line."""
    path = _write(tmp_path / "cont.pc", "x:a=b\n" + f"lp:sd={tmp_path}\n" + ":a=b\n" * 600_000)
    done = lpfilter(tmp_path, path, "printcap", "--all")
    assert done.returncode == ExitStatus.CONFIG, done.stderr
    assert f"{path}:2: the entry starting 'lp:sd=" in done.stderr, done.stderr
    assert "limit of 1 MiB for one entry" in done.stderr, done.stderr


def test_printcap_entry_from_the_environment_is_bounded() -> None:
    with pytest.raises(ConfigError, match="limit of 1 MiB"):
        entry_from_text("lp:cm=" + "x" * MAX_ENTRY_BYTES + "\n")
    assert entry_from_text("lp:cm=x\n").name == "lp"


fragments = st.sampled_from([
    "lp:sd=/nonexistent/x:lp=/dev/null\n", ":tc=lp\n", "include /dev/zero\n",
    "include /nonexistent\n", "\\\n", ":", "|", "#\n", "\n", "\udcff", "\x1b[2J", "%P%h",
    "all=lp,lp,lp\n", ":sd=\n", "lp:tc=lp\n", "a" * 1000, ".t:tc=.t\n", "include\n",
])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.lists(fragments, max_size=40))
@example(["\udcff", ":tc=lp\n", "lp:tc=lp\n"])  # an error message naming a non-UTF-8 name
def test_generated_printcaps_get_an_answer(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                           parts: list[str]) -> None:
    """In this process, as lpfilter runs: stderr shows bytes that are not UTF-8 escaped
    (capsys's strict stream would fail on them where a real stderr does not)."""
    path = tmp_path / "gen.pc"
    path.write_bytes("".join(parts).encode("utf-8", "surrogateescape"))
    for command in COMMANDS:
        status = main(["--printcap", str(path), *command],
                      environ={"LPFILTER_NO_CACHE": "1", "HOME": str(tmp_path),
                               "LPFILTER_LOCK_DIR": str(tmp_path / "locks")})
        err = capfd.readouterr().err
        assert status in DOCUMENTED, (command, status, err)
        assert "Traceback" not in err
