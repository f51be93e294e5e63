"""One queue's journal: an append-only file of records, made durable by group commit.

Why a journal (issue 16; bench/JOURNAL-DESIGN.md): on this disk every durable step costs
a device flush, 0.15-0.55 ms, whatever it writes, and an unsynced ticket rewrite 120-170 us
(ext4 starts writeback at a rename over a file): a job as ticket files made 4-7 flushes.
Records appended to one file cost a ``write`` each, and one fdatasync makes every record
appended so far durable (~3 us a record at 64 a batch, bench/journal_ops_bench.py). Under
``SpoolStore`` (phase 1): a hot-folder job 7 flushes -> 2, 172 -> 326 jobs/s (bench/README.md).

Two levels of written: ``append`` puts records in the page cache, which is the file for
every process until the kernel stops (they survive SIGKILL of anyone); ``sync_to`` makes
them durable (one thread fdatasyncs for all the threads waiting; other processes'
fdatasyncs join the kernel's own commit). Records are framed by ``journalformat``.

A writer killed in the middle of a ``write`` (or a power cut) leaves a torn tail: readers
stop at the first record that does not check; the next appender, holding the lock, cuts it
off (nobody was told of what it held: that is said only after a commit). Bytes that do
not check followed by a good record, or by more than one batch, are not a torn write:
JournalDamaged, one line naming the file, and nothing is cut.

Safety (design §2.7): the journal and its lock live in the owner's private state folder;
they are created with O_EXCL|O_NOFOLLOW and given to the owner, opened without following a
link and without blocking, and checked on the descriptor (a regular file of the owner with
one link), so root never reads or appends to a file the owner planted there. A process
that may not write the folder opens the journal read-only and creates nothing.
"""
from __future__ import annotations

import _thread
import fcntl
import os

from lpfilter import logs
from lpfilter.errors import AccessError
from lpfilter.safefiles import UnsafeFile, fsync_dir, same_file
from lpfilter.spool.groupsync import GroupSync
from lpfilter.spool.journalfile import SAFE_FLAGS, Held, open_fresh, open_owned, take_lock
from lpfilter.spool.journalformat import (BATCH_MAX, JOURNAL, JOURNAL_MAX, LSN_MAX,
                                          RECORD_MAX, JournalDamaged, Kind, Record, boot_id,
                                          decode, encode, encode_all, first_lsn, good_after)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["BATCH_MAX", "JOURNAL", "JOURNAL_MAX", "Journal", "JournalDamaged", "Kind", "Record",
           "boot_id", "decode", "encode", "open_owned"]

log = logs.getLogger(__name__)

_OPEN = os.O_RDWR | os.O_APPEND | SAFE_FLAGS
_READ_ONLY = os.O_RDONLY | SAFE_FLAGS


class Journal:
    """One queue's journal, open for reading (and, when ``writable``, appending).

    ``locked()`` makes this process the only appender (flock on ``journal.lock``, and a
    re-entrant thread lock) and catches up first: ``on_record`` is called with every record
    other processes appended since (``on_records``, if given, with all one read gives).
    ``append`` writes a batch in one ``write`` (the records then survive SIGKILL);
    ``sync_to`` makes them durable (group commit)."""

    #: The store's one line for an OSError met taking the lock (the folder removed, or
    #: made unwritable, since the journal was opened); None: that error itself.
    gone: Callable[[OSError], BaseException | None] | None = None

    def __init__(self, folder: str, owner: int, on_record: Callable[[Record], None] | None = None,
                 on_reset: Callable[[], None] | None = None, *, writable: bool = True,
                 queue: str = "", on_records: Callable[[list[Record]], None] | None = None) -> None:
        self.folder = folder
        #: The queue it is (its refusals start "queue Q: ", as the spool's other errors).
        self.queue = queue
        self.path = os.path.join(folder, JOURNAL)
        self.owner = owner
        self.writable = writable
        self.on_record = on_record or (lambda record: None)
        self.on_records = on_records or (lambda records: [*map(self.on_record, records)])
        #: Called before a compacted journal is read from its start (forget what you had).
        self.on_reset = on_reset or (lambda: None)
        self.fd = self._open()
        self._lock_fd = -1
        if writable:
            try:
                self._lock_fd = open_owned(self.path + ".lock", self.owner,
                                           os.O_RDWR | SAFE_FLAGS)
            except BaseException:
                os.close(self.fd)
                raise
        #: Held while records are read or appended: hold it to look at what they made.
        self.threads = _thread.RLock()
        #: How far the file is durable; one fdatasync for all the threads (groupsync.py).
        self._group = GroupSync()
        self._base = 0  # the LSN of the file's first byte
        self._read_at = 0  # how far the file is read (an offset in it)
        self._end = 0  # the LSN after the last whole record read
        self._stamp = (-1, 0)  # the file's size and mtime at the last look
        #: A whole record read: its offset and first 16 bytes (length, CRC, LSN; _rewritten).
        self._last: tuple[int, bytes] | None = None
        self._named: tuple[int, int, int] | None = None  # see _replaced
        self.holding = False
        self.catch_up()

    def _open(self) -> int:
        if self.writable:
            return open_owned(self.path, self.owner, _OPEN)
        return open_owned(self.path, self.owner, _READ_ONLY, create=False)

    def close(self) -> None:
        with self._group.paused():  # a flush under way ends first: its number is not reused
            for fd in (self.fd, self._lock_fd):
                if fd >= 0:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self.fd = self._lock_fd = -1

    # --- reading ------------------------------------------------------------------------
    def catch_up(self, *, cut: bool = False, info: os.stat_result | None = None) -> None:
        """Read the records appended since the last look (an fstat, or ``info``, says if
        any); a torn tail is cut off when ``cut`` (only under the lock), else left. One
        thread at a time (``threads``): the records go to ``on_record`` in order."""
        with self.threads:
            if self.holding and not cut and info is None:
                return  # this thread holds the lock: no record came since it caught up
            info = info or os.fstat(self.fd)
            self._read(info, cut=cut)
            if self._replaced(info, sure=cut):  # compacted by another (or removed): read the
                try:  # new one
                    self._reopen(held=cut or self.holding)
                except FileNotFoundError:
                    if self.writable or not os.path.isdir(self.folder):
                        raise  # the spool removed: the store's one line for that
                    self._moved_aside(info)
                    return
                except UnsafeFile as exc:  # something planted in its place
                    raise AccessError(f"{self._queue_words()}{exc.reason}; not used: remove"
                                      " it (lpfilter makes a new one; the data files in jobs/"
                                      " no record names are taken in again as jobs)",
                                      queue=self.queue) from None
                self._read(os.fstat(self.fd), cut=cut)

    def _read(self, info: os.stat_result, *, cut: bool) -> None:
        size = info.st_size
        stamp = (size, info.st_mtime_ns)
        if stamp == self._stamp and not cut:
            return  # nothing appended (or the same torn tail) since the last look
        if size > JOURNAL_MAX:
            raise self._damaged(f"{size} bytes, more than a journal may be ({JOURNAL_MAX});"
                                " move it aside (the data files in jobs/ are then taken in"
                                " again as jobs)")
        self._stamp = stamp
        if size < self._read_at:
            self._shrank(size)
        while self._read_at < size:
            at = self._read_at
            data = os.pread(self.fd, min(size - self._read_at, BATCH_MAX + RECORD_MAX),
                            self._read_at)
            if self._read_at == 0:
                self._base = first_lsn(data)
                if self._base > LSN_MAX:
                    raise self._damaged(
                        f"its first record claims position {self._base}, past what a journal"
                        f" reaches ({LSN_MAX}); not written by lpfilter: move it aside (the"
                        " data files in jobs/ are then taken in again as jobs)")
            records, end = decode(data, self._base + self._read_at)
            if not records and self._rewritten():
                self._shrank(size)  # (read from its start: the loop goes on from 0)
                continue
            self.on_records(records)
            self._end = end
            self._read_at = end - self._base
            if not records:
                self._torn(data, size, cut=cut)
                return
            last = records[-1].lsn - self._base
            self._last = (last, data[last - at:last - at + 16])

    def _rewritten(self) -> bool:
        """Is a record this process read gone from its place (asked where no record follows)?"""
        try:
            return self._last is not None and os.pread(self.fd, 16, self._last[0]) != self._last[1]
        except OSError:
            return False

    def _shrank(self, size: int) -> None:
        """The file lost what this process had read (cut by hand, maybe written again; ours
        cut only torn tails, never read past): read it all again, not cut at the old offset
        (records written since would go), and sync anew what is appended from now on."""
        log.warning("%s%s: cut under this process (by another program?) below the %d bytes"
                    " it had read: read again from its start", self._queue_words(),
                    self.path, self._read_at)
        with self._group.paused():
            self._group.synced = min(self._group.synced, self._base + size)
        self.on_reset()
        self._read_at, self._last = 0, None

    def _moved_aside(self, info: os.stat_result) -> None:
        """A reader's journal moved aside, none made yet: no records now; a new one is read
        from its start when it comes."""
        self.on_reset()
        self._read_at, self._stamp = info.st_size, (info.st_size, info.st_mtime_ns)

    def _queue_words(self) -> str:
        return f"queue {self.queue}: " if self.queue else ""

    def _damaged(self, what: str) -> JournalDamaged:
        """The one line refusing the journal: the queue, the file, what is wrong with it."""
        return JournalDamaged(f"{self._queue_words()}{self.path}: {what}", queue=self.queue)

    def _replaced(self, info: os.stat_result, *, sure: bool = False) -> bool:
        """Is the journal's name another file now than the one this process has open, or
        no file (an administrator removed the spool's state folder, or the journal: a
        long-lived store must not go on appending to a file no name reaches)? A rename or
        unlink changes ctime or links, as an append does: as they were when the name was
        last found here, a read (not ``sure``) needs no lstat (~17 a job in a worker)."""
        seen = (info.st_ino, info.st_ctime_ns, info.st_nlink)
        if seen == self._named and not sure:
            return False
        try:
            replaced = os.lstat(self.path).st_ino != info.st_ino
        except FileNotFoundError:
            return True
        self._named = None if replaced else seen
        return replaced

    def _reopen(self, *, held: bool = False) -> None:
        """Open the journal's name again (a writer makes a new journal where the old one
        was removed; a reader, or a writer whose folder is gone, gets FileNotFoundError:
        the spool removed). A writer's lock is the lock file's name now too (``held``:
        the old one is held, so the new one is taken before the old one goes)."""
        fd = self._open()
        lock_fd = -1
        try:
            if self.writable and not same_file(self._lock_fd, self.path + ".lock"):
                lock_fd = open_owned(self.path + ".lock", self.owner, os.O_RDWR | SAFE_FLAGS)
                if held:
                    take_lock(lock_fd, self.path + ".lock", queue=self.queue)
        except BaseException:
            os.close(fd)
            if lock_fd >= 0:
                os.close(lock_fd)
            raise
        with self._group.paused():
            os.close(self.fd)
            self.fd, self._read_at, self._stamp = fd, 0, (-1, 0)
            if lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = lock_fd
        if self.writable and self._end:
            self._go_on(held=held)
        self.on_reset()

    def _go_on(self, *, held: bool) -> None:
        """A new, empty journal made where one was removed: it begins with a HEAD at this
        process's end, so its LSNs go on (never back: a ``sync_to`` of an LSN already
        synced in the removed file must not pass over a record of the new one, and every
        reader takes the HEAD's LSN as the file's first byte's)."""
        if not held:
            take_lock(self._lock_fd, self.path + ".lock", queue=self.queue)
        try:
            if os.fstat(self.fd).st_size == 0:  # nobody appended to it yet
                data, _ = encode_all(self._end, [(Kind.HEAD, b"{}")])
                view = memoryview(data)
                while view:
                    view = view[os.write(self.fd, view):]
        finally:
            if not held:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _torn(self, data: bytes, size: int, *, cut: bool) -> None:
        """Bytes at the end that are no whole record: a torn write, cut off (by an
        appender) if it can be one; else the journal is damaged (nothing cut)."""
        left = size - self._read_at
        good = None if left > BATCH_MAX else good_after(data, self._end)
        if left > BATCH_MAX or good is not None:
            where = "followed by good records" if good is not None else "more than a write"
            raise self._damaged(
                f"damaged at offset {self._read_at} ({left} bytes that are no records,"
                f" {where}); nothing was changed: restore it, or move it aside (the data"
                " files in jobs/ are then taken in again as jobs)")
        if cut:
            log.warning("%s: cut a torn tail of %d bytes at offset %d (a writer stopped"
                        " while appending; nobody had been told of it)", self.path,
                        left, self._read_at)
            os.ftruncate(self.fd, self._read_at)
            self._stamp = (-1, 0)

    # --- appending ----------------------------------------------------------------------
    def locked(self) -> Held:
        """Hold while deciding and appending, so two appenders never interleave; a thread
        already holding it holds it again (the outermost hold takes and lets go)."""
        return Held(self)

    def append(self, records: list[tuple[int, bytes]]) -> int:
        """Write ``(kind, payload)`` records in one write (under ``locked``); this process
        takes them in too. Returns the journal's end after them, for ``sync_to``."""
        if not self.holding:
            raise RuntimeError("Journal.append outside Journal.locked()")
        data, at = encode_all(start := self._end, records)
        if len(data) > BATCH_MAX:
            raise ValueError(f"a journal batch of {len(data)} bytes: more than {BATCH_MAX}")
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except BaseException:
            if os.fstat(self.fd).st_size > self._read_at:  # (a truncate is an inotify event)
                os.ftruncate(self.fd, self._read_at)  # nothing half-written stays behind
                self._stamp = (-1, 0)
            raise
        info = os.fstat(self.fd)
        if self._read_at and info.st_size == self._read_at + len(data):  # only ours
            self._take_own(start, records, info)
            self._last = (start - self._base, bytes(data[:16]))  # the batch's first record
        else:
            self.catch_up(info=info)
        return at

    def _take_own(self, lsn: int, records: list[tuple[int, bytes]], info: os.stat_result) -> None:
        """Records this appender just wrote, nothing else appended: to ``on_record`` as a
        read gives them, not read back (design §7: ~15% of the worker's time)."""
        for kind, payload in records:
            record = Record(lsn, kind, bytes(payload))
            self.on_record(record)
            lsn = record.end
        self._end, self._read_at = lsn, lsn - self._base
        self._stamp = (info.st_size, info.st_mtime_ns)
        self._named = (info.st_ino, info.st_ctime_ns, info.st_nlink)  # found by locked()

    def append_all(self, records: list[tuple[int, bytes]]) -> int:
        """Any number of records, in writes of at most half a batch each (under ``locked``);
        returns the journal's end after them."""
        end = self._end
        while records:
            size, count = 0, 0
            while count < len(records) and size + len(records[count][1]) < BATCH_MAX // 2:
                size, count = size + len(records[count][1]) + 32, count + 1
            end = self.append(records[:max(count, 1)])
            records = records[max(count, 1):]
        return end

    def compact(self, records: list[tuple[int, bytes]], head: bytes = b"") -> None:
        """Replace the journal (under ``locked``) by a HEAD (``head``: what the replay must
        not forget, the last job number) and ``records``, the live state the caller's
        replay made: written to a new file of the owner's (O_EXCL, never a name someone
        planted), synced, renamed over the journal, the folder synced. LSNs go on from
        the old end, so a ``sync_to`` of an older LSN is already satisfied; this process
        replays the new file at once, others at their next catch-up."""
        if not self.holding:
            raise RuntimeError("Journal.compact outside Journal.locked()")
        path = self.path + ".next"
        fd = open_fresh(path, self.owner, _OPEN, queue=self.queue)
        try:
            data, at = encode_all(self._end, [(Kind.HEAD, head)] + records)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fdatasync(fd)
            os.rename(path, self.path)
            fsync_dir(self.folder)
        except BaseException:
            os.close(fd)
            try:  # on a full disk it holds the free space
                os.unlink(path)  # (after the rename: no such name, nothing removed)
            except OSError:
                pass
            raise
        with self._group.paused():
            os.close(self.fd)
            self.fd, self._read_at, self._stamp = fd, 0, (-1, 0)
            self._group.synced = max(self._group.synced, at)
        self.on_reset()  # this process reads the new file too: one state for all
        self._read(os.fstat(self.fd), cut=False)

    def sync_to(self, end: int) -> None:
        """Return once everything up to ``end`` is durable: one thread fdatasyncs for all
        the records appended so far, the others wait for it (group commit)."""
        self._group.sync_to(end, self._flush)

    def _flush(self) -> int:
        """One fdatasync: what was appended when it began is durable after it."""
        target = self._end
        os.fdatasync(self.fd)
        return target

    @property
    def end(self) -> int:
        return self._end

    @property
    def synced(self) -> int:
        return self._group.synced

    @property
    def size(self) -> int:
        """The bytes of the journal read so far (what compaction weighs)."""
        return self._read_at
