"""CUPS's ``lp`` habits (``lpfilter lp``) and LPRng's ``lpr`` (an alias of ``print``): the
options become print's, each job is reported as CUPS reports it, what lpfilter cannot do
is refused before anything is spooled. In-process, real spools, and the installed
command once."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from localkit import need_root
from spoolkit import Kit, kit  # noqa: F401 - kit: a fixture

from lpfilter.cli import main
from lpfilter.job import JobState
from lpfilter.spool.store import SpoolStore


@pytest.fixture
def two(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Queues q and r (``lp=/dev/null``), printcap and lock directory in the environment;
    returns the directory with their spools and a document, doc.txt."""
    lines = []
    for name in ("q", "r"):
        (tmp_path / f"sd-{name}").mkdir(mode=0o700)
        lines.append(f"{name}:lp=/dev/null:sd={tmp_path / f'sd-{name}'}:mc#5\n")
    (tmp_path / "printcap").write_text("".join(lines))
    (tmp_path / "doc.txt").write_text("a page\n")
    monkeypatch.setenv("LPFILTER_PRINTCAP", str(tmp_path / "printcap"))
    monkeypatch.setenv("LPFILTER_LOCK_DIR", str(tmp_path / "locks"))
    for name in ("PRINTER", "LPDEST"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def jobs(root: Path, queue: str) -> list:  # type: ignore[type-arg]
    store = SpoolStore(str(root / f"sd-{queue}"), queue)
    try:
        return store.jobs()
    finally:
        store.close()


def test_lp_options_become_prints_and_each_job_is_reported_as_cups_does(
        two: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = str(two / "doc.txt")
    assert main(["lp", "-d", "r", "-n", "2", "-t", "Invoice 7", "-o", "duplex media=a4",
                 "-o", "landscape", "-H", "hold", "-c", doc]) == 0
    assert capsys.readouterr().out == "request id is r-000001 (1 file(s))\n"
    [job] = jobs(two, "r")
    assert (job.name, job.copies, job.state) == ("Invoice 7", 2, JobState.HELD)
    assert job.extra["control"] == {"Z": "duplex,media=a4,landscape",
                                    "N": "doc.txt"}  # -t names the job, N the file
    assert main(["lp", "-s", "-P", "q", doc, doc]) == 0  # printed at once, nothing said
    assert capsys.readouterr().out == ""
    assert [j.state for j in jobs(two, "q")] == [JobState.DONE, JobState.DONE]
    assert main(["-P", "r", "lp", "-H", "immediate", doc]) == 0
    assert capsys.readouterr().out == "request id is r-000002 (1 file(s))\n"


def test_lp_takes_lpdest_before_printer_as_cups_does(
        two: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PRINTER", "q")
    monkeypatch.setenv("LPDEST", "r")
    assert main(["lp", str(two / "doc.txt")]) == 0
    assert main(["print", str(two / "doc.txt")]) == 0  # LPRng's order: PRINTER first
    assert capsys.readouterr().out == "request id is r-000001 (1 file(s))\nq-000001\n"


@pytest.mark.parametrize(("argv", "said"), [
    (["-m"], "lp -m: not supported"), (["-h", "server:631"], "lp -h: not supported"),
    (["-i", "12"], "lp -i: not supported"), (["-E"], "lp -E: not supported"),
    (["-q", "50"], "lp -q: not supported"), (["-H", "23:00"], "lp -H 23:00: lpfilter holds"),
    (["-n", "9"], "allows at most 5 copies"), (["-o", "a\x1bb"], "lp -o: no control characters")])
def test_what_lpfilter_cannot_do_is_refused_and_nothing_spooled(
        two: Path, capsys: pytest.CaptureFixture[str], argv: list[str], said: str) -> None:
    assert main(["lp", "-d", "q", *argv, str(two / "doc.txt")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and said in err and "Traceback" not in err, err
    assert jobs(two, "q") == []


def test_lpr_is_print_and_the_installed_lp_answers_as_cups(kit: Kit) -> None:  # noqa: F811
    kit.queue("q", "/dev/null")
    (kit.root / "doc.txt").write_text("a page\n")
    done = kit.run("lpr", "-P", "q", "--no-wait", str(kit.root / "doc.txt"))
    assert (done.returncode, done.stdout) == (0, "q-000001\n"), done.stderr
    done = kit.run("lp", "-d", "q", str(kit.root / "doc.txt"))
    assert (done.returncode, done.stdout) == (0, "request id is q-000002 (1 file(s))\n"), done
    piped = subprocess.run([*kit.argv("lp", "-d", "q", "-s")], input=b"from a pipe\n",
                           env=kit.env, capture_output=True, timeout=60, check=False)
    assert (piped.returncode, piped.stdout) == (0, b""), piped
    assert set(kit.states("q").values()) == {"done"} and len(kit.states("q")) == 3


def test_lpr_r_removes_each_file_once_its_job_is_on_disk(
        two: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """LPRng's ``lpr -r``: each file goes once its job is spooled (never before: a file
    that fails to spool stays); one that cannot be removed is said, its job queued."""
    files = [two / "a.txt", two / "b.txt"]
    for path in files:
        path.write_text(f"{path.name}\n")
    assert main(["lpr", "-r", "--no-wait", "-P", "q", *map(str, files)]) == 0
    assert capsys.readouterr() == ("q-000001\nq-000002\n", "")
    assert not any(path.exists() for path in files)
    assert [j.size for j in jobs(two, "q")] == [6, 6]


def test_lpr_r_says_a_file_it_cannot_remove_and_keeps_one_not_spooled(
        two: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file whose directory is immutable (root may remove anything else) is spooled and
    said; an empty file is not spooled, so it is not removed."""
    need_root("an immutable directory (chattr +i)")
    kept = two / "kept"
    kept.mkdir()
    (kept / "c.txt").write_text("c\n")
    (kept / "empty.txt").write_text("")
    immutable = subprocess.run(["chattr", "+i", str(kept)], capture_output=True, check=False)
    assert immutable.returncode == 0, immutable.stderr
    try:
        assert main(["lpr", "-r", "--no-wait", "-P", "q", str(kept / "c.txt"),
                     str(kept / "empty.txt")]) == 6
        out, err = capsys.readouterr()
        assert out == "q-000001\n" and "empty.txt: empty file" in err, err
        assert f"{kept / 'c.txt'}: spooled, but not removed (-r):" in err, err
        assert (kept / "c.txt").exists() and (kept / "empty.txt").exists()
    finally:
        subprocess.run(["chattr", "-i", str(kept)], capture_output=True, check=False)

