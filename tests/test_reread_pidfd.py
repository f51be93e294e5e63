"""``lpc reread``'s signal to a leased ``lpfilter watch`` cannot miss its process (issue 15
review, minor 2): the process is pinned by a pidfd before its identity is checked and is
signalled through it, so a process that ends after the check, its pid then given to
another process, leaves the newcomer unsignalled and reread answering "no daemon".

Made deterministic without timing in a pid namespace of its own (``unshare -p``, root):
no other process forks there, so writing ``ns_last_pid`` gives the next child exactly
the pid of the one just ended. The check itself ends the process and starts the
newcomer, as a daemon dying at that very moment would."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
from localkit import need_root

from lpfilter.commands import reread
from lpfilter.locks import Holder

#: Run as pid 1 of a new pid namespace. argv[1]: "pidfd" (reread.hup_if) or "pid" (the
#: check-then-kill(2) it replaced, the control). Prints how the newcomer ended.
SCRIPT = r'''
import os, signal, subprocess, sys
from lpfilter.commands.reread import hup_if

SLEEP = ["/bin/sleep", "120"]
first = subprocess.Popen(SLEEP)
newcomer = []

def verified_then_replaced():
    """The check passes; then the process ends and its pid goes to a newcomer."""
    first.kill()
    first.wait()
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(first.pid - 1))
    newcomer.append(subprocess.Popen(SLEEP))
    assert newcomer[0].pid == first.pid, (newcomer[0].pid, first.pid)
    return True

if sys.argv[1] == "pidfd":
    print("sent" if hup_if(first.pid, verified_then_replaced) else "none")
else:
    if verified_then_replaced():
        os.kill(first.pid, signal.SIGHUP)
    print("sent")
newcomer[0].send_signal(signal.SIGTERM)  # a SIGHUP sent before would be taken first
print(newcomer[0].wait())
'''


def in_pid_namespace(how: str) -> list[str]:
    need_root("a pid namespace of its own (unshare -p) and writing its ns_last_pid")
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is missing"
    done = subprocess.run([unshare, "--pid", "--fork", "--mount-proc", sys.executable, "-c",
                           SCRIPT, how], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_a_verified_process_replaced_before_the_signal_is_not_signalled() -> None:
    assert in_pid_namespace("pidfd") == ["none", str(-signal.SIGTERM)]


def test_the_control_a_signal_by_pid_would_hit_the_newcomer() -> None:
    """The same scenario with kill(2) by pid (reread before the fix): the newcomer, which
    merely got the pid, dies of the SIGHUP. This shows the scenario really reuses the
    pid, so the test above proves the pidfd, not a harness that reuses nothing."""
    assert in_pid_namespace("pid") == ["sent", str(-signal.SIGHUP)]


def test_hup_if_signals_the_verified_process_and_refuses_a_gone_one() -> None:
    """The ordinary paths: a live, verified process gets its SIGHUP; a check that fails,
    a process already gone, and pids kill(2) reads as groups are "no daemon"."""
    child = subprocess.Popen(["/bin/sleep", "120"])
    try:
        assert not reread.hup_if(child.pid, lambda: False)
        assert reread.hup_if(child.pid, lambda: True)
        assert child.wait(timeout=30) == -signal.SIGHUP
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert not reread.hup_if(child.pid, lambda: True)  # reaped: gone
    for pid in (0, -1):
        assert not reread.hup_if(pid, lambda: True)


def test_a_process_that_ends_between_its_check_and_the_signal_is_no_daemon() -> None:
    """Without a namespace: the check ends the process (and it is reaped); the signal
    through the pidfd finds it gone, so reread says no daemon."""
    child = subprocess.Popen(["/bin/sleep", "120"])

    def ended() -> bool:
        child.kill()
        child.wait()
        return True
    assert not reread.hup_if(child.pid, ended)
    assert child.returncode == -signal.SIGKILL


#: A stand-in for the installed ``lpfilter`` script: a Python program of that name, so that
#: ``is_watch`` sees its command line as the kernel shows an lpfilter command's.
STAND_IN = "import time\nprint('ready', flush=True)\ntime.sleep(120)\n"


def test_only_a_watch_command_is_a_watcher_whatever_its_other_words(tmp_path: Path) -> None:
    """Root's own lpfilter commands that merely have the word ``watch`` among their
    arguments (an option's value, a file name) are not watchers: the command is the first
    word after lpfilter's global options, as the command line reads them; one whose
    command is ``watch`` is, global options (and their values) before it or not."""
    script = tmp_path / "lpfilter"
    script.write_text(STAND_IN)
    cases = {
        ("virtual-printer", "--port", "0", "--output", "watch"): False,
        ("--printcap", "watch", "status"): False,
        ("-P", "watch", "status", "-P", "watch"): False,
        ("print", "-P", "q", "watch"): False,
        ("watch",): True,
        ("-vv", "--printcap", "/etc/printcap", "-P", "q", "--debug", "watch", "-P", "q"): True,
        ("--printcap=/etc/printcap", "-Pq", "watch", "--once"): True,
        ("-vPq", "watch"): True,  # short options bundled, as argparse takes them
        ("-vvP", "q", "--debug", "watch", "--once"): True,
        ("-vPwatch", "status"): False,
        ("-vP", "watch", "status"): False,
        ("--verb", "watch"): False,  # refused by lpfilter's parser (no abbreviations)
        ("--printc", "watch", "status"): False,
    }
    for words, expected in cases.items():
        child = subprocess.Popen([sys.executable, str(script), *words], stdout=subprocess.PIPE,
                                 text=True)
        try:
            assert child.stdout is not None and child.stdout.readline() == "ready\n"
            holder = Holder(child.pid, psutil.Process(child.pid).create_time(), "here",
                            "watch", 0.0)
            assert reread.is_watch(holder, os.getuid()) is expected, words
        finally:
            child.kill()
            child.wait()
            if child.stdout is not None:
                child.stdout.close()
