"""A queue's records: its log (``lf``), its status file (``ps``) and accounting (``af``).

Paths are relative to the spool directory unless absolute, as in LPRng. Like LPRng, the
accounting file is written only if it already exists (create it to turn accounting on).
"""
from __future__ import annotations

import errno
import os
import stat
import time

from lpfilter import logs
from lpfilter.safefiles import atomic_write
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.job import Job
    from lpfilter.printcap import Entry

log = logs.getLogger(__name__)
#: Records may lie in a spool directory others may write (a shared hot folder): a symbolic
#: link planted at a record's name is never followed, a FIFO never blocks.
_NO_LINK = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _path(entry: Entry, key: str) -> str | None:
    """A record file's path; None for unset, ``|program`` or ``host%port`` targets."""
    value = entry.string(key)
    if not value or value.startswith("|") or ("%" in value and "/" not in value):
        return None
    return value if os.path.isabs(value) else os.path.join(entry.string("sd") or ".", value)


class _Beneath:
    """A record's path with every directory below the spool directory opened without
    following a link (``lf=.acct/log``): in a spool others may write, a user could put a
    link there to a directory of root's, and root would write the record into it. The
    path given (``path``) reaches that directory through its descriptor
    (``/proc/self/fd/N``), so a link made after the look changes nothing. A record that
    is not below ``spool`` is its own path: the printcap's own (absolute) choice."""

    def __init__(self, path: str, spool: str) -> None:
        self.fd: int | None = None
        self.path = path
        top = spool.rstrip("/")
        if not top or not path.startswith(top + "/"):
            return
        parts = [part for part in path[len(top) + 1:].split("/") if part not in ("", ".")]
        if len(parts) < 2:
            return  # right in the spool directory: its own open refuses a link
        fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in parts[:-1]:
                if part == "..":
                    raise OSError(errno.EPERM, "'..' in a record's path", path)
                try:
                    inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                                    | os.O_CLOEXEC, dir_fd=fd)
                except OSError as exc:
                    if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                        raise
                    raise OSError(errno.EPERM, f"{visible(part)} is no directory (a"
                                  " symbolic link below the spool directory is never"
                                  " followed)", path) from None
                os.close(fd)
                fd = inner
        except BaseException:
            os.close(fd)
            raise
        self.fd, self.path = fd, f"/proc/self/fd/{fd}/{parts[-1]}"

    def __enter__(self) -> _Beneath:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _open_record(path: str, flags: int, mode: int = 0o600, spool: str = "") -> int:
    """Open a log or accounting file to append to it: never through a link (nor, below
    ``spool``, through a linked directory: ``_Beneath``), a regular file with no other
    name, and, in a folder others may write (a shared spool), one of this process's user,
    of root or of the folder's owner. A file another user planted there is not written
    (it would let them forge or erase records, or, hard-linked, make root append to a file
    of theirs choosing): OSError says why."""
    with _Beneath(path, spool) as beneath:
        return _open_checked(beneath.path, flags, mode)


def _open_checked(path: str, flags: int, mode: int) -> int:
    fd = os.open(path, flags | _NO_LINK, mode)
    try:
        info = os.fstat(fd)
        folder = os.stat(os.path.dirname(path) or ".")
        trusted = {os.geteuid(), 0, folder.st_uid}
        if not stat.S_ISREG(info.st_mode):
            why = "not a regular file"
        elif info.st_nlink != 1:
            why = f"it has {info.st_nlink} hard links"
        elif folder.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and info.st_uid not in trusted:
            why = (f"owned by uid {info.st_uid} in a folder others may write; not written"
                   " (remove it, or move the file out of the spool directory)")
        else:
            return fd
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    raise OSError(errno.EPERM, why, path)


def stamp(when: float | None = None, form: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A time as logs and ``status -l`` show it (or in ``form``: lpq's rows, lpstat's
    dates); one no clock can show (a forged record's) as its number."""
    try:
        return time.strftime(form, time.localtime(time.time() if when is None else when))
    except (OverflowError, OSError, ValueError):
        return repr(when)


class QueueRecords:
    """Writes one queue's log lines, status and accounting."""

    def __init__(self, entry: Entry) -> None:
        self.queue = entry.name
        self.spool = entry.string("sd") or ""
        self.log_path = _path(entry, "lf")
        self.status_path = _path(entry, "ps")
        self.acct_path = _path(entry, "af")
        self._log_fd: int | None = None
        #: Record files that could not be written, each said once until it can be again:
        #: a full disk must not fail (or flood the journal of) a print that succeeded.
        self._failing: set[str] = set()

    def _trouble(self, path: str, exc: OSError | None) -> None:
        """Say once that ``path`` cannot be written (None: it can again)."""
        if exc is None:
            self._failing.discard(path)
        elif path not in self._failing:
            self._failing.add(path)
            log.warning("%s: cannot write %s: %s; the jobs are not affected", self.queue,
                        path, exc.strerror or exc)

    def log(self, message: str, job: Job | None = None) -> None:
        """A line in the queue's log file (and the process log): one line, whatever a job
        name, file name or printer message holds (control characters made visible)."""
        text = visible(f"job {job.id}: {message}" if job else message)
        log.info("%s: %s", self.queue, text)
        if not self.log_path:
            return
        line = f"{stamp()} {self.queue}[{os.getpid()}] {text}\n".encode("utf-8", "replace")
        try:
            if self._log_fd is None:
                self._log_fd = _open_record(self.log_path,
                                            os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                                            spool=self.spool)
            os.write(self._log_fd, line)
        except OSError as exc:
            self._trouble(self.log_path, exc)
        else:
            self._trouble(self.log_path, None)

    def close(self) -> None:
        if self._log_fd is not None:
            os.close(self._log_fd)
            self._log_fd = None

    def status(self, message: str) -> None:
        """The printer's (or program's) latest message, for ``lpfilter status``."""
        if not self.status_path:
            return
        try:
            # Whole or old, never half; but not fsynced: it is news, not a record, and a
            # sync per job halved the small-job rate on this disk.
            with _Beneath(self.status_path, self.spool) as beneath:
                atomic_write(beneath.path, f"{stamp()} {visible(message)}\n".encode(
                    "utf-8", "replace"), 0o644, durable=False)
        except OSError as exc:
            self._trouble(self.status_path, exc)
        else:
            self._trouble(self.status_path, None)

    def last_status(self) -> str:
        """The status line, as root's daemon shows it to every client: read with the same
        checks as a record is written (no link followed, a regular file with no other
        name, a trusted owner), else a user's hard link would show them any file."""
        if not self.status_path:
            return ""
        try:
            fd = _open_record(self.status_path, os.O_RDONLY, spool=self.spool)
            with open(fd, encoding="utf-8", errors="replace") as handle:
                return handle.read(2000).strip()
        except OSError:
            return ""

    def account(self, job: Job, outcome: str) -> None:
        """One accounting line per finished job, if the accounting file exists."""
        if not self.acct_path or not os.path.isfile(self.acct_path):
            return
        seconds = (job.finished or time.time()) - (job.started or job.submitted)
        line = (f"{stamp(job.finished)} queue={self.queue} job={job.id}"
                f" user={visible(job.user)}"
                f" bytes={job.bytes_sent} pages={'-' if job.pages is None else job.pages}"
                f" seconds={seconds:.2f} outcome={outcome} attempts={job.attempts}"
                f" duplicate={'yes' if job.possible_duplicate else 'no'}"
                f" delivery={job.delivery or '-'}\n")
        try:
            fd = _open_record(self.acct_path, os.O_WRONLY | os.O_APPEND, spool=self.spool)
            try:
                os.write(fd, line.encode("utf-8", "replace"))
            finally:
                os.close(fd)
        except OSError as exc:
            self._trouble(self.acct_path, exc)
        else:
            self._trouble(self.acct_path, None)
