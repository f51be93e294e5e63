"""A queue's spool directory: its folders made (or checked) and the errors a spool meets.

``SpoolStore`` (spool/store.py) is this plus the jobs; here is what every command that
touches a spool checks first: that ``sd`` exists, is writable, is not a shared folder
without a sticky bit, is this user's (or root's to serve), and how a full, read-only or
vanished spool is said (one line, a documented exit status).
"""
from __future__ import annotations

import errno
import os
import stat

from lpfilter.errors import NO_ROOM, AccessError, LpfilterError, SpoolFull
from lpfilter.job import user_name
from lpfilter.safefiles import private_dir
from lpfilter.spool import JOURNAL
from lpfilter.spool import STATE_DIR as STATE_DIR  # (defined there: see its docstring)

#: Write permission for group or others.
_SHARED = stat.S_IWGRP | stat.S_IWOTH


class SpoolDir:
    """The folders of one queue's spool directory ``sd``."""

    def __init__(self, sd: str, queue: str) -> None:
        self.sd, self.queue = sd, queue
        self.state = os.path.join(sd, STATE_DIR)
        self.jobs_dir = os.path.join(self.state, "jobs")
        self.tmp_dir = os.path.join(self.state, "tmp")
        self.refused_dir = os.path.join(self.state, "refused")
        self._owner: int | None = None
        #: Set by ``ensure``: this process (the owner or root) moves refused entries aside.
        self._tidy = False

    def data_path(self, job_id: str) -> str:
        # (jobs_dir ends with "jobs": a join's checks cost more than the name, ~7 a job)
        return f"{self.jobs_dir}/{job_id}.data"

    @property
    def owner(self) -> int:
        """The queue's owner: the owner of ``sd`` (root when ``sd`` is root's)."""
        if self._owner is None:
            self._owner = os.stat(self.sd).st_uid
        return self._owner

    # --- set-up -----------------------------------------------------------------------
    def require_dir(self) -> None:
        """A missing ``sd`` is the same error (ACCESS) for every command that meets it.
        One behind a directory closed to this user is not called missing: reading or
        writing it says so, naming it."""
        if not os.path.isdir(self.sd) and not _closed_above(self.sd):
            raise AccessError(f"queue {self.queue}: spool directory {self.sd} does not exist;"
                              " run 'lpfilter checkpc --fix' to create it", queue=self.queue)

    def room(self) -> Room:
        """Writes in the spool (``with sd.room():``): a full, over-quota or read-only file
        system is SpoolFull, naming ``sd`` and what to do (an expected condition, not an
        internal error)."""
        return Room(self.sd, self.queue)

    def explain(self, exc: OSError) -> AccessError | None:
        """An OSError met while serving the queue, as the one-line error it is when the
        spool directory was removed or made unwritable under a watcher (None: another)."""
        if isinstance(exc, PermissionError):
            return AccessError(f"queue {self.queue}: you (uid {os.getuid()}) may no longer"
                               f" write {exc.filename or self.sd}; give the spool directory"
                               " back to the user who runs the watcher", queue=self.queue)
        if isinstance(exc, FileNotFoundError) and not os.path.isdir(self.jobs_dir):
            return AccessError(f"queue {self.queue}: the spool directory {self.sd} (or its"
                               f" {STATE_DIR} folder) was removed while the queue was served",
                               queue=self.queue)
        return None

    def ensure(self, action: str = "print") -> None:
        """Create lpfilter's folders in ``sd`` (or check them); a missing or read-only
        ``sd``, or one that is not ours, is a clear error. ``action`` (print, watch,
        change) picks the advice."""
        self.check(action)
        for path in (self.state, self.jobs_dir, self.tmp_dir, self.refused_dir):
            try:
                self._make_dir(path)
            except FileNotFoundError as exc:  # the spool removed meanwhile (rm -rf)
                raise self.explain(exc) or exc from None
        self._tidy = True

    def check(self, action: str = "print") -> None:
        """Whether this process may make lpfilter's folders in ``sd``: an error (AccessError,
        SpoolFull) saying why not, so a caller that only may make them need not copy it."""
        self.require_dir()
        if _read_only(self.sd):  # os.access says only "no"
            raise SpoolFull(self.sd, errno.EROFS, queue=self.queue)
        if not os.access(self.sd, os.W_OK | os.X_OK):
            raise AccessError(f"queue {self.queue}: you (uid {os.getuid()}) may not write the"
                              f" spool directory {self.sd}; ask its owner, or print as them",
                              queue=self.queue)
        info = os.stat(self.sd)
        self._owner = info.st_uid
        if info.st_mode & _SHARED and not info.st_mode & stat.S_ISVTX:
            raise AccessError(f"queue {self.queue}: spool directory {self.sd} may be written"
                              f" by others but has no sticky bit (mode"
                              f" {stat.S_IMODE(info.st_mode):04o}): anyone could replace"
                              " lpfilter's folder in it; make it 01777 (a shared hot folder)"
                              " or 0700", queue=self.queue)
        if os.geteuid() not in (0, info.st_uid):
            owner = f"{user_name(info.st_uid)} (uid {info.st_uid})"
            advice = (f"drop the file into {self.sd} instead: the owner's watcher takes it from"
                      " there (a running watcher also takes print through its print server)"
                      if action == "print" else
                      "run it as root" if info.st_uid == 0 else
                      f"run it as {user_name(info.st_uid)} or root")
            raise AccessError(f"queue {self.queue}: spool directory {self.sd} is shared; its"
                              f" jobs belong to its owner {owner} only: {advice}",
                              queue=self.queue)

    def _make_dir(self, path: str) -> None:
        """One of lpfilter's folders: the owner's own private directory (see private_dir)."""
        private_dir(path, self.owner, f"queue {self.queue}", self.sd)

    @property
    def journal_path(self) -> str:
        return os.path.join(self.state, JOURNAL)

    def _journal_seen(self) -> bool:
        """Is there a journal to read (a folder closed to this user: say so)?"""
        try:
            os.lstat(self.journal_path)
        except FileNotFoundError:
            return False
        except PermissionError as exc:
            raise self._unreadable(exc) from None
        return True

    def _may_not_write(self, path: str) -> LpfilterError:
        """This process may not write ``path``: a read-only file system, or not its own."""
        if _read_only(self.sd):
            return SpoolFull(self.sd, errno.EROFS, queue=self.queue)
        return AccessError(f"queue {self.queue}: you (uid {os.getuid()}) may not write {path}"
                           f" in spool directory {self.sd}; it belongs to the user who runs"
                           " this queue's watcher", queue=self.queue)

    def _unreadable(self, exc: OSError) -> AccessError:
        """The jobs cannot be listed: one line naming the spool directory (exit 5)."""
        if isinstance(exc, PermissionError):
            return AccessError(f"queue {self.queue}: you (uid {os.getuid()}) may not read the"
                               f" jobs in spool directory {self.sd}; ask its owner, or run"
                               " this as the user who runs its watcher", queue=self.queue)
        return AccessError(f"queue {self.queue}: cannot read the jobs in spool directory"
                           f" {self.sd} ({self.jobs_dir}: {exc.strerror})", queue=self.queue)


def _closed_above(path: str) -> bool:
    """Is ``path`` out of this user's sight (a directory above it closed), not missing?"""
    try:
        os.stat(path)
    except PermissionError:
        return True
    except (OSError, ValueError):
        return False
    return False


class Room:
    """``SpoolDir.room``. (A class, not contextlib's decorator: contextlib costs every
    quick command 2.7 M instructions to import.)"""

    __slots__ = ("queue", "sd")

    def __init__(self, sd: str, queue: str) -> None:
        self.sd = sd
        self.queue = queue

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 _tb: object) -> None:
        if isinstance(exc, OSError) and exc.errno in NO_ROOM:
            raise SpoolFull(self.sd, exc.errno, queue=self.queue) from exc


def _read_only(sd: str) -> bool:
    """Is ``sd`` on a file system mounted read-only? False when that cannot be asked."""
    try:
        return bool(os.statvfs(sd).f_flag & os.ST_RDONLY)
    except OSError:
        return False
