"""A job being received, on disk: all its data files in ONE staged file of the store.

A job may have up to 52 data files and a connection may stay open for a long time before
its control file names them all; one open file per data file would let a few slow
clients exhaust the daemon's descriptors (which the workers share). So the data files
of one job are appended to one staged file, each remembered by its offset and size, and
the job holds one descriptor (locked, so that orphan recovery leaves it alone) until it
is committed or dropped.

The job's data as queued is its files in print-line order: when they came in that order
and all ask for the same copies, the staged file is the job as it is; otherwise the
ranges are copied out into a second staged file, once per copy when the files' copies
differ (the job then has one copy). That expansion is computed before a byte is copied
and refused past the queue's ``mx``, the spool's free space, or ASSEMBLED_MAX.

A small job (at most jobdata.INLINE_MAX in all, every data file's size announced, a queue
that may keep bytes in its journal) is received into a memory file instead: it makes no
file in tmp/ and goes into the journal with its record (spool/jobdata.py says why). A data
file that takes it past that moves it into a staged file first (``spill``).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

from lpfilter.safefiles import CHUNK, copy_fd
from lpfilter.spool.jobdata import INLINE_MAX, new_memory_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.protocols.lpdcontrol import ControlFields
    from lpfilter.spool.store import SpoolStore

#: The largest job written out from files whose copies differ (print lines dfA dfA dfB):
#: a client asking 999 copies of one file must not make a small upload a huge one. A
#: client with jobs larger than this sends equal copies (LPRng, BSD and CUPS all do),
#: and such a job is kept as it came, its copies counted by the printer path.
ASSEMBLED_MAX = 256 << 20


class TooBig(Exception):
    """The job written out would pass a limit; the reason is for the client."""


@dataclass
class Part:
    """One data file of the job: where it lies in the staged file."""

    offset: int
    size: int = 0


@dataclass
class Staged:
    """The data files received so far for the job the connection is sending now."""

    job_id: str = ""
    fd: int = -1
    #: The staged file; "" while the job is held in a memory file.
    path: str = ""
    parts: dict[str, Part] = field(default_factory=dict)

    def size(self) -> int:
        return sum(part.size for part in self.parts.values())

    def open(self, store: SpoolStore, *, small: bool = False) -> None:
        """The job's staged file, made with its first data file; a memory file while the
        job is ``small`` (the caller knows its files' sizes and the queue's rules), moved
        into a staged file when a file makes it big."""
        if not self.job_id:
            self.job_id = store.next_id()
        if self.fd < 0:
            if small:
                self.fd = new_memory_file(f"lpfilter-job-{self.job_id}")
            else:
                self.fd, self.path = store.stage(f"{self.job_id}-r")
        elif not small and not self.path:
            self.spill(store)

    def spill(self, store: SpoolStore) -> None:
        """The memory file's bytes into a staged file, which the job uses from now on."""
        fd, path = store.stage(f"{self.job_id}-r")
        try:
            os.lseek(self.fd, 0, os.SEEK_SET)
            copy_fd(self.fd, fd)
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise
        os.close(self.fd)
        self.fd, self.path = fd, path

    def discard(self) -> None:
        """Close and remove the staged file (one already committed is gone: fine)."""
        if self.fd >= 0:
            os.close(self.fd)
            if self.path:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
        self.fd, self.path, self.job_id = -1, "", ""
        self.parts.clear()


def fits_in_memory(staged: Staged, size: int, room: int) -> bool:
    """May the next data file, of ``size`` bytes (0: to the end), keep the job in memory
    (``room``: what the journal may still take, 0 for a queue that keeps files)?"""
    total = staged.size() + size
    return size > 0 and total <= min(INLINE_MAX, room) and (staged.fd < 0 or not staged.path)


def assemble(store: SpoolStore, staged: Staged, fields: ControlFields,
             limit: int | None) -> tuple[int, str, int, int]:
    """The job's data as one staged file: (fd, path, size, copies; path "" for a memory
    file). Its size is known and checked before a byte is copied: differing copies are
    written out (the job's ticket has one copies count), and 999 of them must not fill
    the disk (TooBig)."""
    total, expand = assembled_size(staged, fields)
    as_it_came = not expand and in_order(staged, fields)
    check_assembled(store, total, limit, expand=expand, copy=not as_it_came)
    copies = 1 if expand else fields.files[0].copies
    if as_it_came:
        return staged.fd, staged.path, total, copies
    if not staged.path and total <= INLINE_MAX:
        fd, path = new_memory_file(f"lpfilter-job-{staged.job_id}"), ""
    else:
        with store.room():
            fd, path = store.stage(f"{staged.job_id}-all")
    try:
        with store.room():
            for data in fields.files:
                part = staged.parts[data.name]
                for _ in range(data.copies if expand else 1):
                    copy_range(staged.fd, fd, part.offset, part.size)
    except BaseException:
        os.close(fd)
        if path:
            os.unlink(path)
        raise
    return fd, path, total, copies


def assembled_size(staged: Staged, fields: ControlFields) -> tuple[int, bool]:
    """The size of the job as queued, and whether each file's copies are written out."""
    same = len({f.copies for f in fields.files}) == 1
    return sum(staged.parts[f.name].size * (1 if same else f.copies)
               for f in fields.files), not same


def check_assembled(store: SpoolStore, total: int, limit: int | None, *,
                    expand: bool, copy: bool) -> None:
    """TooBig when the job would pass mx; when its copies are written out (``expand``),
    past ASSEMBLED_MAX; when it is copied at all (``copy``), past the free space. A job
    taken as it came (one file, or files in print-line order) is never held to
    ASSEMBLED_MAX: its bytes are on disk already and multiply nothing."""
    if limit is not None and total > limit:
        raise TooBig(f"the job's copies would be {total} bytes, larger than the queue's"
                     f" limit of {limit // 1024} KiB (mx)")
    if not copy:
        return
    if expand and total > ASSEMBLED_MAX:
        raise TooBig(f"the job's copies would be {total} bytes, more than the"
                     f" {ASSEMBLED_MAX} a server writes out; send the same copies for"
                     " every file")
    with contextlib.suppress(OSError):
        info = os.statvfs(store.tmp_dir)
        if total > info.f_bavail * info.f_frsize:
            raise TooBig(f"the job's copies would be {total} bytes: more than is free in"
                         " the spool")


def in_order(staged: Staged, fields: ControlFields) -> bool:
    """The staged file is already the job: the files came in print-line order."""
    offset = 0
    for data in fields.files:
        part = staged.parts[data.name]
        if part.offset != offset:
            return False
        offset += part.size
    return offset == os.fstat(staged.fd).st_size


def copy_range(src: int, dst: int, offset: int, size: int) -> None:
    """``size`` bytes of ``src`` from ``offset`` appended to ``dst``, in bounded chunks
    (in the kernel where it can)."""
    end = offset + size
    while offset < end:
        want = min(CHUNK, end - offset)
        try:
            done = os.copy_file_range(src, dst, want, offset)
        except OSError:
            done = 0
        if done <= 0:
            chunk = os.pread(src, want, offset)
            if not chunk:
                raise OSError(f"the staged file ended {end - offset} bytes early")
            os.write(dst, chunk)
            done = len(chunk)
        offset += done
