"""Linux inotify through ctypes: one file descriptor the watcher's selector can wait on.

An idle watcher sleeps in select() on this descriptor (and on the signal wake-up pipe),
so it costs no CPU, yet a file renamed into a spool directory wakes it at once.
"""
from __future__ import annotations

import errno
import os
import struct

from lpfilter.structs import FrozenStruct

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ctypes

IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
#: The watch is gone (its directory was deleted, or its file system unmounted).
IN_IGNORED = 0x00008000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_HEADER = struct.Struct("iIII")
setattr_ = object.__setattr__


class Event(FrozenStruct):
    __slots__ = _fields = ("watch", "mask", "name")
    watch: int
    mask: int
    name: str

    def __init__(self, watch: int, mask: int, name: str) -> None:
        setattr_(self, "watch", watch)
        setattr_(self, "mask", mask)
        setattr_(self, "name", name)


class Inotify:
    """An inotify instance; ``None`` from ``open`` where the kernel or libc lacks it."""

    def __init__(self, fd: int, libc: ctypes.CDLL) -> None:
        self.fd = fd
        self._libc = libc
        self.paths: dict[int, str] = {}

    @classmethod
    def open(cls) -> Inotify | None:
        """The C library's functions, found in the running program (``CDLL(None)``: the C
        library it is linked with), else by its usual name. ``ctypes.util.find_library``
        ran ``ldconfig -p`` and its import cost every ``watch`` ~5 ms at start; ``ctypes``
        is imported only here (``watch --once`` uses no inotify)."""
        import ctypes
        for name in (None, "libc.so.6"):
            try:
                libc = ctypes.CDLL(name, use_errno=True)
                fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
            except (OSError, AttributeError):
                continue
            return cls(fd, libc) if fd >= 0 else None
        return None

    def watch(self, path: str, mask: int) -> int:
        import ctypes  # (imported by open)
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), ctypes.c_uint32(mask))
        if wd < 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error), path)
        self.paths[wd] = path
        return int(wd)

    def unwatch(self, wd: int) -> None:
        self._libc.inotify_rm_watch(self.fd, wd)
        self.paths.pop(wd, None)

    def read(self) -> list[Event]:
        """The events waiting now (non-blocking; an empty list when there are none)."""
        try:
            data = os.read(self.fd, 65536)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EINTR):
                return []
            raise
        events: list[Event] = []
        offset = 0
        while offset + _HEADER.size <= len(data):
            wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
            offset += _HEADER.size
            raw = data[offset:offset + length].split(b"\0", 1)[0]
            offset += length
            events.append(Event(wd, mask, os.fsdecode(raw)))
        return events

    def close(self) -> None:
        os.close(self.fd)
