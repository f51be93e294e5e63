"""What a filter leaves is ended by its mark, and only that: a watcher not root leaves a
non-dumpable leftover (its environment unreadable, like any ssh-agent of the user's)
alone and still forgets the filter's record; a root watcher never ends a process whose
real uid is another user's, though it carries the mark."""
from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
from localkit import need_root

from lpfilter.children import orphans, run

_NOBODY = 65534
#: An interpreter uid 65534 may run (the venv's may sit under a private home).
_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
_HOLDER = ("import ctypes, os, sys, time; ctypes.CDLL(None).prctl(4, 0, 0, 0, 0);"
           " open(sys.argv[1] + '.tmp', 'w').write(str(os.getpid()));"
           " os.rename(sys.argv[1] + '.tmp', sys.argv[1]); time.sleep(600)")
#: Waits (bounded) until the background process is non-dumpable, then exits 0.
_FILTER = ('setsid "$PY" -c "$HOLDER" "$SD/pid" </dev/null >/dev/null 2>&1 & i=0;'
           ' while [ ! -s "$SD/pid" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done;'
           ' exit 0')
_WATCHER = """
import os, sys
from lpfilter.children import orphans, run
sd = sys.argv[1]
env = {"PATH": "/bin:/usr/bin", "PY": sys.executable, "HOLDER": sys.argv[2], "SD": sd}
running = run.start(run.FilterCommand("if", ["sh", "-c", sys.argv[3]], False, True),
                    stdin=os.open("/dev/null", os.O_RDONLY), stdout=None, env=env, cwd=sd,
                    owner=(os.geteuid(), os.getegid()), messages=run.Messages())
print(running.wait(), running.mark is None, sorted(os.listdir(orphans.records_dir(sd))))
"""


def _end(pid: int) -> None:
    """SIGKILL ``pid`` (not a child of ours) and wait (bounded) until it is gone."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.poll(30_000)
    finally:
        os.close(pidfd)


def test_a_watcher_not_root_forgets_the_record_though_a_leftover_is_non_dumpable() -> None:
    need_root("a watcher running as uid 65534")
    sd = Path(tempfile.mkdtemp(prefix="lpfilter-marks-"))
    lib = Path(tempfile.mkdtemp(prefix="lpfilter-lib-"))
    holder = 0
    try:
        os.chmod(lib, 0o755)  # psutil, where uid 65534 can read it
        shutil.copytree(Path(psutil.__file__).parent, lib / "psutil")
        (sd / ".lpfilter").mkdir()
        for path in (sd, sd / ".lpfilter"):
            os.chown(path, _NOBODY, _NOBODY)
        done = subprocess.run([_PYTHON, "-c", _WATCHER, str(sd), _HOLDER, _FILTER],
                              user=_NOBODY, group=_NOBODY, extra_groups=[], cwd="/",
                              capture_output=True, text=True, timeout=120, check=False,
                              env={"PATH": "/bin:/usr/bin",
                                   "PYTHONPATH": f"{Path(run.__file__).parents[2]}:{lib}"})
        assert (sd / "pid").exists(), (done.stdout, done.stderr)
        holder = int((sd / "pid").read_text())
        assert done.stdout.split() == ["0", "True", "[]"], (done.stdout, done.stderr)
        # left alone by choice: it cannot be told from the user's own ssh-agent
        assert os.path.exists(f"/proc/{holder}")
    finally:
        if holder:
            _end(holder)
        shutil.rmtree(sd)
        shutil.rmtree(lib)


def test_a_root_watcher_leaves_a_marked_process_whose_real_uid_is_another_users(
        tmp_path: Path) -> None:
    need_root("a process with real uid 65534 and effective uid 0")
    token = orphans.new_token()
    since = orphans.start_ticks(os.getpid())
    code = "import os, time; os.setresuid(65534, 0, 0); print(flush=True); time.sleep(600)"
    other = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             env={orphans.TOKEN_VARIABLE: token, "PATH": "/bin"})
    try:
        assert other.stdout is not None and other.stdout.readline() == b"\n"
        assert orphans.end_marked(token, 0, since)
        assert other.poll() is None  # real uid 65534: not root's to end
    finally:
        other.kill()
        other.wait(timeout=30)
        if other.stdout is not None:
            other.stdout.close()
