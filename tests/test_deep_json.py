"""JSON nested deeper than the interpreter's recursion limit, where lpfilter reads JSON that
someone else may have written (a spool owner's journal and lock files, a pool's board, the
daemon's answer on its local socket): a clear refusal or a record skipped with its line,
never a RecursionError (a traceback, exit 70). ``json`` raises RecursionError there."""
from __future__ import annotations

import fcntl
import json
import logging
import os
import sys
from pathlib import Path

import pytest

from lpfilter import jsontext
from lpfilter.job import Job
from lpfilter.locks import current_holder
from lpfilter.protocols import lpdlocal
from lpfilter.protocols.lpd import LpdProtocolError
from lpfilter.spool import journalformat as jf
from lpfilter.spool import poolboard
from lpfilter.spool.jobindex import JobIndex

DEPTH = sys.getrecursionlimit() + 100
DEEP = "[" * DEPTH + "]" * DEPTH
DEEP_IN_OBJECT = '{"ids": ' + DEEP + "}"


def test_json_itself_raises_recursion_error() -> None:
    """Why this file exists: the standard library's answer is no ValueError."""
    with pytest.raises(RecursionError):
        json.loads(DEEP)


@pytest.mark.parametrize("text", [DEEP, DEEP_IN_OBJECT, "  " + DEEP + "\n"])
def test_loads_refuses_it_as_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="nested too deeply"):
        jsontext.loads(text)


def test_loads_still_reads_what_is_nested_within_the_limit() -> None:
    depth = 100
    assert jsontext.loads("[" * depth + "]" * depth) == json.loads("[" * depth + "]" * depth)


@pytest.mark.parametrize("kind", [jf.Kind.GONE, jf.Kind.MARK, jf.Kind.JOB, jf.Kind.START,
                                  jf.Kind.CANCEL, jf.Kind.INTENT])
def test_a_journal_record_nested_too_deeply_is_skipped_with_its_line(
        kind: int, caplog: pytest.LogCaptureFixture) -> None:
    """The replay goes on past it: the records after it are applied."""
    job = jf.job_record(Job("000001", "q", "user", "file", 10, 1.0))
    data, _ = jf.encode_all(0, [(kind, DEEP_IN_OBJECT.encode()), job])
    records, _ = jf.decode(data, 0)
    index = JobIndex("q")
    with caplog.at_level(logging.WARNING):
        index.apply_all(records)
    assert index.skipped == 1 and list(index.jobs) == ["000001"]
    assert "nested too deeply" in caplog.text


def test_a_lock_file_nested_too_deeply_names_no_holder(tmp_path: Path) -> None:
    path = tmp_path / "queue.lock"
    path.write_text(DEEP)
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held: current_holder reads who holds it
        assert current_holder(str(path)) is None
    finally:
        os.close(fd)


def test_a_pool_board_nested_too_deeply_is_no_board(tmp_path: Path) -> None:
    (tmp_path / poolboard.BOARD).write_text(DEEP_IN_OBJECT)
    assert poolboard.read(str(tmp_path)) is None


def test_a_daemon_answer_nested_too_deeply_is_a_protocol_error() -> None:
    answer = ('{"ok": true, "x": ' + DEEP + "}").encode()
    assert len(answer) <= lpdlocal.MAX_REPLY
    with pytest.raises(LpdProtocolError, match="not JSON"):
        lpdlocal.parse_reply(answer)

