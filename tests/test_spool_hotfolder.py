"""The hot folder as a cron user and an operator meet it (issue 10): ``watch --once`` takes
every file that is complete when it starts, whatever its age; a file still open for
writing is left for a later run and named on stderr (exit status 8); a watcher starting
takes files renamed in while it was down at once; a refused symlink's line says where it
went. Real processes (lpfilter, writers holding files open) and real files; every wait is
bounded and every process started is stopped by its pid."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
from ftpkit import FtpQueue, MakeServer, ftp_queue, ftp_server, hang_guard  # noqa: F401
from spoolkit import Kit, Proc, fast_dir, kit, wait_until  # noqa: F401 - fixtures


def drop(sd: Path, name: str, data: bytes) -> Path:
    """The safe way the man page recommends: write under a dot name, fsync, rename in."""
    hidden = sd / f".{name}"
    with open(hidden, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.rename(hidden, sd / name)
    return sd / name


#: A writer that keeps its file open: writes a line, says so, then sleeps until killed.
HOLDER = """import sys, time
with open(sys.argv[1], "wb") as handle:
    handle.write(b"half a report\\n")
    handle.flush()
    open(sys.argv[2], "w").close()
    time.sleep(120)
"""


def hold_open(kit: Kit, path: Path) -> Proc:
    """Start a process that holds ``path`` open for writing; returns once it does."""
    ready = kit.root / f"{path.name}.holding"
    holder = kit.spawn([sys.executable, "-c", HOLDER, str(path), str(ready)])
    wait_until(ready.exists, what=f"pid {holder.pid} to open {path.name}")
    return holder


def about_files(stderr: str) -> list[str]:
    """The lines of a run's stderr about hot-folder files (left or refused), whatever else
    the command logs."""
    return [line for line in stderr.splitlines()
            if line.startswith("lpfilter: queue ") and (": left " in line
                                                        or ": refused " in line)]


def stop(proc: Proc) -> None:
    proc.signal(signal.SIGKILL)
    proc.wait()


# --- watch --once -----------------------------------------------------------------------
def test_once_prints_500_files_renamed_in_just_before(kit: Kit, fast_dir: Path) -> None:
    """500 files renamed in right before `watch --once` (settle 2 s): all printed, each
    exactly once, in that one run, which exits 0 and says nothing."""
    printer = fast_dir / "printer"
    printer.touch()
    sd = kit.queue("q", str(printer), parent=fast_dir)
    lines = [f"file {n:03d} {os.urandom(6).hex()}\n" for n in range(500)]
    for n, line in enumerate(lines):
        drop(sd, f"r{n:03d}.txt", line.encode())
    result = kit.run("watch", "--once", "-P", "q")
    assert (result.returncode, about_files(result.stderr)) == (0, []), result.stderr
    printed = Counter(printer.read_text().splitlines(keepends=True))
    assert printed == Counter(lines)  # every file once, nothing else
    assert sorted(t["name"] for t in kit.tickets("q").values()) == [
        f"r{n:03d}.txt" for n in range(500)]
    assert Counter(a["outcome"] for a in kit.accounting("q")) == {"done": 500}
    assert not [n for n in os.listdir(sd) if n.endswith(".txt")]


def test_once_leaves_a_file_open_for_writing_and_names_it(kit: Kit) -> None:
    """Next to a renamed-in file and a refused symlink, a file a live process holds open
    for writing is not taken: one line on stderr names it and its writer, exit status 8;
    the refused line names where the link went. The next run, writer gone, prints it."""
    printer = kit.root / "printer"
    printer.touch()
    sd = kit.queue("q", str(printer))
    drop(sd, "report.ps", b"the finished report\n")
    os.symlink(kit.root / "secret", sd / "shadow")
    holder = hold_open(kit, sd / "growing.ps")
    writer = psutil.Process(holder.pid).name()
    result = kit.run("watch", "--once", "-P", "q")
    refused = sd / ".lpfilter" / "refused" / "shadow"
    assert result.returncode == 8, result.stderr
    assert about_files(result.stderr) == [
        "lpfilter: queue q: refused shadow: a symbolic link (never followed);"
        f" moved to {refused}",
        f"lpfilter: queue q: left growing.ps in {sd} for a later run: open for writing by"
        f" pid {holder.pid} ({writer})"]
    assert refused.is_symlink()
    assert (f"refused shadow: a symbolic link (never followed); moved to {refused}"
            in (sd / "log").read_text())
    assert printer.read_text() == "the finished report\n"
    assert (sd / "growing.ps").read_bytes() == b"half a report\n"

    stop(holder)
    again = kit.run("watch", "--once", "-P", "q")
    assert (again.returncode, about_files(again.stderr)) == (0, []), again.stderr
    assert printer.read_text() == "the finished report\nhalf a report\n"
    assert sorted(t["name"] for t in kit.tickets("q").values()) == ["growing.ps", "report.ps"]


# --- the daemon -------------------------------------------------------------------------
def test_daemon_start_takes_files_renamed_in_while_it_was_down(kit: Kit) -> None:
    """Files renamed in while no watcher ran print as soon as one starts, though --settle
    is 30 s; one a live process still writes is not taken."""
    sd = kit.queue("q", kit.recorder())
    for name in ("a.ps", "b.ps"):
        drop(sd, name, f"{name} while down\n".encode())
    holder = hold_open(kit, sd / "growing.ps")
    watcher = kit.start("watch", "-P", "q", "--settle", "30")
    wait_until(lambda: len(kit.log_lines()) == 2, timeout=10,
               what="the two renamed-in files to print, well within the settle time")
    assert sorted(line[5] for line in kit.log_lines()) == ["a.ps", "b.ps"]
    assert kit.output("q", "000001") == b"a.ps while down\n"
    assert (sd / "growing.ps").exists()  # still open for writing: left where it is
    assert watcher.stop() == 0
    stop(holder)


# --- files of other users ---------------------------------------------------------------
#: lpfilter as uid 65534: everything it will import is imported first, as root (the
#: interpreter may be where nobody cannot read it, /root/.pyenv).
NOBODY = """import importlib, os, pkgutil, sys, psutil, lpfilter, lpfilter.cli as cli
import lpfilter.printcap as pc
for module in pkgutil.walk_packages(lpfilter.__path__, "lpfilter."):
    if not module.name.endswith("__main__"):
        importlib.import_module(module.name)
cli.build_parser(); pc.load([os.environ["LPFILTER_PRINTCAP"]])
list(psutil.process_iter()); psutil.Process().open_files(); psutil.Process().uids()
os.setgroups([]); os.setgid(65534); os.setuid(65534)
sys.exit(cli.main(sys.argv[1:]))
"""
#: A writer as uid 65533: writes its file, then holds it open (argv[2] "hold") or goes on
#: appending to it (argv[2] "append") until killed.
OTHER_USER = """import os, sys, time
os.setgroups([]); os.setgid(65533); os.setuid(65533)
with open(sys.argv[1], "wb") as handle:
    for _ in range(2400):
        handle.write(b"%s from uid 65533\\n" % sys.argv[2].encode())
        handle.flush()
        if sys.argv[2] == "hold":
            time.sleep(120)
        time.sleep(0.05)
"""


def test_once_waits_the_settle_time_for_files_of_users_it_cannot_inspect() -> None:
    """A watcher running as nobody cannot see which files uid 65533's processes hold open:
    it waits up to --settle for each such file to stop changing. One that stopped is
    printed in the same run; one still changing is left, named on stderr, exit status 8."""
    if os.getuid() != 0:
        pytest.skip("needs root to run processes as other users")
    world = Path(tempfile.mkdtemp(prefix="lpfilter-users-"))
    writers: list[subprocess.Popen[bytes]] = []
    try:
        world.chmod(0o755)
        sd, printer, locks = world / "sd", world / "printer", world / "locks"
        for path in (sd, locks):
            path.mkdir()
        printer.touch()
        sd.chmod(0o1777)  # others may drop files (sticky: a shared hot folder)
        for path in (sd, printer, locks):
            os.chown(path, 65534, 65534)
        (world / "printcap").write_text(f"q:sd={sd}:lp={printer}\n")
        for name, how in (("stopped.txt", "hold"), ("changing.txt", "append")):
            writers.append(subprocess.Popen([sys.executable, "-c", OTHER_USER,
                                             str(sd / name), how]))
            wait_until(lambda n=name: (sd / n).exists() and (sd / n).stat().st_size,
                       what=f"uid 65533 to write {name}")
        env = dict(os.environ, LPFILTER_PRINTCAP=str(world / "printcap"), HOME=str(world),
                   LPFILTER_NO_CACHE="1", LPFILTER_LOCK_DIR=str(locks))
        done = subprocess.run([sys.executable, "-c", NOBODY, "watch", "--once", "--settle",
                               "3"], env=env, cwd=world, timeout=60, capture_output=True,
                              text=True, check=False)
        assert done.returncode == 8, done.stderr
        assert printer.read_text() == "hold from uid 65533\n"
        [line] = about_files(done.stderr)
        assert line.startswith(f"lpfilter: queue q: left changing.txt in {sd} for a later"
                               " run: changed ")
        assert line.endswith("s ago (less than the settle time, 3 s); a process lpfilter may"
                             " not inspect (another user's) may still be writing it")
        assert (sd / "changing.txt").exists() and not (sd / "stopped.txt").exists()
    finally:
        for writer in writers:
            writer.kill()
            writer.wait(timeout=10)
        shutil.rmtree(world)


# --- an FTP queue -----------------------------------------------------------------------
def test_once_on_an_ftp_queue_takes_finished_files_and_names_the_open_one(
        ftp_queue: FtpQueue, ftp_server: MakeServer) -> None:
    """The same through ``lpfilter.cli.main`` for an FTP print server: the files renamed in
    just before arrive in that run, the refused symlink's line says where it went, the
    file still open for writing stays and is named, exit status 8."""
    server = ftp_server()
    ftp_queue.setup(server.lp())
    sd = ftp_queue.sd
    docs = {f"part{n}.pcl": f"part {n}\r\n".encode() for n in range(3)}
    for name, data in docs.items():
        drop(sd, name, data)
    os.symlink("/etc/passwd", sd / "passwd")
    ready = ftp_queue.root / "holding"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(sd / "open.pcl"),
                               str(ready)])
    try:
        wait_until(ready.exists, what=f"pid {holder.pid} to open open.pcl")
        writer = psutil.Process(holder.pid).name()
        run = ftp_queue.run("watch", "--once", "-P", "q")
        assert run.rc == 8, run.err
        refused = sd / ".lpfilter" / "refused" / "passwd"
        assert about_files(run.err) == [
            f"lpfilter: queue q: refused passwd: a symbolic link (never followed); moved to"
            f" {refused}",
            f"lpfilter: queue q: left open.pcl in {sd} for a later run: open for writing by"
            f" pid {holder.pid} ({writer})"]
        assert sorted(received(f) for f in server.files(3)) == sorted(docs.values())
        assert os.readlink(refused) == "/etc/passwd"
        assert (sd / "open.pcl").read_bytes() == b"half a report\n"
    finally:
        holder.kill()
        holder.wait(timeout=10)
    again = ftp_queue.run("watch", "--once", "-P", "q")
    assert (again.rc, about_files(again.err)) == (0, []), again.err
    assert received(server.files(4)[-1]) == b"half a report\n"


def received(server_file: object) -> bytes:
    return Path(server_file.path).read_bytes()  # type: ignore[attr-defined]


# --- who could hold a file open unseen (pure) -------------------------------------------
ME = os.geteuid()


@pytest.mark.parametrize(("owner", "mode", "hidden", "others_unseen", "certain"), [
    (ME, 0o644, [], False, True),            # we saw every process (root, or nobody hidden)
    (ME, 0o644, [{1234}], False, True),      # a hidden process of another user: not ours
    (ME, 0o664, [{1234}], False, False),     # ... but the file is group-writable
    (ME, 0o646, [{1234}], False, False),     # ... or writable by others
    (1234, 0o644, [{1234, 99}], False, False),  # a hidden process runs as the owner
    (1234, 0o644, [{99}], False, True),      # no process of the owner is hidden
    (ME, 0o644, [{ME}], False, False),       # one of ours we may not inspect (not dumpable)
    (1234, 0o644, [], True, ME == 1234),     # /proc hides other users' processes
    (ME, 0o644, [], True, True),
    (ME, 0o660, [], True, False)])
def test_a_file_is_certain_only_if_every_process_that_may_write_it_was_seen(
        owner: int, mode: int, hidden: list[set[int]], others_unseen: bool,
        certain: bool) -> None:
    from lpfilter.spool.hotfolder import Candidate, Writers
    writers = Writers(hidden=[frozenset(h) for h in hidden], others_unseen=others_unseen)
    candidate = Candidate("f", "/sd/f", 1, 0.0, owner, 0o100000 | mode)
    assert writers.certain(candidate) is certain


def test_one_look_at_the_processes_per_scan_whatever_the_number_of_files(
        kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    """500 new files and one held open: one pass over the processes (the list of /proc,
    read once; psutil's where there is none) tells them apart, not one per file."""
    from lpfilter.spool import hotfolder
    sd = kit.root / "sd"
    sd.mkdir()
    for n in range(500):
        drop(sd, f"f{n:03d}", b"x\n")
    holder = hold_open(kit, sd / "held")
    passes = []
    listdir = os.listdir

    def counted(path: str = ".") -> list[str]:
        if path == "/proc":
            passes.append(1)
        return listdir(path)

    monkeypatch.setattr(os, "listdir", counted)
    found = hotfolder.scan(str(sd), frozenset(), set(), 2.0, time.time(), fresh=True)
    monkeypatch.undo()
    assert len(passes) == 1
    assert sorted(c.name for c in found.ready) == [f"f{n:03d}" for n in range(500)]
    assert list(found.waiting) == ["held"] and f"pid {holder.pid} " in found.waiting["held"]
    stop(holder)


def test_a_refused_link_is_moved_even_if_the_refused_folder_was_removed(kit: Kit) -> None:
    """The refused folder removed while the daemon runs: it is made again, the link goes
    there, and the log line says so (it used to say only that it could not be moved)."""
    sd = kit.queue("q", kit.recorder())
    watcher = kit.start("watch", "-P", "q", "--settle", "0.2")
    refused = sd / ".lpfilter" / "refused"
    wait_until(refused.is_dir, what="the watcher to set up the spool directory")
    refused.rmdir()
    os.symlink("/etc/shadow", sd / "shadow")
    wait_until(lambda: (refused / "shadow").is_symlink(), what="the link to be moved")
    assert watcher.stop() == 0
    assert (f"refused shadow: a symbolic link (never followed); moved to {refused / 'shadow'}"
            in (sd / "log").read_text())


def test_a_writer_is_found_through_a_folder_reached_by_a_link(kit: Kit) -> None:
    """The folder's real name is looked up once for all its files (hotfolder._real_paths):
    a file held open through a linked folder name is still found, under the name the scan
    gave, and the others are not; each key is what os.path.realpath gives the file."""
    from lpfilter.spool.hotfolder import _real_paths, open_for_writing
    real = kit.root / "real-spool"
    real.mkdir()
    linked = kit.root / "linked-spool"
    linked.symlink_to(real)
    for name in ("held.ps", "done.ps"):
        (real / name).write_bytes(b"x\n")
    paths = {str(linked / "held.ps"), str(linked / "done.ps")}
    assert _real_paths(paths) == {os.path.realpath(p): p for p in paths}
    holder = hold_open(kit, linked / "held.ps")
    try:
        writer = psutil.Process(holder.pid).name()
        found = open_for_writing(paths)
    finally:
        stop(holder)
    assert found.holders == {str(linked / "held.ps"): [f"pid {holder.pid} ({writer})"]}


def test_proc_and_psutil_find_the_same_writers_and_hidden_users(kit: Kit) -> None:
    """The /proc reading (Linux) and psutil's (elsewhere) agree: the file a process holds
    open for writing, not one held open for reading; and, looking as nobody, the uids of
    the processes it may not see into (uid 65533's among them), which is what
    ``Writers.certain`` weighs."""
    if os.getuid() != 0:
        pytest.skip("needs root to look as nobody and to run a process as another user")
    from lpfilter.spool import hotfolder
    world = Path(tempfile.mkdtemp(prefix="lpfilter-proc-"))
    other: subprocess.Popen[bytes] | None = None
    try:
        world.chmod(0o777)
        for name in ("held.ps", "read.ps", "free.ps"):
            (world / name).write_bytes(b"x\n")
        paths = {str(world / name) for name in ("held.ps", "read.ps", "free.ps")}
        holder = hold_open(kit, world / "held.ps")
        writer = psutil.Process(holder.pid).name()
        other = subprocess.Popen([sys.executable, "-c", OTHER_USER, str(world / "o.ps"), "hold"])
        wait_until(lambda: (world / "o.ps").exists(), what="uid 65533's writer")
        with open(world / "read.ps", "rb"):
            try:
                by_proc = hotfolder.open_for_writing(paths)
                by_psutil = hotfolder._by_psutil(hotfolder._real_paths(paths),
                                                 hotfolder.Writers())
                code = ("import json, os, sys, psutil; from lpfilter.spool import hotfolder\n"
                        "list(psutil.process_iter()); psutil.Process().uids()\n"
                        "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
                        "paths = set(sys.argv[1:])\n"
                        "a = hotfolder.open_for_writing(paths)\n"
                        "b = hotfolder._by_psutil(hotfolder._real_paths(paths),"
                        " hotfolder.Writers())\n"
                        "print(json.dumps([sorted(map(sorted, w.hidden)) for w in (a, b)]))")
                done = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True,
                                      text=True, timeout=60, check=True)
            finally:
                stop(holder)
        expected = {str(world / "held.ps"): [f"pid {holder.pid} ({writer})"]}
        assert by_proc.holders == by_psutil.holders == expected
        assert by_proc.hidden == by_psutil.hidden == []  # root sees into every process
        seen_by_proc, seen_by_psutil = json.loads(done.stdout)
        assert seen_by_proc == seen_by_psutil and [65533] in seen_by_proc
    finally:
        if other is not None:
            other.kill()
            other.wait()
        shutil.rmtree(world, ignore_errors=True)
