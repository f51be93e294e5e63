"""Reading a client's byte stream as a printer does: job data and ``@PJL`` lines, split
incrementally and with bounded memory (for the virtual printer; pure, no sockets)."""
from __future__ import annotations

import re
from typing import NamedTuple

from lpfilter.protocols.pjl import UEL

#: A PJL line longer than this is not PJL: it is dropped and the bytes count as data.
MAX_LINE = 4096
FF = b"\x0c"


class Piece(NamedTuple):
    kind: str  # "data", "pjl" or "overlong"
    line: str = ""
    size: int = 0
    form_feeds: int = 0


def _uel_prefix(data: bytes, pos: int, end: int) -> int:
    """How many bytes at the end of ``data[pos:end]`` could start a UEL."""
    for size in range(min(len(UEL) - 1, end - pos), 0, -1):
        if data.endswith(UEL[:size], pos, end):
            return size
    return 0


class PjlScanner:
    """Splits a client's bytes into job data and ``@PJL`` lines, incrementally.

    A UEL enters PJL; lines starting ``@PJL`` are commands; anything else, or after
    ``ENTER LANGUAGE``, is data again (printers switch languages implicitly). Memory stays
    bounded: a UEL split across reads is carried (< 9 bytes), an endless line is dropped.
    """

    def __init__(self) -> None:
        self.in_pjl = False
        self._carry = b""
        self._line = bytearray()

    def feed(self, data: bytes) -> list[Piece]:
        pieces: list[Piece] = []
        if self._carry:
            data, self._carry = self._carry + data, b""
        pos, end = 0, len(data)
        while pos < end:
            if not self.in_pjl:
                hit = data.find(UEL, pos)
                stop = hit if hit >= 0 else end - _uel_prefix(data, pos, end)
                if stop > pos:
                    pieces.append(Piece("data", "", stop - pos, data.count(FF, pos, stop)))
                if hit < 0:
                    self._carry = data[stop:]
                    break
                self.in_pjl, pos = True, hit + len(UEL)
                continue
            newline = data.find(b"\n", pos)
            stop = min(end if newline < 0 else newline, pos + MAX_LINE + 1 - len(self._line))
            self._line += data[pos:stop]
            complete = stop == newline
            if (not b"@PJL".startswith(bytes(self._line[:4]).upper())
                    or (complete and len(self._line.rstrip(b"\r")) < 4)):
                data = bytes(self._line) + data[stop:]  # not PJL: back to data
                pos, end, self.in_pjl = 0, len(data), False
                self._line.clear()
            elif complete:
                text = bytes(self._line).rstrip(b"\r").decode("ascii", "replace")
                self._line.clear()
                pieces.append(Piece("pjl", text))
                pos = newline + 1
                if re.match(r"@PJL\s+ENTER\b", text, re.I):
                    self.in_pjl = False
            elif len(self._line) > MAX_LINE:
                pieces.append(Piece("overlong", "", len(self._line)))
                self._line.clear()
                pos, self.in_pjl = stop, False
            else:
                pos = stop
        return pieces


