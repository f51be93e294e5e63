"""lpc's words over several queues: each queue is done by itself, and one not found (or
refused) is said on one line at the command's edge (``cli``) while the others are still
done; the exit status is the worst (issue 16's mends: lpc turned its errors into messages
itself). Pinned through ``cli.main`` and through the installed command."""
from __future__ import annotations

import pytest
from spoolkit import Kit, kit  # noqa: F401 - kit: a fixture

from lpfilter import cli
from lpfilter.status import ExitStatus


def _both(kit: Kit, capsys: pytest.CaptureFixture[str],
          *argv: str) -> list[tuple[int, str, str]]:
    """(status, stdout, stderr) of ``argv`` through ``cli.main`` and the installed
    command."""
    capsys.readouterr()
    status = cli.main(list(argv), kit.env)
    out, err = capsys.readouterr()
    done = kit.run(*argv)
    return [(status, out, err), (done.returncode, done.stdout, done.stderr)]


def _host(kit: Kit, queue: str) -> str:
    done = kit.run("lpc", "status", queue)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[1].split()[0]


def test_lpc_says_each_queue_it_cannot_find_and_does_the_others(
        kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    out = kit.root / "printed"
    out.touch()
    kit.queue("q", str(out))
    host = _host(kit, "q")
    for status, stdout, stderr in _both(kit, capsys, "lpc", "stop", "nosuch", "q", "gone"):
        assert status == ExitStatus.NO_SUCH_PRINTER
        assert stdout == f"Printer: {host}\n{host}: stopped\n"
        lines = stderr.splitlines()
        assert len(lines) == 2 and "nosuch" in lines[0] and "gone" in lines[1], stderr
        assert all(line.startswith("lpfilter: ") for line in lines), stderr
    for status, stdout, stderr in _both(kit, capsys, "start", "q", "nosuch"):
        assert status == ExitStatus.NO_SUCH_PRINTER
        assert stdout == f"Printer: {host}\n{host}: started\n"
        assert stderr.startswith("lpfilter: ") and stderr.count("\n") == 1, stderr


def test_lpc_status_says_a_missing_queue_and_shows_the_others(
        kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    out = kit.root / "printed"
    out.touch()
    kit.queue("q", str(out))
    host = _host(kit, "q")
    for status, stdout, stderr in _both(kit, capsys, "lpc", "status", "nosuch", "q"):
        assert status == ExitStatus.NO_SUCH_PRINTER
        rows = stdout.splitlines()
        assert len(rows) == 2 and rows[1].startswith(host), stdout
        assert stderr.startswith("lpfilter: ") and "nosuch" in stderr, stderr
        assert stderr.count("\n") == 1, stderr

