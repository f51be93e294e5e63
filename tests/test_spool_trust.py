"""Issue 11, security 1 and 2: what a local user can make a root watcher print.

Each attack is made by real processes running as uid 65534 (nobody), the way a user
would make it, then root's ``watch --once`` runs; the tests assert that nothing of a
root-only file reached the printer (a plain file as ``lp``), that the entry was refused
with a reason on stderr and moved aside. They need root (CI runs as root) to run
processes as other users; every run is bounded by a timeout.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lpfilter.job import Job, JobState
from lpfilter.spool.jobindex import replay_file
from lpfilter.spool.journal import Kind, encode

NOBODY = 65534
#: A user with no name, not in nobody's group.
STRANGER = 65533
SECRET = b"root-only secret: s3cr3t\n"

#: Run as a user (argv[1] uid, argv[2] gid): everything lpfilter imports is imported first
#: (its modules, and what they import only where it is used), as root (the interpreter
#: may be where nobody cannot read it, /root/.pyenv); then
#: argv[3] is "cli" (lpfilter's main with the rest) or Python code run with the rest as
#: ``args``.
AS_USER = """import importlib, os, pkgutil, resource, sys, lpfilter, lpfilter.cli as cli
import lpfilter.printcap as pc
import ctypes, hashlib, psutil, socket  # what lpfilter imports where it uses them
for module in pkgutil.walk_packages(lpfilter.__path__, "lpfilter."):
    if not module.name.endswith("__main__"):
        importlib.import_module(module.name)
cli.build_parser(); pc.load([os.environ["LPFILTER_PRINTCAP"]])
uid, gid, what, args = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
os.setgroups([]); os.setgid(gid); os.setuid(uid)
if what == "cli":
    sys.exit(cli.main(args))
exec(what)
"""


@dataclass
class World:
    """A root-owned world: a printcap with queue q (sd, lp=printer, a plain file), locks,
    and a root-only secret next to them."""

    root: Path

    @property
    def sd(self) -> Path:
        return self.root / "sd"

    @property
    def printer(self) -> Path:
        return self.root / "printer"

    @property
    def secret(self) -> Path:
        return self.root / "secret"

    @property
    def env(self) -> dict[str, str]:
        return dict(os.environ, LPFILTER_PRINTCAP=str(self.root / "printcap"),
                    HOME=str(self.root), LPFILTER_NO_CACHE="1",
                    LPFILTER_LOCK_DIR=str(self.root / "locks"),
                    LPFILTER_SOCKET=str(self.root / "none.sock"))

    def as_user(self, uid: int, what: str, *args: str, gid: int = NOBODY
                ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", AS_USER, str(uid), str(gid), what, *args],
                              env=self.env, cwd=self.root, timeout=60, capture_output=True,
                              text=True, check=False)

    def watch_once(self) -> subprocess.CompletedProcess[str]:
        """Root's cron run."""
        return subprocess.run([sys.executable, "-m", "lpfilter", "watch", "--once"],
                              env=self.env, cwd=self.root, timeout=60, capture_output=True,
                              text=True, check=False, stdin=subprocess.DEVNULL)

    def refused(self) -> list[str]:
        return sorted(os.listdir(self.sd / ".lpfilter" / "refused"))

    def tickets(self) -> dict[str, dict[str, object]]:
        return replay_file(str(self.sd / ".lpfilter" / "journal"))


@pytest.fixture
def world() -> Iterator[World]:
    if os.getuid() != 0:
        pytest.skip("needs root: the attacks run as uid 65534 against a root watcher")
    root = Path(tempfile.mkdtemp(prefix="lpfilter-trust-"))
    try:
        root.chmod(0o755)
        made = World(root)
        made.sd.mkdir()
        (root / "locks").mkdir(mode=0o700)
        made.printer.touch()
        made.secret.write_bytes(SECRET)
        made.secret.chmod(0o600)
        (root / "doc").write_text("hello from nobody\n")
        (root / "printcap").write_text(f"q:sd={made.sd}:lp={made.printer}\n")
        yield made
    finally:
        shutil.rmtree(root)


def refused_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ": refused " in line]


def test_a_user_cannot_print_into_a_shared_spool_nor_plant_a_job_folder(world: World) -> None:
    """sd is root's and 01777 (a shared hot folder). nobody's 'print' is refused in one line
    (exit 5) saying to drop the file into sd, and makes nothing there. nobody then builds
    the job folder an earlier lpfilter would have let them make, with a journal naming a job
    whose data is a symbolic link to a root-only file: root's watcher refuses the folder
    (not the queue owner's), moves it aside with one line naming it, and prints nothing of
    the file."""
    world.sd.chmod(0o1777)
    done = world.as_user(NOBODY, "cli", "print", "--no-wait", str(world.root / "doc"))
    assert (done.returncode, done.stdout, done.stderr) == (5, "", (
        f"lpfilter: queue q: spool directory {world.sd} is shared; its jobs belong to its"
        f" owner root (uid 0) only: drop the file into {world.sd} instead: the owner's"
        " watcher takes it from there (a running watcher also takes print through its print"
        " server); and no print server"
        f" answers on {world.root / 'none.sock'} (No such file or directory) to do it for"
        " you: start one with 'lpfilter watch' (as root or the spool's owner), or set"
        " LPFILTER_SOCKET to its socket\n"))
    assert os.listdir(world.sd) == []
    ticket = Job("000001", "q", "nobody", "doc", len(SECRET), 0.0, state=JobState.QUEUED).to_json()
    record = encode(0, Kind.JOB, ticket.encode()).hex()
    plant = """state = os.path.join(args[0], ".lpfilter")
for sub in ("", "jobs", "tmp", "refused"):
    os.mkdir(os.path.join(state, sub), 0o755)
with open(os.path.join(state, "journal"), "wb") as handle:
    handle.write(bytes.fromhex(args[1]))
os.symlink(args[2], os.path.join(state, "jobs", "000001.data"))
"""
    done = world.as_user(NOBODY, plant, str(world.sd), record, str(world.secret))
    assert done.returncode == 0, done.stderr
    run = world.watch_once()
    assert run.returncode == 0, run.stderr
    assert world.printer.read_bytes() == b""
    [aside] = [n for n in os.listdir(world.sd) if n.startswith(".lpfilter.refused-")]
    [line] = refused_lines(run.stderr)
    assert line == (f"lpfilter: queue q: refused {world.sd}/.lpfilter: owned by uid 65534,"
                    f" not by the queue's owner (uid 0); moved to {world.sd}/{aside}")
    assert os.path.islink(world.sd / aside / "jobs" / "000001.data")
    state = os.stat(world.sd / ".lpfilter")  # made again, the owner's and private
    assert (state.st_uid, stat.S_IMODE(state.st_mode)) == (0, 0o700)


def test_the_queue_owner_cannot_make_a_root_watcher_send_what_they_may_not_read(
        world: World) -> None:
    """sd is nobody's: nobody spools three jobs, then replaces the data of job 1 with a
    symbolic link to a root-only file, that of job 2 with a hard link to it (made by root
    where fs.protected_hardlinks=1 stops nobody: the file then looks as it would where
    it is 0), that of job 3 with a FIFO. Root's watcher sends none of them and does not
    hang: each entry is refused with its reason and moved aside; jobs 1-3 fail with it.
    (The ticket of a fourth job once replaced by a link: the journal's own test is
    test_a_journal_that_is_not_the_owners_own_file_is_never_used.)"""
    os.chown(world.sd, NOBODY, NOBODY)
    world.sd.chmod(0o700)
    (world.root / "doc").write_text("hello from nobody\n" * 1000)  # past INLINE_MAX: files
    for _ in range(3):
        done = world.as_user(NOBODY, "cli", "print", "--no-wait", str(world.root / "doc"))
        assert done.returncode == 0, done.stderr
    jobs = world.sd / ".lpfilter" / "jobs"
    attack = """jobs, secret = args
for job in ("000001", "000002", "000003"):
    os.unlink(os.path.join(jobs, job + ".data"))
os.symlink(secret, os.path.join(jobs, "000001.data"))
try:
    os.link(secret, os.path.join(jobs, "000002.data"))
except PermissionError:
    print("protected_hardlinks")
os.mkfifo(os.path.join(jobs, "000003.data"))
"""
    done = world.as_user(NOBODY, attack, str(jobs), str(world.secret))
    assert done.returncode == 0, done.stderr
    if done.stdout == "protected_hardlinks\n":
        os.link(world.secret, jobs / "000002.data")
    run = world.watch_once()
    assert run.returncode == 6, run.stderr
    assert world.printer.read_bytes() == b""
    assert world.refused() == ["000001.data", "000002.data", "000003.data"]
    why = {"000001": "a symbolic link (never followed)", "000003": "a FIFO",
           "000002": "owned by uid 0, not by the queue's owner (uid 65534)"}
    tickets = world.tickets()
    assert sorted(tickets) == ["000001", "000002", "000003"]
    for job, reason in why.items():
        assert tickets[job]["state"] == "failed"
        assert tickets[job]["last_error"] == (
            f"its data file was refused, never sent: {reason}; moved to"
            f" {world.sd}/.lpfilter/refused/{job}.data")
    lines = refused_lines(run.stderr)
    assert len(lines) == 3, run.stderr


@pytest.mark.parametrize("plant", ["symlink", "fifo", "hardlink", "root's", "own hardlink"])
def test_a_journal_that_is_not_the_owners_own_file_is_never_used(world: World,
                                                                 plant: str) -> None:
    """sd is nobody's: nobody spools a job, then puts at the journal's name a symbolic
    link to a root-only file, a FIFO, a hard link to the root-only file (made by root
    where protected_hardlinks stops nobody), a file of root's (root's, as a root command
    once left it), or a hard link to a file of nobody's own. Root's watcher and root's
    'print' refuse it in one line naming it (exit 5), never read, append to or give it
    away, and print nothing."""
    os.chown(world.sd, NOBODY, NOBODY)
    world.sd.chmod(0o700)
    done = world.as_user(NOBODY, "cli", "print", "--no-wait", str(world.root / "doc"))
    assert done.returncode == 0, done.stderr
    journal = world.sd / ".lpfilter" / "journal"
    journal.unlink()
    target = world.secret
    if plant == "symlink":
        journal.symlink_to(world.secret)
    elif plant == "fifo":
        os.mkfifo(journal)
        os.chown(journal, NOBODY, NOBODY)
    elif plant == "hardlink":
        os.link(world.secret, journal)
    elif plant == "root's":
        target = journal
        journal.write_bytes(SECRET)
    else:
        target = world.root / "nobodys"
        target.write_bytes(SECRET)
        os.chown(target, NOBODY, NOBODY)
        os.link(target, journal)
    reason = {"symlink": "a symbolic link (never followed)", "fifo": "a FIFO",
              "hardlink": "owned by uid 0, not by the queue's owner (uid 65534)",
              "root's": "owned by uid 0, not by the queue's owner (uid 65534)",
              "own hardlink": "it has 2 hard links"}[plant]
    line = (f"lpfilter: queue q: {journal}: {reason}; not used: remove it (lpfilter makes a"
            " new one; the data files in jobs/ no record names are taken in again as jobs)")
    for run in (world.watch_once(), subprocess.run(
            [sys.executable, "-m", "lpfilter", "print", "--no-wait", str(world.root / "doc")],
            env=world.env, capture_output=True, text=True, timeout=60, check=False)):
        assert run.returncode == 5, run.stderr
        assert line in run.stderr.splitlines(), run.stderr
        assert "Traceback" not in run.stderr
    assert world.printer.read_bytes() == b""
    info = target.stat()
    assert (info.st_uid, target.read_bytes()) == (
        NOBODY if plant == "own hardlink" else 0, SECRET)
    if plant == "symlink":
        assert journal.is_symlink()


def test_a_hard_link_or_a_file_moved_in_by_another_user_is_refused(world: World) -> None:
    """sd is root's, mode 01770, group nobody's: nobody may drop files, uid 65533 may not.
    nobody drops a hard link to a root-only file (made by root where the kernel protects
    hard links) and moves in a 0600 file of uid 65533 from a directory nobody may write,
    and drops a file of their own. Root's watcher prints nobody's file only; the two others
    are refused with the reason and moved aside, unread."""
    os.chown(world.sd, 0, NOBODY)
    world.sd.chmod(0o1770)
    spare = world.root / "spare"
    spare.mkdir(mode=0o777)
    spare.chmod(0o777)
    theirs = spare / "theirs.txt"
    theirs.write_bytes(b"uid 65533's private notes\n")
    theirs.chmod(0o600)
    os.chown(theirs, STRANGER, STRANGER)
    attack = """sd, secret, theirs = args
try:
    os.link(secret, os.path.join(sd, "link.txt"))
except PermissionError:
    print("protected_hardlinks")
os.rename(theirs, os.path.join(sd, "moved.txt"))
with open(os.path.join(sd, ".mine.txt"), "w") as handle:
    handle.write("nobody's own page\\n")
os.rename(os.path.join(sd, ".mine.txt"), os.path.join(sd, "mine.txt"))
"""
    done = world.as_user(NOBODY, attack, str(world.sd), str(world.secret), str(theirs))
    assert done.returncode == 0, done.stderr
    if done.stdout == "protected_hardlinks\n":
        os.link(world.secret, world.sd / "link.txt")
    run = world.watch_once()
    assert run.returncode == 0, run.stderr
    assert world.printer.read_bytes() == b"nobody's own page\n"
    assert world.refused() == ["link.txt", "moved.txt"]
    assert sorted(refused_lines(run.stderr)) == [
        "lpfilter: queue q: refused link.txt: it has 2 hard links and belongs to uid 0"
        " (root): a link may name a file its dropper may not read; copy the file in"
        f" instead; moved to {world.sd}/.lpfilter/refused/link.txt",
        "lpfilter: queue q: refused moved.txt: it belongs to uid 65533 (65533), who may"
        " not write the spool directory: someone else put it there; moved to"
        f" {world.sd}/.lpfilter/refused/moved.txt"]
    [job] = world.tickets().values()
    assert (job["user"], job["name"], job["state"]) == ("nobody", "mine.txt", "done")


def _info(uid: int, mode: int, nlink: int = 1, kind: int = stat.S_IFREG) -> os.stat_result:
    return os.stat_result((kind | mode, 1, 1, nlink, uid, uid, 10, 0, 0, 0))


@pytest.mark.parametrize(("spool_mode", "file_uid", "nlink", "refused"), [
    (0o700, 1000, 1, None),          # the owner's private hot folder, the owner's file
    (0o700, 1000, 2, None),          # the owner's own hard link: only they could drop it
    (0o700, 0, 2, "hard links"),     # a link to root's file, dropped by the owner
    (0o1777, 1000, 2, "hard links"),  # shared: anyone may have linked the owner's file
    (0o1777, 4242, 2, "hard links"),
    (0o1777, 4242, 1, None),         # another user's own file: they could drop it
    (0o700, 4242, 1, "may not write"),  # ...but not into a private folder
    (0o1770, 4242, 1, "may not write")])
def test_dropped_reason(spool_mode: int, file_uid: int, nlink: int,
                        refused: str | None) -> None:
    """The rule for a file taken from the hot folder (sd owned by uid 1000, group 4343)."""
    from lpfilter.spool.hotfolder import dropped_reason
    spool = os.stat_result((stat.S_IFDIR | spool_mode, 1, 1, 2, 1000, 4343, 0, 0, 0, 0))
    reason = dropped_reason(_info(file_uid, 0o600, nlink), spool)
    assert (reason is None) if refused is None else (refused in (reason or ""))
    assert dropped_reason(_info(1000, 0o600, 1, stat.S_IFIFO), spool) == "a FIFO"


@pytest.mark.parametrize(("mode", "rc", "expect"), [
    (0o1777, 0, "note: spool directory {sd} is shared (mode 01777): other users may drop"
                " files into it (a hot folder), which the watcher of its owner root (uid 0)"
                " takes; 'lpfilter print' by other users goes through that watcher's print"
                " server (refused, exit 5, when none answers)"),
    (0o777, 1, "spool directory {sd} may be written by others but has no sticky bit (mode"
               " 0777): anyone could replace lpfilter's folder in it, so print and watch"
               " refuse it; make it 01777 (a shared hot folder) or 0700")])
def test_checkpc_explains_a_shared_spool_directory(world: World, mode: int, rc: int,
                                                   expect: str) -> None:
    """checkpc names a world-writable sd: a note for a sticky one (a hot folder only), a
    problem for one without the sticky bit (print and watch refuse it)."""
    (world.root / "printcap").write_text(
        f"q:sd={world.sd}:lp={world.printer}:spool_dir_perms=0{mode:o}\n")  # (not a replace
    # of "0o" over the whole line: a temporary directory's name may hold "0o" too)
    world.sd.chmod(mode)
    done = subprocess.run([sys.executable, "-m", "lpfilter", "checkpc"], env=world.env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == rc, done.stdout + done.stderr
    assert f"{world.root / 'printcap'}:1: {expect.format(sd=world.sd)}" in done.stdout
    if mode == 0o777:
        run = world.watch_once()
        assert run.returncode == 5 and "has no sticky bit" in run.stderr


def test_root_gives_what_it_spools_in_a_users_queue_to_that_user(world: World) -> None:
    """sd is nobody's (the queue's owner): root's 'print' makes .lpfilter and every file in
    it nobody's, so that nobody's own watcher serves the job (and would refuse a file of
    root's as not its own)."""
    os.chown(world.sd, NOBODY, NOBODY)
    world.sd.chmod(0o700)
    done = subprocess.run([sys.executable, "-m", "lpfilter", "print", "--no-wait",
                           str(world.root / "doc")], env=world.env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout) == (0, "q-000001\n"), done.stderr
    state = world.sd / ".lpfilter"
    owners = {str(p.relative_to(world.sd)): p.lstat().st_uid
              for p in [state, *state.rglob("*")]}
    assert set(owners.values()) == {NOBODY}, owners
    for path in (world.printer, world.root / "locks"):
        os.chown(path, NOBODY, NOBODY)
    run = world.as_user(NOBODY, "cli", "watch", "--once")
    assert run.returncode == 0, run.stderr
    assert world.printer.read_text() == "hello from nobody\n"


def test_planted_symlinks_at_lpfilters_own_names_are_never_followed(tmp_path: Path) -> None:
    """Whoever can write the state folder (the owner, attacking root) plants symbolic links
    where lpfilter writes: at the name a compaction writes the new journal through
    (journal.next; a ticket's temporary name before the journal), and at the journal's
    lock file. Root records and compacts without touching the victim, and refuses the
    lock file, naming it."""
    from lpfilter.errors import AccessError
    from lpfilter.spool.store import SpoolStore
    (tmp_path / "sd").mkdir()
    store = SpoolStore(str(tmp_path / "sd"), "q")
    store.ensure()
    victim = tmp_path / "victim"
    victim.write_bytes(SECRET)
    (Path(store.state) / "journal.next").symlink_to(victim)
    store.write(Job("000001", "q", "root", "doc", 5, 0.0))
    store.request_cancel("000001")
    store.compact()
    assert victim.read_bytes() == SECRET
    assert store.read("000001") is not None and store.cancel_requested("000001")
    assert not (Path(store.state) / "journal.next").exists()
    store.close()
    lock = Path(store.state) / "journal.lock"
    lock.unlink()
    lock.symlink_to(victim)
    with pytest.raises(AccessError, match=r"journal\.lock: a symbolic link"):
        SpoolStore(str(tmp_path / "sd"), "q").next_id()
    assert victim.read_bytes() == SECRET


def test_a_symlink_planted_at_the_queues_log_in_a_shared_spool_is_never_followed(
        world: World) -> None:
    """sd is root's and shared (01777), its log (lf) and accounting file (af) lie in it.
    Before the first log line, nobody puts symbolic links to root-only files at their
    names and drops a file; root's watcher prints it and appends nothing to those files."""
    (world.root / "printcap").write_text(f"q:sd={world.sd}:lp={world.printer}:lf=log:af=acct\n")
    world.sd.chmod(0o1777)
    victim = world.root / "victim"
    victim.write_bytes(SECRET)
    victim.chmod(0o600)
    attack = """sd, secret, victim = args
os.symlink(secret, os.path.join(sd, "log"))
os.symlink(victim, os.path.join(sd, "acct"))
with open(os.path.join(sd, ".page.txt"), "w") as handle:
    handle.write("a page\\n")
os.rename(os.path.join(sd, ".page.txt"), os.path.join(sd, "page.txt"))
"""
    done = world.as_user(NOBODY, attack, str(world.sd), str(world.secret), str(victim))
    assert done.returncode == 0, done.stderr
    run = world.watch_once()
    assert run.returncode == 0, run.stderr
    assert world.printer.read_bytes() == b"a page\n"
    assert world.secret.read_bytes() == SECRET and victim.read_bytes() == SECRET


def test_root_neither_writes_nor_gives_away_a_hard_link_planted_at_a_lock_file(
        world: World) -> None:
    """sd is nobody's: nobody spools a job, then replaces the journal's lock file (once
    the job-number file, seq) with a hard link to a root-only file (made by root where
    fs.protected_hardlinks=1 stops nobody). Root's 'print' into the queue refuses it in
    one line (exit 5): the root-only file keeps its owner and its bytes."""
    os.chown(world.sd, NOBODY, NOBODY)
    world.sd.chmod(0o700)
    done = world.as_user(NOBODY, "cli", "print", "--no-wait", str(world.root / "doc"))
    assert done.returncode == 0, done.stderr
    seq = world.sd / ".lpfilter" / "journal.lock"
    attack = """seq, secret = args
os.unlink(seq)
try:
    os.link(secret, seq)
except PermissionError:
    print("protected_hardlinks")
"""
    done = world.as_user(NOBODY, attack, str(seq), str(world.secret))
    assert done.returncode == 0, done.stderr
    if done.stdout == "protected_hardlinks\n":
        os.link(world.secret, seq)
    done = subprocess.run([sys.executable, "-m", "lpfilter", "print", "--no-wait",
                           str(world.root / "doc")], env=world.env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (5, "", (
        f"lpfilter: queue q: {seq}: owned by uid 0, not by the queue's owner (uid 65534);"
        " not used: remove it (lpfilter makes a new one; the data files in jobs/ no record"
        " names are taken in again as jobs)\n"))
    info = world.secret.stat()
    assert (info.st_uid, world.secret.read_bytes()) == (0, SECRET)


def test_a_file_taken_from_a_shared_hot_folder_becomes_the_queue_owners(world: World) -> None:
    """sd is root's and shared (01777), jobs are held on arrival (ah): the file nobody drops
    is taken as nobody's job, but its kept data is root's (the queue's owner), mode 0600,
    so nobody can no longer change what the watcher checked."""
    (world.root / "printcap").write_text(f"q:sd={world.sd}:lp={world.printer}:ah\n")
    world.sd.chmod(0o1777)
    drop = """sd, = args
with open(os.path.join(sd, "page.txt"), "w") as handle:
    handle.write("a page\\n")
os.chmod(os.path.join(sd, "page.txt"), 0o666)
"""
    done = world.as_user(NOBODY, drop, str(world.sd))
    assert done.returncode == 0, done.stderr
    run = world.watch_once()
    assert run.returncode == 0, run.stderr
    [(job_id, job)] = world.tickets().items()
    assert (job["user"], job["name"], job["state"]) == ("nobody", "page.txt", "held")
    data = (world.sd / ".lpfilter" / "jobs" / f"{job_id}.data").stat()
    assert (data.st_uid, stat.S_IMODE(data.st_mode), data.st_nlink) == (0, 0o600, 1)


def test_an_old_symlink_among_the_data_files_is_refused_not_recovered(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A data file without a ticket, old enough to be a crashed submission, is recovered as
    a job only when it is the owner's regular file: a symbolic link is moved aside."""
    from lpfilter.spool import recovery
    from lpfilter.spool import store as store_module
    (tmp_path / "sd").mkdir()
    store = store_module.SpoolStore(str(tmp_path / "sd"), "q")
    store.ensure()
    victim = tmp_path / "victim"
    victim.write_bytes(SECRET)
    Path(store.data_path("000007")).symlink_to(victim)
    monkeypatch.setattr(recovery, "ORPHAN_AGE", 0.0)
    assert store.recover_orphans("root") == []
    assert store.jobs() == [] and os.listdir(store.refused_dir) == ["000007.data"]


def test_the_owners_watcher_copies_another_users_file_and_refuses_one_it_cannot_read(
        world: World) -> None:
    """sd is nobody's and shared (01777); nobody's watcher serves it. uid 65533 drops a
    readable file and a 0600 one: the first is copied (the job's data is nobody's) and
    printed, the second refused with the reason and moved aside; the watcher goes on."""
    os.chown(world.sd, NOBODY, NOBODY)
    world.sd.chmod(0o1777)
    for path in (world.printer, world.root / "locks"):
        os.chown(path, NOBODY, NOBODY)
    drop = """sd, = args
for name, mode in (("open.txt", 0o644), ("private.txt", 0o600)):
    with open(os.path.join(sd, "." + name), "w") as handle:
        handle.write(name + " from uid 65533\\n")
    os.chmod(os.path.join(sd, "." + name), mode)
    os.rename(os.path.join(sd, "." + name), os.path.join(sd, name))
"""
    done = world.as_user(STRANGER, drop, str(world.sd), gid=STRANGER)
    assert done.returncode == 0, done.stderr
    run = world.as_user(NOBODY, "cli", "watch", "--once")
    assert run.returncode == 0, run.stderr
    assert world.printer.read_bytes() == b"open.txt from uid 65533\n"
    assert refused_lines(run.stderr) == [
        "lpfilter: queue q: refused private.txt: cannot take it (uid 65534): Permission"
        f" denied; moved to {world.sd}/.lpfilter/refused/private.txt"]
    [job] = world.tickets().values()
    assert (job["user"], job["state"]) == ("65533", "done")


def test_a_refused_entry_never_replaces_another_nor_stays_for_want_of_a_name(
        tmp_path: Path) -> None:
    """refuse() gave a second entry of a taken name ``NAME.1``; with a 255-byte name that
    name is too long, the move failed and the entry stayed in jobs/ with no ticket, where
    orphan recovery printed it a minute later (and past 999 it replaced a refused file)."""
    from lpfilter.spool.hotfolder import REFUSED_NAME_MAX, refuse
    refused = tmp_path / "refused"
    refused.mkdir(mode=0o700)
    name = "A" * 255
    for body in (b"first\n", b"second\n", b"third\n"):
        entry = tmp_path / "entry"
        entry.write_bytes(body)
        said = refuse(str(refused), str(entry), name)
        assert said.startswith("moved to ") and not entry.exists(), said
    kept = sorted(p.read_bytes() for p in refused.iterdir())
    assert kept == [b"first\n", b"second\n", b"third\n"]
    assert all(len(os.fsencode(p.name)) <= REFUSED_NAME_MAX + 9 for p in refused.iterdir()
               if p.name != name)


def test_orphan_recovery_refuses_a_data_file_with_other_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A data file with no ticket and a second name (a hard link to a root-only file left
    in jobs/) is refused by the recovery, never made a job."""
    from lpfilter.spool import recovery
    from lpfilter.spool.store import SpoolStore
    monkeypatch.setattr(recovery, "ORPHAN_AGE", 0.0)  # link() made its ctime now
    sd = tmp_path / "sd"
    sd.mkdir(mode=0o700)
    store = SpoolStore(str(sd), "q")
    store.ensure("watch")
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    secret.chmod(0o600)
    orphan = Path(store.data_path("000009"))
    os.link(secret, orphan)
    assert store.recover_orphans("root") == []
    assert not orphan.exists() and store.jobs() == []
    assert [p.read_bytes() for p in Path(store.refused_dir).iterdir()] == [SECRET]
    store.close()


def test_a_directory_link_planted_in_a_records_path_is_never_followed(
        world: World) -> None:
    """lf, af and ps with a directory part (.acct/log): nobody plants .acct as a link to
    a root-only directory of an existing accounting file and drops a file; root's watcher
    appended the accounting lines to that file and created the log and status there. It
    prints the file and writes nothing through the link."""
    (world.root / "printcap").write_text(
        f"q:sd={world.sd}:lp={world.printer}:lf=.acct/log:af=.acct/acct:ps=.acct/status\n")
    world.sd.chmod(0o1777)
    closed = world.root / "closed"
    closed.mkdir(mode=0o700)
    (closed / "acct").write_bytes(SECRET)
    attack = """sd, closed = args
os.symlink(closed, os.path.join(sd, ".acct"))
with open(os.path.join(sd, ".page.txt"), "w") as handle:
    handle.write("a page\\n")
os.rename(os.path.join(sd, ".page.txt"), os.path.join(sd, "page.txt"))
"""
    done = world.as_user(NOBODY, attack, str(world.sd), str(closed))
    assert done.returncode == 0, done.stderr
    run = world.watch_once()
    assert run.returncode == 0, run.stderr
    assert world.printer.read_bytes() == b"a page\n"
    assert sorted(p.name for p in closed.iterdir()) == ["acct"]
    assert (closed / "acct").read_bytes() == SECRET
    assert run.stderr.count(".acct is no directory (a symbolic link below the spool"
                            " directory is never followed)") == 3, run.stderr


def test_records_a_user_planted_in_a_shared_spool_are_not_written(world: World) -> None:
    """nobody makes the log (lf) and accounting (af) files of a shared root spool, their
    own and writable to all, and drops a file: root's watcher appended to them (the user
    could then forge or erase records, or switch accounting on). It prints the file,
    writes neither, and says why once each."""
    (world.root / "printcap").write_text(f"q:sd={world.sd}:lp={world.printer}:lf=log:af=acct\n")
    world.sd.chmod(0o1777)
    attack = """sd, = args
for name in ("log", "acct"):
    with open(os.path.join(sd, name), "w") as handle:
        handle.write("forged\\n")
    os.chmod(os.path.join(sd, name), 0o666)
with open(os.path.join(sd, ".page.txt"), "w") as handle:
    handle.write("a page\\n")
os.rename(os.path.join(sd, ".page.txt"), os.path.join(sd, "page.txt"))
"""
    done = world.as_user(NOBODY, attack, str(world.sd))
    assert done.returncode == 0, done.stderr
    run = world.watch_once()
    assert run.returncode == 0, run.stderr
    assert world.printer.read_bytes() == b"a page\n"
    for name in ("log", "acct"):
        assert (world.sd / name).read_text() == "forged\n", name
        assert run.stderr.count(f"cannot write {world.sd / name}: owned by uid 65534") == 1


def test_a_link_made_and_removed_in_a_loop_does_not_keep_the_folder_from_being_made(
        tmp_path: Path) -> None:
    """A user of a shared spool racing its ``.lpfilter`` with a link they make and remove
    in a loop: the folder was tried twice, then the queue gave up (15 of 20 first
    starts; the message said the spool had been removed). Each try is a race the loop
    must win; the folder is made within PRIVATE_DIR_PATIENCE, and nothing else is left."""
    import subprocess
    import time

    from lpfilter.safefiles import private_dir
    sd = tmp_path / "sd"
    sd.mkdir(mode=0o1777)
    racer = ("import os, sys, time\n"
             "path, end = sys.argv[1], time.monotonic() + 30\n"
             "while time.monotonic() < end and not os.path.exists(path + '.stop'):\n"
             "    try:\n"
             "        os.symlink('/etc/shadow', path)\n"
             "        os.unlink(path)\n"
             "    except OSError:\n"
             "        pass\n")
    for _ in range(10):
        folder = sd / ".lpfilter"
        proc = subprocess.Popen([sys.executable, "-c", racer, str(folder)])
        try:
            time.sleep(0.05)
            private_dir(str(folder), os.getuid(), "queue q", str(sd))
            info = folder.lstat()
            assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700
        finally:
            (sd / ".lpfilter.stop").touch()
            proc.wait(timeout=30)
        folder.rmdir()
        for left in sd.iterdir():
            assert left.is_symlink() or left.name == ".lpfilter.stop", left
            left.unlink()
