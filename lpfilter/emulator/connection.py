"""One client of the virtual printer: read (at a rate, up to a limit), store the bytes,
parse PJL, answer on the same connection, misbehave as told, close. Split from
``jetdirect`` (which listens and accepts) to keep each module to one job."""
from __future__ import annotations

import dataclasses
import os
import re
import select
import socket
import struct
import time

from lpfilter.emulator.shared import TICK, Host, JobRecord
from lpfilter.protocols.pjlstream import PjlScanner

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

CHUNK = 256 * 1024
#: Replies a client leaves unread: past this the printer stops reading too (as real ones do).
OUT_LIMIT = 256 * 1024
FF = b"\x0c"
_RDHUP = getattr(select, "POLLRDHUP", 0)
_GONE = select.POLLHUP | select.POLLERR | select.POLLNVAL
_NAME = re.compile(r'\bNAME\s*=\s*"([^"]*)"', re.I)
_USTATUS = re.compile(r"\b(JOB|DEVICE|PAGE)\s*=\s*(\w+)", re.I)


class Connection:
    """One client: read (at a rate, up to a limit), store, parse PJL, answer, close."""

    def __init__(self, printer: Host, conn: socket.socket, sink: BinaryIO | None,
                 record: JobRecord) -> None:
        self.printer, self.conn, self.sink, self.record = printer, conn, sink, record
        self.b = dataclasses.replace(printer.behaviour)
        self.scanner = PjlScanner()
        self.out = bytearray()
        self.later: list[tuple[float, bytes]] = []
        self.ustatus: set[str] = set()
        self.job_name: str | None = None
        self.data_bytes = self.form_feeds = 0
        self.eof = False
        self.garbage_left = self.b.garbage_limit if self.b.garbage else 0
        self.started = self.last = time.monotonic()

    def run(self) -> str:
        """Serve the connection; returns why it ended."""
        b, conn = self.b, self.conn
        if b.reset_after == 0 or b.close_after == 0:
            return self._limit_reached()
        conn.setblocking(False)
        poller = select.poll()
        poller.register(conn, 0)
        while True:
            if self.printer.stopping():
                return "the printer was stopped"
            now = time.monotonic()
            while self.later and self.later[0][0] <= now:
                self.out += self.later.pop(0)[1]
            if self.eof and not self.out and not self.later:
                return "closed after the client's EOF"
            if 0 < self.printer.idle_timeout < now - self.last:
                return f"idle for {self.printer.idle_timeout:g} s"
            mask, timeout = self._interest(now)
            poller.modify(conn, mask)
            for _fd, happened in poller.poll(timeout * 1000):
                ended = self._write() if happened & select.POLLOUT else None
                if ended is None and mask & select.POLLIN and happened & (select.POLLIN | _GONE):
                    ended = self._read()
                elif ended is None and happened & (_GONE | _RDHUP):
                    ended = "the client closed or reset the connection"
                if ended is not None:
                    return ended

    def _budget(self, now: float) -> int:
        rate = self.b.slow or 0
        return int(rate * (now - self.started)) + min(rate, 4096) - self.record.size

    def _interest(self, now: float) -> tuple[int, float]:
        mask, timeout = 0, TICK
        if self.b.stall:
            mask |= _RDHUP
        elif not self.eof and len(self.out) < OUT_LIMIT and len(self.later) < 1000:
            budget = self._budget(now) if self.b.slow else 1
            if budget > 0:
                mask |= select.POLLIN
            else:
                timeout = min(timeout, (1 - budget) / (self.b.slow or 1))
        if self.out or (self.garbage_left and not self.eof):
            mask |= select.POLLOUT
        if self.later:
            timeout = min(timeout, max(0.0, self.later[0][0] - now))
        return mask, timeout

    def _read(self) -> str | None:
        want = CHUNK
        if self.b.slow:
            want = min(want, max(1, self._budget(time.monotonic())))
        limit = self.b.reset_after if self.b.reset_after is not None else self.b.close_after
        if limit is not None:
            want = min(want, limit - self.record.size)
        try:
            data = self.conn.recv(want)
        except BlockingIOError:
            return None
        except OSError as exc:
            return f"the client reset the connection ({exc.strerror})"
        if not data:
            return self._end_of_input()
        self.record.size += len(data)
        self.last = time.monotonic()
        if self.sink is not None:
            self.sink.write(data)
        for piece in self.scanner.feed(data):
            if piece.kind == "data":
                self.data_bytes += piece.size
                self.form_feeds += piece.form_feeds
            elif piece.kind == "overlong":
                self.printer.note(self.record.number, "overlong", f"{piece.size} bytes")
            else:
                self._command(piece.line)
        if limit is not None and self.record.size >= limit:
            return self._limit_reached()
        return None

    def _limit_reached(self) -> str:
        if self.b.reset_after is not None and self.record.size >= self.b.reset_after:
            self.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return f"reset after {self.record.size} bytes"
        return f"closed after {self.record.size} bytes"

    def _end_of_input(self) -> str | None:
        self.eof = True
        self._print_segment(job=False)
        self.printer.note(self.record.number, "eof", f"{self.record.size} bytes")
        if self.b.close_on_half_close:
            pending = len(self.out) + sum(len(r) for _, r in self.later)
            self.printer.note(self.record.number, "dropped", f"{pending} bytes")
            return "closed at the client's half-close"
        return None

    def _write(self) -> str | None:
        if not self.out and self.garbage_left and not self.eof:
            size = min(4096, self.garbage_left)
            self.garbage_left -= size
            self.out += os.urandom(size).translate(_GARBAGE)
        try:
            sent = self.conn.send(self.out)
        except BlockingIOError:
            return None
        except OSError as exc:
            return f"the client went away before the replies ({exc.strerror})"
        del self.out[:sent]
        self.last = time.monotonic()
        return None

    # --- PJL --------------------------------------------------------------------------
    def _reply(self, *lines: str, delay: float = 0.0) -> None:
        data = "\r\n".join(lines).encode("ascii", "replace") + b"\r\n" + FF
        self.printer.note(self.record.number, "reply", " | ".join(lines))
        if delay > 0:
            self.later.append((time.monotonic() + delay, data))
        else:
            self.out += data

    def _print_segment(self, *, job: bool) -> int:
        """The data since the last JOB or EOJ is printed: count its pages."""
        if not self.data_bytes and not job:
            return 0
        pages = 0
        if self.data_bytes:
            pages = self.b.pages if self.b.pages is not None else max(1, self.form_feeds)
        self.data_bytes = self.form_feeds = 0
        self.record.pages += pages
        with self.printer._cond:
            self.printer.pagecount += pages
        return pages

    def _device(self, code: int, display: str) -> None:
        if "DEVICE" in self.ustatus:
            self._reply("@PJL USTATUS DEVICE", f"CODE={code}", f'DISPLAY="{display}"',
                        "ONLINE=TRUE")

    def _command(self, line: str) -> None:
        self.printer.note(self.record.number, "pjl", line)
        words = line[4:].strip()
        upper = words.upper().split()
        verb = upper[0] if upper else ""
        name = _NAME.search(words)
        if verb == "ECHO":
            self._reply(f"@PJL ECHO {words[4:].strip()}".rstrip())
        elif verb == "INFO":
            what = upper[1] if len(upper) > 1 else ""
            answers = {"PAGECOUNT": [f"PAGECOUNT={self.printer.pagecount}"],
                       "STATUS": ["CODE=10001", 'DISPLAY="Ready"', "ONLINE=TRUE"],
                       "ID": [f'"{self.printer.model}"']}.get(what, ['"?"'])
            self._reply(f"@PJL INFO {what}", *answers)
        elif verb == "USTATUSOFF":
            self.ustatus.clear()
        elif verb == "USTATUS":
            for kind, value in _USTATUS.findall(words):
                if value.upper() in ("ON", "VERBOSE"):
                    if kind.upper() == "JOB" and "JOB" not in self.ustatus and \
                            self.job_name is not None:
                        self._reply("@PJL USTATUS JOB", "START", f'NAME="{self.job_name}"')
                    self.ustatus.add(kind.upper())
                else:
                    self.ustatus.discard(kind.upper())
        elif verb == "JOB":
            self._print_segment(job=False)
            self.job_name = name.group(1) if name else ""
            if len(self.record.names) < 100:
                self.record.names.append(self.job_name)
            if "JOB" in self.ustatus:
                self._reply("@PJL USTATUS JOB", "START", f'NAME="{self.job_name}"')
            self._device(10023, "Printing")
        elif verb == "EOJ":
            pages = self._print_segment(job=True)
            ended = name.group(1) if name else self.job_name or ""
            self.job_name = None
            if "JOB" in self.ustatus and not self.b.no_end:
                self._reply("@PJL USTATUS JOB", "END", f'NAME="{ended}"', f"PAGES={pages}",
                            delay=self.b.end_delay)
            self._device(10001, "Ready")


#: Garbage is random bytes without a form feed or '@', so it never looks like a reply.
_GARBAGE = bytes.maketrans(b"\x0c@", b"\x0bA")
