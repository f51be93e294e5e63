"""A ``send_failure_action=|program`` runs as the queue's filters run (issue 15 review, M-4):
as the queue's filter user (root only for ``ROOT``), in a session of its own marked for
the next watcher, the attempt count on its stdin; a child it leaves in the background
(holding its output) neither holds the worker nor outlives it, and a program that does
not finish is killed, with what it started, after its time."""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import tempfile
from pathlib import Path

import pytest
from localkit import need_root
from spoolkit import gone, kit_at
from test_spool_commands import MakeQueue, make_queue  # noqa: F401 - a fixture

from lpfilter.children.orphans import records_dir
from lpfilter.spool import policy

#: Says the attempt count, its uid, pid, session and whether it carries a filter's mark,
#: leaves a child in the background on its stdout, and asks for the job's removal (3).
REPORTER = r'''#!/bin/sh
read count
set -- $(cat /proc/$$/stat)
echo "{name} $count $(id -u) $(( $$ == $6 )) ${{LPFILTER_FILTER_MARK:+marked}}" >> {out}
/bin/sleep 300 &
echo $! >> {pids}
exit 3
'''


def _refusing_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def test_a_failure_program_runs_as_the_filter_user_in_its_own_session() -> None:
    need_root("a send_failure_action program run as another user")
    where = Path(tempfile.mkdtemp(prefix="lpfilter-sfa-"))
    where.chmod(0o755)  # daemon reaches the program and its files (not root's tmp_path)
    out, pids = where / "sfa-said", where / "sfa-pids"
    started: list[int] = []
    try:
        for path in (out, pids):
            path.touch()
            path.chmod(0o666)
        with kit_at(where) as kit:
            for name, prefix in (("a", ""), ("b", "ROOT ")):
                program = kit.program(f"{name}.sh", REPORTER.format(name=name, out=out,
                                                                    pids=pids))
                kit.queue(name, f"127.0.0.1%{_refusing_port()}", user=None, send_try=1,
                               send_failure_action=f"|{prefix}{program}")
                doc = where / "doc.txt"
                doc.write_text("page\n")
                assert kit.run("print", "--no-wait", "-P", name, str(doc)).returncode == 0
            done = kit.run("watch", "--once", "-P", "a", "-P", "b", timeout=120)
            started += _pids(pids)
            assert done.returncode != 70 and "Traceback" not in done.stderr, done.stderr
            for name in "ab":  # exit 3: removed (not failed by a 60 s wait for its pipe)
                assert list(kit.states(name).values()) == ["removed"], kit.tickets(name)
                assert os.listdir(records_dir(str(kit.sd(name)))) == []
        daemon = pwd.getpwnam("daemon").pw_uid
        assert sorted(out.read_text().splitlines()) == [f"a 1 {daemon} 1 marked",
                                                        "b 1 0 1 marked"]
        assert len(started) == 2 and all(gone(pid) for pid in started), started
    finally:
        for pid in started:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(where)


def test_a_failure_program_that_does_not_finish_is_killed_with_its_children(
        make_queue: MakeQueue, tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(policy, "PROGRAM_TIMEOUT", 0.5)
    pids = tmp_path / "pids"
    program = tmp_path / "hang.sh"
    program.write_text(f"#!/bin/sh\n/bin/sleep 300 &\necho $! $$ > {pids}\nexec /bin/sleep 300\n")
    program.chmod(0o755)
    q = make_queue(f"send_try#1:send_failure_action=|{program}:connect_interval#0"
                   f":lf={tmp_path / 'log'}")
    q.program("cat >/dev/null\nexit 1\n")
    q.spool()
    q.worker().serve(burst=True)
    said = (tmp_path / "log").read_text()
    started = _pids(pids)
    try:
        assert q.jobs()["000001"].state == "failed"
        assert (f"send_failure_action program {program} did not finish within 0.5 s; it was"
                " killed") in said, said
        assert len(started) == 2 and all(gone(pid) for pid in started), started
    finally:
        for pid in started:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)
