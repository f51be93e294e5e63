"""What a filter's exit status does to its job (lprng-filters.md §5), as lpfilter's errors.

Statuses 1-31 are LPRng's codes shifted by 31; death by a signal is JSIGNAL, handled like
JABORT. The decoding is ``lpfilter.filtercodes``'s, shared with ``lp=|`` programs.
"""
from __future__ import annotations

from lpfilter.errors import LpfilterError
from lpfilter.filtercodes import decode, error_class

#: LPRng's names of the shifted codes (include/errorcodes.h), for messages.
NAMES = {32: "JFAIL", 33: "JABORT", 34: "JREMOVE", 37: "JHOLD", 38: "JNOSPOOL",
         39: "JNOPRINT", 40: "JSIGNAL", 41: "JFAILNORETRY", 42: "JSUSP", 43: "JTIMEOUT",
         44: "JWRERR", 45: "JRDERR", 46: "JCHILD", 47: "JNOWAIT"}


def code_name(status: int) -> str:
    """LPRng's name for a status as lpd reads it (after the shift), or what it counts as."""
    if status < 0:
        return "JSIGNAL"
    shifted = status + 31 if 0 < status <= 31 else status
    return NAMES.get(shifted, "unknown, as JABORT")


def exit_error(status: int, *, key: str, program: str, detail: str) -> LpfilterError | None:
    """The error a filter's exit ``status`` (as subprocess gives it: negative for a
    signal) means for its job, None for success: JFAIL and JTIMEOUT retry
    (TransientError), JREMOVE removes, JHOLD holds, anything else fails the job."""
    if status == 0:
        return None
    said = f": {detail}" if detail else ""
    how = f"was killed by signal {-status}" if status < 0 else f"exited {status}"
    error = error_class(decode(status))
    return error(f"{key} filter {program} {how} ({code_name(status)}){said}")
