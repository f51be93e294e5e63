"""LPRng's filter exit codes (lprng-filters.md §5), decoded in one place for the pipe backend,
the spool's send_failure_action (test_spool_units.py) and ``lpfilter filter``."""
from __future__ import annotations

import pytest

from lpfilter.filtercodes import FilterCode, decode, describe


@pytest.mark.parametrize(("status", "code"), [
    (0, FilterCode.JSUCC), (1, FilterCode.JFAIL), (32, FilterCode.JFAIL),
    (2, FilterCode.JABORT), (33, FilterCode.JABORT), (3, FilterCode.JREMOVE),
    (34, FilterCode.JREMOVE), (6, FilterCode.JHOLD), (37, FilterCode.JHOLD),
    (10, FilterCode.JFAILNORETRY), (41, FilterCode.JFAILNORETRY), (12, FilterCode.JTIMEOUT),
    (43, FilterCode.JTIMEOUT),
    # Codes LPRng does not define, numbers past the shifted range and signals: abort.
    (4, FilterCode.JABORT), (9, FilterCode.JABORT), (31, FilterCode.JABORT),
    (40, FilterCode.JABORT), (47, FilterCode.JABORT), (62, FilterCode.JABORT),
    (63, FilterCode.JABORT), (200, FilterCode.JABORT), (-9, FilterCode.JABORT),
    (-15, FilterCode.JABORT)])
def test_decode(status: int, code: FilterCode) -> None:
    assert decode(status) is code


def test_codes_are_lprngs_numbers() -> None:
    # What lpfilter filter returns to lpd must be the numbers lpd reads.
    assert [int(c) for c in FilterCode] == [0, 1, 2, 3, 6, 10, 12]
    assert all(describe(c) for c in FilterCode)
