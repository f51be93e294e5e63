"""LPRng's filter exit codes (lprng-filters.md §5), defined and decoded in one place.

A filter, an ``lp=|program`` or a ``send_failure_action`` program tells LPRng what to do with
the job by its exit status. LPRng accepts each code plain (1-31) or already shifted by 31
(32-47, as its own filters return them); anything else, or death by a signal, aborts the job.
``lpfilter filter`` returns these codes to lpd; the pipe backend and the spool read them.
"""
from __future__ import annotations

from lpfilter.enums import IntEnum
from lpfilter.errors import HoldJob, JobRefused, LpfilterError, RemoveJob, TransientError

#: LPRng's shift: a filter may return JFAIL as 1 or as 32.
_SHIFT = 31


class FilterCode(IntEnum):
    """What the exit status of a filter or program asks for (the plain, unshifted value)."""

    JSUCC = 0          # done
    JFAIL = 1          # failed: try again later
    JABORT = 2         # failed: stop (keep the job, do not retry)
    JREMOVE = 3        # remove the job without printing it
    JHOLD = 6          # hold the job until someone releases it
    JFAILNORETRY = 10  # failed, no retry
    JTIMEOUT = 12      # timed out: try again later, as JFAIL


def decode(status: int) -> FilterCode:
    """The code an exit status means: plain or shifted by 31; a signal (negative status, as
    ``subprocess`` reports one) or any other number is JABORT."""
    if status == 0:
        return FilterCode.JSUCC
    plain = status - _SHIFT if _SHIFT < status <= 2 * _SHIFT else status
    try:
        return FilterCode(plain) if plain > 0 else FilterCode.JABORT
    except ValueError:
        return FilterCode.JABORT


def describe(code: FilterCode) -> str:
    """A few words for a message: what the program asked lpfilter to do."""
    return {FilterCode.JSUCC: "done", FilterCode.JFAIL: "try again later",
            FilterCode.JTIMEOUT: "try again later", FilterCode.JREMOVE: "remove the job",
            FilterCode.JHOLD: "hold the job", FilterCode.JFAILNORETRY: "failed, no retry",
            FilterCode.JABORT: "abort the job"}[code]


def error_class(code: FilterCode) -> type[LpfilterError]:
    """The error a code raises for its job: JFAIL and JTIMEOUT retry (transient), JREMOVE
    removes, JHOLD holds; JABORT, JFAILNORETRY and the rest fail it (JobRefused)."""
    return {FilterCode.JFAIL: TransientError, FilterCode.JTIMEOUT: TransientError,
            FilterCode.JREMOVE: RemoveJob, FilterCode.JHOLD: HoldJob}.get(code, JobRefused)
