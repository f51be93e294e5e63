"""The hot folder: any regular file another program puts into a queue's ``sd`` is a job.

A file still being written is never taken. It is complete once it was renamed in, or once
no process has it open for writing: at the first look (a watcher starting, ``watch
--once``) that is enough, whatever the file's age; later looks of a running watcher also
want it unchanged for the settle time, as a program may open a file again to append. Where
lpfilter cannot see every process that might hold a file (a process of another user, and
the watcher is not root), only the settle time protects it. Dot files, ``*.tmp``,
``*.part``, lpfilter's own files (log, status, accounting) and LPRng's spool files
(``hfA123``, ``dfA123host``, ``control.lp``...) are never jobs. Symbolic links, FIFOs,
devices and sockets are moved aside unopened with a logged reason: a link to /etc/shadow
must not print.

The watcher (root, or the queue's owner) must never read on a dropper's behalf a file the
dropper could not read. It cannot know who dropped a file, so a file taken in is checked
on its open descriptor (``dropped_reason``): a file with more than one hard link (a link
keeps its owner, and with fs.protected_hardlinks=0 anyone may link anyone's file) is taken
only when its owner is the queue's owner and nobody else may write the spool directory;
a file whose owner may not write the spool directory was put there by someone else.
"""
from __future__ import annotations

import os
import pwd
import stat

from lpfilter import logs
from lpfilter.safefiles import kind_of
from lpfilter.structs import FrozenStruct, Struct
from lpfilter.text import visible

log = logs.getLogger(__name__)

#: A refused entry keeps at most this much of its name (bytes), leaving room for a
#: random part within the 255 bytes a file name may have.
REFUSED_NAME_MAX = 200
IGNORED_SUFFIXES = (".tmp", ".part")
_ASCII_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
#: Write permission for group or others: processes of other users may hold the file.
_SHARED = stat.S_IWGRP | stat.S_IWOTH


def lprng_file(name: str) -> bool:
    """One of LPRng's own spool files (job tickets, data and control files, queue control,
    status, locks: ``[hcdt]f`` a letter and three digits, or ``lpd.lock.``): an LPRng
    spool directory reused for lpfilter must not print them as jobs. (By hand, as the
    pattern ``^(?:[hcdt]f[A-Za-z]\\d{3}|lpd\\.lock\\.)`` read it: a pass imports no re.)"""
    return ((len(name) >= 6 and name[0] in "hcdt" and name[1] == "f"
             and name[2] in _ASCII_LETTERS and name[3:6].isdecimal())
            or name.startswith("lpd.lock."))


def lprng_names(queue: str) -> frozenset[str]:
    """The per-queue files LPRng keeps in a spool directory."""
    return frozenset(f"{kind}.{queue}" for kind in ("control", "status", "unspooler"))


class Candidate(FrozenStruct):
    """A regular file in the hot folder that may become a job. (These records are
    lpfilter.structs classes: dataclasses costs a cron pass ~5 ms of imports.)"""

    __slots__ = _fields = ("name", "path", "size", "mtime", "uid", "mode")
    name: str
    path: str
    size: int
    mtime: float
    uid: int
    mode: int

    def __init__(self, name: str, path: str, size: int, mtime: float, uid: int,
                 mode: int = 0o600) -> None:
        self._assign(locals())


class Scan(Struct):
    __slots__ = _fields = ("ready", "refused", "recheck_at", "waiting")
    ready: list[Candidate]
    refused: list[tuple[str, str]]
    #: When a file that is not settled yet should be looked at again (None: no such file).
    #: Not for a file a process holds open: its writer closing it is an inotify event.
    recheck_at: float | None
    #: The files not taken at this look, each with the reason.
    waiting: dict[str, str]

    def __init__(self, ready: list[Candidate], refused: list[tuple[str, str]],
                 recheck_at: float | None, waiting: dict[str, str] | None = None) -> None:
        self.ready, self.refused, self.recheck_at = ready, refused, recheck_at
        self.waiting = {} if waiting is None else waiting


class Writers(Struct):
    """One look at every process: which files are held open for writing, and by whom;
    whose processes could not be looked into."""

    __slots__ = _fields = ("holders", "hidden", "others_unseen")
    holders: dict[str, list[str]]
    #: The uids of each process whose open files we may not see (root's left out: a root
    #: process writing into a hot folder in place is not guarded against).
    hidden: list[frozenset[int]]
    #: /proc hides other users' processes from us (mounted with hidepid).
    others_unseen: bool

    def __init__(self, holders: dict[str, list[str]] | None = None,
                 hidden: list[frozenset[int]] | None = None,
                 others_unseen: bool = False) -> None:
        self.holders = {} if holders is None else holders
        self.hidden = [] if hidden is None else hidden
        self.others_unseen = others_unseen

    def certain(self, candidate: Candidate) -> bool:
        """Did we see every process that could hold this file open for writing? One we
        could not see could if it runs as the file's owner, or if the file is writable by
        group or others."""
        shared = bool(candidate.mode & _SHARED)
        if self.others_unseen and (shared or candidate.uid != os.geteuid()):
            return False
        return not any(shared or candidate.uid in uids for uids in self.hidden)


def _entries(sd: str, own: frozenset[str]) -> tuple[list[Candidate], list[tuple[str, str]]]:
    """The regular files of ``sd`` that may be jobs, and the entries to refuse."""
    candidates: list[Candidate] = []
    refused: list[tuple[str, str]] = []
    try:
        entries = list(os.scandir(sd))
    except OSError as exc:
        log.warning("cannot read spool directory %s: %s", sd, exc.strerror)
        return [], []
    for entry in entries:
        name = entry.name
        if (name.startswith(".") or name.endswith(IGNORED_SUFFIXES) or name in own
                or lprng_file(name)):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode):
            continue
        if not stat.S_ISREG(info.st_mode):
            refused.append((name, kind_of(info.st_mode)))
            continue
        candidates.append(Candidate(name, entry.path, info.st_size, info.st_mtime,
                                    info.st_uid, info.st_mode))
    return candidates, refused


def scan(sd: str, own: frozenset[str], moved_in: set[str], settle: float, now: float, *,
         fresh: bool = False) -> Scan:
    """Classify the entries of ``sd``: ready files (oldest first), refused ones, the others
    with the reason, and when to look again. ``fresh``: the first look (a watcher
    starting, ``watch --once``), where a file nobody holds open is complete at any age."""
    candidates, refused = _entries(sd, own)
    found = Scan([], refused, None)
    looked = [c for c in candidates
              if fresh or c.name in moved_in or now - c.mtime >= settle]
    # A file renamed in is complete (renaming is how a writer says so): only the others
    # are looked for among the processes' open files, in one pass per scan, not per file.
    writers = open_for_writing({c.path for c in looked if c.name not in moved_in})
    looked_at = {c.path for c in looked}
    for candidate in candidates:
        age = now - candidate.mtime
        holders = writers.holders.get(candidate.path)
        if holders:  # looked at again when closed (an inotify event) or at a rescan
            found.waiting[candidate.name] = "open for writing by " + ", ".join(holders)
            continue
        if candidate.path in looked_at and (candidate.name in moved_in or age >= settle
                                            or writers.certain(candidate)):
            found.ready.append(candidate)
            continue
        found.waiting[candidate.name] = (
            f"changed {max(age, 0.0):.1f} s ago (less than the settle time, {settle:g} s)"
            + ("; a process lpfilter may not inspect (another user's) may still be"
               " writing it" if fresh else ""))
        due = candidate.mtime + settle
        found.recheck_at = due if found.recheck_at is None else min(found.recheck_at, due)
    found.ready.sort(key=lambda c: (c.mtime, c.name))
    return found


def open_for_writing(paths: set[str]) -> Writers:
    """Which of ``paths`` some process has open for writing, as far as we may look; one
    pass over all processes, whatever the number of paths. On Linux from /proc itself:
    every descriptor's link, and the flags only of one linked to a path looked for
    (psutil, elsewhere, reads every regular file's, and its import costs a pass ~23 ms)."""
    if not paths:
        return Writers()
    wanted = _real_paths(paths)
    found = Writers(others_unseen=os.geteuid() != 0 and _proc_hides_others())
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        pids = []
    if not pids or not os.path.isdir("/proc/self/fd"):
        return _by_psutil(wanted, found)
    for pid in pids:
        _look_into(pid, wanted, found)
    return found


def _look_into(pid: str, wanted: dict[str, str], found: Writers) -> None:
    """One process's descriptors (one gone meanwhile, or a zombie, holds nothing)."""
    folder = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(folder)
    except PermissionError:
        _hidden_uids(pid, found)
        return
    except OSError:
        return
    for fd in fds:
        try:
            target = os.readlink(f"{folder}/{fd}")
        except OSError:
            continue
        if target in wanted and _writing(pid, fd):
            found.holders.setdefault(wanted[target], []).append(
                f"pid {pid} ({_name(int(pid))})")


def _writing(pid: str, fd: str) -> bool:
    """Is descriptor ``fd`` of ``pid`` open for writing (the octal flags of its fdinfo)?"""
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}", "rb") as handle:
            for line in handle.read(4096).splitlines():
                if line.startswith(b"flags:"):
                    return bool(int(line.split()[1], 8) & (os.O_WRONLY | os.O_RDWR))
    except (OSError, ValueError, IndexError):
        pass  # gone meanwhile: it holds nothing
    return False


def _hidden_uids(pid: str, found: Writers) -> None:
    """A process whose descriptors we may not see: its real, effective and saved uids (as
    psutil's ``uids``) are noted unless it is root's; none to be read, others may be
    unseen."""
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            status = handle.read(8192)
    except FileNotFoundError:
        return
    except OSError:
        found.others_unseen = True
        return
    for line in status.splitlines():
        if line.startswith(b"Uid:"):
            uids = [int(value) for value in line.split()[1:4]]
            if uids[1] != 0:
                found.hidden.append(frozenset(uids))
            return


def _by_psutil(wanted: dict[str, str], found: Writers) -> Writers:
    """``open_for_writing`` where there is no /proc to read."""
    import psutil
    for process in psutil.process_iter():
        try:
            files = process.open_files()
        except psutil.AccessDenied:
            _hidden(process, found)
            continue
        except (psutil.Error, OSError):
            continue  # gone meanwhile, or a zombie: holds nothing
        for item in files:
            flags = getattr(item, "flags", 0)
            writing = getattr(item, "mode", "r") != "r" or flags & (os.O_WRONLY | os.O_RDWR)
            if writing and item.path in wanted:
                found.holders.setdefault(wanted[item.path], []).append(
                    f"pid {process.pid} ({_name(process.pid)})")
    return found


def _real_paths(paths: set[str]) -> dict[str, str]:
    """Each path by its real name, as a process's open files are shown. The paths are
    regular files a scan found in a folder (no link among them): the folder's real name is
    looked up once, not once a file (realpath's lstat of every component, per file, was
    1-2 % of a 1000-file pass)."""
    folders: dict[str, str] = {}
    wanted = {}
    for path in paths:
        folder, name = os.path.split(path)
        real = folders.get(folder)
        if real is None:
            real = folders[folder] = os.path.realpath(folder)
        wanted[os.path.join(real, name)] = path
    return wanted


def _name(pid: int) -> str:
    """A process's name for a message, as psutil gives it (only once a writer is found;
    it may be any text its owner chose)."""
    import psutil
    try:
        return visible(psutil.Process(pid).name())
    except (psutil.Error, OSError):
        return "?"


def _hidden(process: object, found: Writers) -> None:
    """Note the uids of a process whose open files we may not see (unless it is root's)."""
    import psutil
    try:
        uids = process.uids()  # type: ignore[attr-defined]
    except psutil.AccessDenied:
        found.others_unseen = True  # not even its owner may be known
        return
    except (psutil.Error, OSError):
        return
    if uids.effective != 0:
        found.hidden.append(frozenset(uids))


def _proc_hides_others() -> bool:
    """Is /proc mounted with hidepid, so that other users' processes are not even listed?"""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) > 4 and fields[4] == "/proc" and "hidepid=" in line:
                    value = line.split("hidepid=", 1)[1].split(",", 1)[0].split()[0]
                    return value not in ("0", "off")
    except OSError:
        return True  # cannot tell: assume the worst
    return False


def could_write(uid: int, spool: os.stat_result) -> bool:
    """Could user ``uid`` create a file in the directory ``spool`` describes (by its mode:
    owner, group and supplementary groups, others)?"""
    if uid == 0:
        return True
    mode = spool.st_mode
    if uid == spool.st_uid:
        return mode & 0o300 == 0o300
    try:
        user = pwd.getpwuid(uid)
        groups = set(os.getgrouplist(user.pw_name, user.pw_gid))
    except (KeyError, OSError):
        groups = set()
    if spool.st_gid in groups:
        return mode & 0o030 == 0o030
    return mode & 0o003 == 0o003


def dropped_reason(info: os.stat_result, spool: os.stat_result) -> str | None:
    """Why a file dropped into the hot folder (``info``, from its open descriptor) must
    not be read for whoever dropped it, or None. ``spool``: the spool directory."""
    if not stat.S_ISREG(info.st_mode):
        return kind_of(info.st_mode)
    if info.st_nlink > 1 and (spool.st_mode & _SHARED or info.st_uid != spool.st_uid):
        return (f"it has {info.st_nlink} hard links and belongs to {_with_name(info)}: a"
                " link may name a file its dropper may not read; copy the file in instead")
    if not could_write(info.st_uid, spool):
        return (f"it belongs to {_with_name(info)}, who may not write the spool directory:"
                " someone else put it there")
    return None


def _with_name(info: os.stat_result) -> str:
    """The owner as a refusal names them (looked up only for a refusal: /etc/passwd)."""
    return f"uid {info.st_uid} ({visible(_user(info.st_uid))})"


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def refuse(refused_dir: str, path: str, name: str | None = None) -> str:
    """Move a refused entry (never opened, never followed) out of the hot folder (or the
    job folder) under ``name`` (default: its own); says where it went, or why it could not
    be moved. The refused folder is the queue owner's alone, so a name found free there
    stays free; a taken or overlong name gets a random part (never a replaced file)."""
    name = name or os.path.basename(path)
    target = os.path.join(refused_dir, name)
    if len(os.fsencode(name)) > REFUSED_NAME_MAX or os.path.lexists(target):
        short = os.fsdecode(os.fsencode(name)[:REFUSED_NAME_MAX])
        while True:  # bounded in practice: 2^32 names, the folder holds few
            target = os.path.join(refused_dir, f"{short}.{os.urandom(4).hex()}")
            if not os.path.lexists(target):
                break
    try:
        try:
            os.rename(path, target)
        except FileNotFoundError:
            if not os.path.lexists(path):
                raise
            os.mkdir(refused_dir, 0o700)  # removed while the watcher ran: make it again
            os.rename(path, target)
    except OSError as exc:
        return f"cannot move it to {visible(target)}: {exc.strerror}"
    return f"moved to {visible(target)}"
