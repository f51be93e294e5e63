"""``lp=|program`` under a root watcher runs as lpd runs an lp-pipe (lprng-filters.md §3):
as the queue's filter user (daemon/lp, or ``user``/``group``, for a root-owned spool; root
only for ``ROOT``; the spool's owner for a user's spool), its output read back as bounded
status lines, and it dies with the watcher (review finding I-a); its command line is
LPRng's: ``$`` tokens expanded, the option list without -F -N -e -f (§2, §7)."""
from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import tempfile
from pathlib import Path

import psutil
from localkit import made_user, need_root
from spoolkit import Kit, kit, kit_at, wait_served, wait_until  # noqa: F401 - kit: a fixture

#: How much a watcher may grow while an lp=| program writes 50 MB without a newline.
GROWTH_LIMIT = 8 << 20


def _shared_dir(prefix: str) -> Path:
    """A directory other users can reach (root's pytest tmp_path is 0700)."""
    where = Path(tempfile.mkdtemp(prefix=prefix))
    where.chmod(0o755)
    return where


def _program(where: Path, name: str, body: str) -> Path:
    path = where / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_an_lp_pipe_runs_as_the_filter_user_root_only_when_asked() -> None:
    """Root-owned spools: default daemon/lp, ``user=``/``group=``, ``ROOT``; a user's
    spool: that user, in the user's own group."""
    need_root("lp=| programs run as another user")
    where = _shared_dir("lpfilter-pipeid-")
    try:
        out = where / "ids"
        out.touch()
        out.chmod(0o666)
        rec = _program(where, "rec.sh", f"cat > /dev/null\necho \"$1 $(id -u) $(id -g)\""
                                        f" >> {out}\n")
        with made_user() as user, kit_at(where) as kit:
            kit.queue("a", f"|{rec} default", user=None, write=False)
            kit.queue("b", f"|ROOT {rec} root", user=None, write=False)
            kit.queue("c", f"|{rec} named", user="lp", group="daemon", write=False)
            sd = kit.queue("d", f"|{rec} owner", user=None, accounting=False)
            os.chown(sd, user.uid, 0)  # the directory's group is root's: not the program's
            kit.printcap.chmod(0o644)
            doc = where / "doc.txt"
            doc.write_text("page\n")
            doc.chmod(0o644)
            for queue in "abc":
                done = kit.run("print", "--no-wait", "-P", queue, str(doc))
                assert done.returncode == 0, done.stderr
            (where / "userlocks").mkdir(mode=0o700)
            os.chown(where / "userlocks", user.uid, user.uid)
            env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8",
                   "LPFILTER_PRINTCAP": str(kit.printcap), "LPFILTER_NO_CACHE": "1",
                   "LPFILTER_LOCK_DIR": str(where / "userlocks")}
            done = user.run("print", "--no-wait", "-P", "d", str(doc), env=env)
            assert done.returncode == 0, done.stderr
            done = kit.run("watch", "--once", "-P", "a", "-P", "b", "-P", "c", "-P", "d")
            assert done.returncode == 0, done.stderr
            for queue in "abcd":
                assert list(kit.states(queue).values()) == ["done"], kit.tickets(queue)
            user_gid = pwd.getpwuid(user.uid).pw_gid
        daemon, lp = pwd.getpwnam("daemon").pw_uid, grp.getgrnam("lp").gr_gid
        assert sorted(out.read_text().splitlines()) == sorted([
            f"default {daemon} {lp}",
            f"named {pwd.getpwnam('lp').pw_uid} {grp.getgrnam('daemon').gr_gid}",
            "root 0 0", f"owner {user.uid} {user_gid}"])
    finally:
        shutil.rmtree(where)


def _peak_rss(pid: int) -> int:
    """The process's peak resident size since the last ``_reset_peak`` (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # proc(5): reset the peak RSS


def test_an_lp_pipe_writing_50_mb_without_a_newline_does_not_grow_the_watcher(
        kit: Kit) -> None:  # noqa: F811
    """Its output is read in bounded lines: the watcher's peak RSS while the program
    writes 50 MB with no newline stays within a few MiB of what it was, and the job's
    failure message is short."""
    need_root("resetting a process's peak RSS (/proc/PID/clear_refs)")
    program = kit.program("flood.sh", "#!/bin/sh\ncat > /dev/null\n"
                                      "head -c 52428800 /dev/zero | tr '\\000' x\nexit 2\n")
    kit.queue("q", f"|{program}", send_try=1)
    watch = kit.start("watch", "-P", "q")
    wait_served(kit, "q", watch)
    process = psutil.Process(watch.pid)
    before = process.memory_info().rss
    _reset_peak(watch.pid)
    doc = kit.root / "doc.txt"
    doc.write_bytes(b"some page\n")
    done = kit.run("print", "--no-wait", "-P", "q", str(doc))
    assert done.returncode == 0, done.stderr
    job = done.stdout.split()[-1].removeprefix("q-")
    wait_until(lambda: kit.states("q").get(job) == "failed", timeout=120, what="failed")
    grown = _peak_rss(watch.pid) - before
    assert grown < GROWTH_LIMIT, f"the watcher grew by {grown >> 20} MiB"
    error = kit.ticket("q", job)["last_error"]
    assert "flood.sh exited 2" in error and "xxxx" in error and len(error) < 4000, error
    status = kit.run("status", "-P", "q")
    assert len(status.stdout) < 20000, len(status.stdout)
    assert watch.stop() == 0


def test_a_killed_watcher_leaves_no_lp_pipe_program_running(kit: Kit) -> None:  # noqa: F811
    """SIGKILL to ``watch`` while its program runs: the kernel kills the program too."""
    pid_file = kit.root / "program.pid"
    program = kit.program("stuck.sh", f"#!/bin/sh\necho $$ > {pid_file}.new\n"
                                      f"mv {pid_file}.new {pid_file}\nexec sleep 600\n")
    kit.queue("q", f"|{program}")
    doc = kit.root / "doc.txt"
    doc.write_bytes(b"x" * (1 << 20))  # more than a pipe holds: the send waits for it
    done = kit.run("print", "--no-wait", "-P", "q", str(doc))
    assert done.returncode == 0, done.stderr
    watch = kit.start("watch", "-P", "q")
    pid = int(wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(),
                         timeout=60, what="the program's pid"))
    assert psutil.pid_exists(pid)
    os.kill(watch.pid, signal.SIGKILL)
    watch.popen.wait(timeout=30)

    def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
    wait_until(gone, timeout=30, what=f"the lp=| program (pid {pid}) to end")


def test_an_lp_pipe_gets_lprngs_command_line(kit: Kit) -> None:  # noqa: F811
    """``$`` tokens in the lp=| text are expanded and the option list appended, without
    the per-file -F -N -e -f (lprng-filters.md §2 "lp-pipe"); ``-$``: no option list;
    the shell form gets its expansions as variables, no option list."""
    argv_out = kit.root / "argv"
    rec = kit.program("rec.sh", "#!/bin/sh\ncat > /dev/null\n"
                                f"printf '%s\\n' \"$@\" > {argv_out}\n")
    shelled = kit.root / "shelled"
    kit.queue("q", f"|{rec} one $-J", write=False)
    kit.queue("n", f"|-$ {rec} two $0n", write=False)
    kit.queue("s", f"|{rec} three $-J | /bin/cat > {shelled}")
    doc = kit.root / "doc.txt"
    doc.write_text("page\n")
    got = {}
    for queue in "qns":
        done = kit.run("print", "--no-wait", "-J", "My Job", "-P", queue, str(doc))
        assert done.returncode == 0, done.stderr
        done = kit.run("watch", "--once", "-P", queue)
        assert done.returncode == 0, done.stderr
        got[queue] = argv_out.read_text().splitlines()
    words = got["q"]
    assert words[:2] == ["one", "My Job"] and words[-1] == "acct"
    assert {"-JMy Job", "-Pq", "-Qq", "-nroot", "-b5", "-w80"} <= set(words), words
    assert not [w for w in words if w[:2] in ("-F", "-N", "-e", "-f")], words
    assert got["n"] == ["two", "-n", "root"]
    assert got["s"] == ["three", "My Job"] and shelled.exists()


def test_a_watcher_that_is_not_root_refuses_a_root_lp_pipe_clearly() -> None:
    """A user's own watcher cannot run ``lp=|ROOT ...``: the job fails saying so."""
    with made_user() as user:
        where = _shared_dir("lpfilter-piperoot-")
        try:
            with kit_at(where) as kit:
                sd = kit.queue("q", "|ROOT /bin/cat", user=None, accounting=False)
                os.chown(sd, user.uid, user.uid)
                kit.printcap.chmod(0o644)
                (where / "userlocks").mkdir(mode=0o700)
                os.chown(where / "userlocks", user.uid, user.uid)
                env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8",
                       "LPFILTER_PRINTCAP": str(kit.printcap), "LPFILTER_NO_CACHE": "1",
                       "LPFILTER_LOCK_DIR": str(where / "userlocks")}
                doc = where / "doc.txt"
                doc.write_text("page\n")
                doc.chmod(0o644)
                done = user.run("print", "--no-wait", "-P", "q", str(doc), env=env)
                assert done.returncode == 0, done.stderr
                done = user.run("watch", "--once", "-P", "q", env=env)
                assert "cannot run a ROOT filter" in done.stderr, done.stderr
                assert "run the watcher as root or leave out ROOT" in done.stderr
                assert [t["state"] for t in kit.tickets("q").values()] == ["failed"]
        finally:
            shutil.rmtree(where)
