"""A journal's one-line refusals name the queue first, as the spool's other errors do
(issue 16, item 3): damaged, too big, a directory at ``journal.next``, a file planted in
the journal's place. The lines are pinned whole."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from spoolkit import Kit, journal_path, kit  # noqa: F401 - the fixture

from lpfilter.cli import main
from lpfilter.errors import AccessError
from lpfilter.job import Job
from lpfilter.spool.journalformat import JOURNAL_MAX, encode, reserve_record
from lpfilter.spool.store import SpoolStore
from lpfilter.status import ExitStatus

MOVE_ASIDE = "(the data files in jobs/ are then taken in again as jobs)"


def _store(tmp_path: Path) -> tuple[SpoolStore, Path]:
    sd = tmp_path / "sd"
    sd.mkdir(mode=0o700)
    store = SpoolStore(str(sd), "lp")
    store.ensure()
    store.write(Job("000001", "lp", "u", "f", 1, time.time()))
    return store, sd


def damage(sd: Path) -> int:
    """Bad bytes followed by a good record (job number 7 given out) appended to the
    journal (73 bytes that are no records for a reader); returns their offset."""
    path = journal_path(sd)
    data = path.read_bytes()
    bad = b"\x07" * 40
    with path.open("ab") as handle:
        handle.write(bad + encode(len(data) + len(bad), *reserve_record(7)))
    return len(data)


def test_a_damaged_journal_is_refused_naming_the_queue(
        kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    sd = kit.queue("lp", "/dev/null", accounting=False)
    assert kit.run("print", "--no-wait", "-P", "lp", str(kit.printcap)).returncode == 0
    at = damage(sd)
    path = journal_path(sd)
    line = (f"lpfilter: queue lp: {path}: damaged at offset {at} (73 bytes that are no"
            " records, followed by good records); nothing was changed: restore it, or move"
            f" it aside {MOVE_ASIDE}\n")
    done = kit.run("status", "-P", "lp")
    assert (done.returncode, done.stderr) == (ExitStatus.ACCESS, line)
    assert main(["--printcap", str(kit.printcap), "print", "--no-wait", "-P", "lp",
                 str(kit.printcap)]) == ExitStatus.ACCESS
    assert capsys.readouterr().err == line


def test_a_journal_too_big_is_refused_naming_the_queue(tmp_path: Path) -> None:
    store, sd = _store(tmp_path)
    store.close()
    os.truncate(journal_path(sd), JOURNAL_MAX + 1)  # sparse: only its size is looked at
    with pytest.raises(AccessError) as caught:
        SpoolStore(str(sd), "lp").jobs()
    assert str(caught.value) == (
        f"queue lp: {journal_path(sd)}: {JOURNAL_MAX + 1} bytes, more than a journal may be"
        f" ({JOURNAL_MAX}); move it aside {MOVE_ASIDE}")
    assert caught.value.queue == "lp"


def test_a_directory_at_journal_next_is_refused_naming_the_queue(tmp_path: Path) -> None:
    store, sd = _store(tmp_path)
    planted = sd / ".lpfilter" / "journal.next"
    planted.mkdir()
    with pytest.raises(AccessError) as caught:
        store.compact()
    assert str(caught.value) == (
        f"queue lp: {planted}: cannot be removed (Is a directory: not a file lpfilter"
        " made); remove it, so the journal can be compacted")
    store.close()


def test_a_link_planted_in_place_of_an_open_journal_is_refused_naming_the_queue(
        tmp_path: Path) -> None:
    """The journal replaced (under a store that has it open) by a symbolic link: the
    store's next look refuses it in the line a first open gives."""
    store, sd = _store(tmp_path)
    path = journal_path(sd)
    victim = tmp_path / "victim"
    victim.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(victim)
    with pytest.raises(AccessError) as caught:
        store.jobs()
    line = (f"queue lp: {path}: a symbolic link (never followed); not used: remove it"
            " (lpfilter makes a new one; the data files in jobs/ no record names are taken"
            " in again as jobs)")
    assert str(caught.value) == line
    with pytest.raises(AccessError) as fresh:
        SpoolStore(str(sd), "lp").jobs()
    assert str(fresh.value) == line  # the same line as a first open's
    store.close()
