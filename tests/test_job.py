"""Shared nouns: job states and the one way they change, errors that carry what they are
about, and exit statuses chosen only at the command edge (issue 12)."""
from __future__ import annotations

import ast
import itertools
import json
import socket
import struct
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_spool_full import filled, small_fs  # noqa: F401 - fixture

from lpfilter import printcap
from lpfilter.backends.connect import open_connection
from lpfilter.commands.exits import for_error, for_pass, for_watch
from lpfilter.errors import (AccessError, ConfigError, ConnectRefused, HoldJob,
                             ImpossibleTransition, Interruption, JobInterrupted, JobRefused,
                             LpfilterError, NoSuchPrinter, NotConnected, PrinterBusy,
                             RemoveJob, SpoolFull, UsageError)
from lpfilter.job import FINAL, FINISHED, STATES, TRANSITIONS, Job, JobState
from lpfilter.safefiles import UnsafeFile
from lpfilter.spool.outcome import WatchOutcome, WorkSummary
from lpfilter.spool.store import SpoolStore
from lpfilter.spool.submit import JobOptions, submit
from lpfilter.spool.worker import QueueWorker
from lpfilter.status import ExitStatus

PACKAGE = Path(__file__).resolve().parent.parent / "lpfilter"

#: Every change of state the code makes, written out by hand from the places that make
#: them: the worker (takes a job, ends an attempt, fails a job before sending it, finds a
#: cancel request, recovers a dead worker's active job), hold, release, requeue, cancel.
MADE = {
    ("queued", "active"), ("queued", "held"), ("queued", "cancelled"), ("queued", "failed"),
    ("active", "queued"), ("active", "done"), ("active", "failed"), ("active", "held"),
    ("active", "removed"), ("active", "cancelled"),
    ("held", "queued"), ("held", "cancelled"),
    ("failed", "queued"), ("failed", "cancelled"),
    ("done", "queued"), ("removed", "queued"), ("cancelled", "queued"),
}
NEVER = sorted(set(itertools.product(STATES, STATES)) - MADE)


def a_job(state: str) -> Job:
    return Job("000042", "lp", "ann", "report", 10, 1.0e9, state=state)


def test_states_are_the_strings_tickets_hold() -> None:
    assert [str(s) for s in JobState] == ["queued", "active", "done", "failed", "held",
                                          "removed", "cancelled"]
    assert FINISHED < FINAL
    assert a_job("held").state is JobState.HELD  # a string given is made a JobState


@pytest.mark.parametrize(("old", "new"), sorted(MADE))
def test_every_change_the_code_makes_is_allowed(old: str, new: str) -> None:
    job = a_job(old)
    job.move_to(JobState(new))
    assert job.state is JobState(new)


@pytest.mark.parametrize(("old", "new"), NEVER)
def test_every_other_change_is_refused_and_leaves_the_job(old: str, new: str) -> None:
    job = a_job(old)
    with pytest.raises(ImpossibleTransition) as caught:
        job.move_to(JobState(new))
    assert job.state is JobState(old)
    error = caught.value
    assert not isinstance(error, LpfilterError)  # a bug: handled as an internal error
    assert (error.job_id, error.queue, error.from_state, error.to_state) == (
        "000042", "lp", old, new)


def test_the_table_is_the_changes_the_code_makes() -> None:
    assert {(str(a), str(b)) for a, targets in TRANSITIONS.items() for b in targets} == MADE
    assert set(TRANSITIONS) == set(JobState)


def test_a_refused_change_says_what_and_where() -> None:
    with pytest.raises(ImpossibleTransition) as caught:
        a_job("done").move_to(JobState.ACTIVE)
    assert str(caught.value) == "queue lp: job 000042: a job cannot go from done to active"


def test_a_ticket_on_disk_reads_and_writes_byte_for_byte() -> None:
    # A ticket as lpfilter wrote it before JobState (sorted keys, one line).
    text = ('{"attempts": 1, "bytes_sent": 6, "copies": 1, "delivery": "sent", "extra": {},'
            ' "finished": 1000000002.5, "host": "h", "id": "000007", "job_class": "",'
            ' "last_error": "", "name": "report", "next_try": 0.0, "no_banner": false,'
            ' "pages": null, "possible_duplicate": false, "queue": "lp", "send_started": true,'
            ' "size": 6, "source": "print", "started": 1000000001.0, "state": "done",'
            ' "submitted": 1000000000.0, "title": "", "unreachable_since": 0.0,'
            ' "unreachable_tries": 0, "user": "ann", "worker": null}\n')
    job = Job.from_json(text)
    assert job.state is JobState.DONE
    assert job.to_json() == text
    assert json.loads(job.to_json())["state"] == "done"
    with pytest.raises(ValueError, match="unknown job state 'printing'"):
        Job.from_json(text.replace('"done"', '"printing"'))


def _from_json_as_before(text: str) -> Job:
    """Job.from_json as it was written first (two comprehensions, JobState()): the
    reference the faster one must equal."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("a ticket is a JSON object")
    known = {k: v for k, v in data.items() if k in Job._fields}
    extra = {k: v for k, v in data.items() if k not in Job._fields}
    if isinstance(known.get("worker"), list):
        known["worker"] = tuple(known["worker"])
    job = Job(**known)
    job.extra.update(extra)
    return job


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(0, 2),
                    st.text(max_size=3), st.lists(st.integers(0, 9), max_size=2),
                    st.sampled_from([s.value for s in JobState] + ["printing"]))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from([*Job._fields, "future", "self", "x-y"]), _VALUES),
       st.booleans())
def test_from_json_reads_any_object_as_the_first_version_did(fields: dict[str, object],
                                                             whole: bool) -> None:
    """Any JSON object, with the fields a job needs or not, of any types, with unknown
    keys: the same job, or the same kind of error (the replay skips a record on it)."""
    base = Job("000001", "lp", "ann", "f", 1, 1.0).to_dict() if whole else {}
    text = json.dumps({**base, **fields})
    outcomes = []
    for read in (Job.from_json, _from_json_as_before):
        try:
            job = read(text)
            outcomes.append((job.to_dict(), type(job.state)))
        except (ValueError, TypeError, AttributeError) as exc:
            outcomes.append(type(exc))
    assert outcomes[0] == outcomes[1]


def _state_writes(path: Path) -> list[str]:
    """Where a module assigns a ``state`` attribute or builds a copy with a new state."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif (isinstance(node, ast.Call) and any(k.arg == "state" for k in node.keywords)
              and isinstance(node.func, ast.Attribute) and node.func.attr == "replace"):
            found.append(f"{path.name}:{node.lineno}")
        for target in targets:
            for part in ast.walk(target):
                if (isinstance(part, ast.Attribute) and part.attr == "state"
                        and not (isinstance(part.value, ast.Name) and part.value.id == "self"
                                 and path.name == "spooldir.py")):  # the store's folder
                    found.append(f"{path.name}:{node.lineno}")
    return found


def test_states_change_only_through_move_to() -> None:
    writes = [w for path in sorted(PACKAGE.rglob("*.py")) if path.name != "job.py"
              for w in _state_writes(path)]
    assert writes == []


# --- errors carry what they are about ---------------------------------------------------
def _entry(tmp_path: Path, sd: Path, extra: str = "") -> printcap.Entry:
    path = tmp_path / "printcap"
    path.write_text(f"lp:sd={sd}:lp=/dev/null{extra}:\n")
    return printcap.load([str(path)]).lookup("lp")


def test_a_missing_spool_directory_names_its_queue(tmp_path: Path) -> None:
    with pytest.raises(AccessError) as caught:
        SpoolStore(str(tmp_path / "none"), "lp").ensure()
    assert caught.value.queue == "lp"
    assert str(caught.value).startswith(f"queue lp: spool directory {tmp_path / 'none'} does"
                                        " not exist")


def test_a_refused_job_names_its_queue(tmp_path: Path) -> None:
    sd = tmp_path / "sd"
    sd.mkdir(mode=0o700)
    entry = _entry(tmp_path, sd)
    store = SpoolStore(str(sd), "lp")
    store.ensure()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(JobRefused) as caught:
        submit(entry, store, str(empty), JobOptions("ann"))
    assert (caught.value.queue, caught.value.message) == (
        "lp", f"{empty}: empty file; nothing to print")


def test_a_full_spool_names_its_queue(tmp_path: Path, small_fs: Path) -> None:  # noqa: F811
    sd = small_fs / "sd"
    sd.mkdir(mode=0o700)
    entry = _entry(tmp_path, sd)
    store = SpoolStore(str(sd), "lp")
    store.ensure()
    doc = tmp_path / "doc"
    doc.write_bytes(b"page\n" * 20_000)
    with filled(small_fs), pytest.raises(SpoolFull) as caught:
        submit(entry, store, str(doc), JobOptions("ann"))
    assert (caught.value.queue, caught.value.directory) == ("lp", str(sd))
    assert for_error(caught.value) == ExitStatus.SPOOL_FULL


def test_a_refused_connection_names_its_host() -> None:
    with socket.socket() as bound:  # bound but not listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        with pytest.raises(ConnectRefused) as caught:
            open_connection("127.0.0.1", port, timeout=5, interrupted=lambda: None)
    assert isinstance(caught.value, NotConnected)
    assert (caught.value.host, caught.value.queue) == (f"127.0.0.1%{port}", "")


def test_a_failed_send_carries_its_queue_job_and_printer(tmp_path: Path) -> None:
    # The backend knows the printer, the worker the queue and job: the error the policy
    # gets names all three, whoever raised it.
    with socket.socket() as printer:  # a printer that accepts, then resets at once
        printer.bind(("127.0.0.1", 0))
        printer.listen(1)
        port = printer.getsockname()[1]
        sd = tmp_path / "sd"
        sd.mkdir(mode=0o700)
        entry = _entry(tmp_path, sd, f":lp=127.0.0.1%{port}:connect_timeout#5:send_try#1")
        store = SpoolStore(str(sd), "lp")
        store.ensure()
        doc = tmp_path / "doc"
        doc.write_bytes(b"page\n" * 100_000)
        job = submit(entry, store, str(doc), JobOptions("ann"))
        worker = QueueWorker(entry, lock_dir=str(tmp_path / "locks"))
        seen: list[LpfilterError] = []
        decide = worker._failed

        def failed(failing: Job, exc: LpfilterError) -> JobState:
            seen.append(exc)
            return decide(failing, exc)

        worker._failed = failed  # type: ignore[method-assign]
        resetter = threading.Thread(target=_reset_one, args=(printer,))
        resetter.start()
        try:
            worker.serve(burst=True)
        finally:
            resetter.join(timeout=10)
            worker.close()
    [error] = seen
    assert (error.queue, error.job_id, error.host) == ("lp", job.id, f"127.0.0.1%{port}")


def _reset_one(listener: socket.socket) -> None:
    conn, _ = listener.accept()
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()  # RST


def test_every_error_takes_its_context_as_keywords() -> None:
    error = PrinterBusy("busy", queue="lp", job_id="000001", host="p%9100", where="p")
    assert (error.queue, error.job_id, error.host, str(error)) == (
        "lp", "000001", "p%9100", "p: busy")
    assert (LpfilterError("x").queue, LpfilterError("x").job_id) == ("", "")


# --- exit statuses, chosen at the command edge -------------------------------------------
@pytest.mark.parametrize(("error", "status"), [
    (LpfilterError("x"), ExitStatus.FAILURE),
    (UsageError("x"), ExitStatus.USAGE),
    (ConfigError("x"), ExitStatus.CONFIG),
    (NoSuchPrinter("x"), ExitStatus.NO_SUCH_PRINTER),
    (AccessError("x"), ExitStatus.ACCESS),
    (UnsafeFile("x"), ExitStatus.ACCESS),
    (SpoolFull("/sd", 28), ExitStatus.SPOOL_FULL),
    (JobRefused("x"), ExitStatus.JOB_FAILED),
    (HoldJob("x"), ExitStatus.JOB_HELD),
    (RemoveJob("x"), ExitStatus.JOB_FAILED),
    (ConnectRefused("x"), ExitStatus.FAILURE),
    (JobInterrupted(Interruption.SHUTDOWN), ExitStatus.FAILURE),
])
def test_each_error_class_has_its_exit_status(error: LpfilterError, status: ExitStatus) -> None:
    assert for_error(error) == status
    assert not hasattr(error, "status")  # the error says what happened, not how to exit


@pytest.mark.parametrize(("summary", "status"), [
    (WorkSummary({JobState.DONE: 2, JobState.CANCELLED: 1}), ExitStatus.OK),
    (WorkSummary({JobState.DONE: 1}, pending=1), ExitStatus.JOB_PENDING),
    (WorkSummary(left=1), ExitStatus.JOB_PENDING),
    (WorkSummary({JobState.HELD: 1}, pending=1), ExitStatus.JOB_HELD),
    (WorkSummary({JobState.REMOVED: 1, JobState.HELD: 1}), ExitStatus.JOB_FAILED),
    (WorkSummary({"failed": 1}), ExitStatus.JOB_FAILED),  # as the watcher counts a crash
    (WorkSummary({JobState.FAILED: 1}, full=SpoolFull("/sd", 28)), ExitStatus.SPOOL_FULL),
])
def test_a_pass_reports_counts_the_command_judges(summary: WorkSummary,
                                                  status: ExitStatus) -> None:
    assert for_pass(summary) == status


def test_a_watch_reports_troubles_the_command_judges() -> None:
    missing = AccessError("queue a: gone", queue="a")
    assert for_watch(WatchOutcome()) == ExitStatus.OK
    assert for_watch(WatchOutcome(broken={"a": missing})) == ExitStatus.ACCESS
    assert for_watch(WatchOutcome(broken={"a": OSError("?")})) == ExitStatus.CONFIG
    assert for_watch(WatchOutcome(passes=[WorkSummary(pending=1)],
                                  busy=["b"])) == ExitStatus.JOB_PENDING
    assert for_watch(WatchOutcome(passes=[WorkSummary()], busy=["b"])) == ExitStatus.QUEUE_BUSY
    assert for_watch(WatchOutcome(passes=[WorkSummary({JobState.HELD: 1}),
                                          SpoolFull("/sd", 28)])) == ExitStatus.SPOOL_FULL
    # Worse than any ranked status: one not ranked (a queue name that is no printer).
    assert for_watch(WatchOutcome(broken={"a": ConfigError("x"), "b": NoSuchPrinter("y")},
                                  passes=[missing])) == ExitStatus.NO_SUCH_PRINTER



def test_the_lpd_fields_are_written_only_when_set() -> None:
    """A job received over LPD keeps its peer, origin and format; other tickets are
    written without them, as before (the ticket above stays byte for byte)."""
    plain = Job("000001", "lp", "ann", "report", 6, 1000000000.0)
    assert not {"peer", "origin", "print_format"} & set(json.loads(plain.to_json()))
    received = Job("000002", "lp", "bob", "memo", 6, 1000000000.0, source="lpd",
                   peer="192.0.2.7", origin="cfA007client:abc", print_format="l")
    again = Job.from_json(received.to_json())
    assert (again.peer, again.origin, again.print_format) == ("192.0.2.7", "cfA007client:abc",
                                                              "l")
    assert again.to_json() == received.to_json() and again.extra == {}


def test_a_name_with_bytes_that_are_not_utf8_is_written_and_read_back() -> None:
    """argv and control files keep such bytes as surrogates; the ticket must still be
    written (it was an internal error, exit 70) and read back the same."""
    job = Job("000001", "q", "alice", "bad\udcff\x1b", 3, 1.0, title="caf\u00e9")
    text = job.to_json()
    text.encode("utf-8")  # no UnicodeEncodeError
    again = Job.from_json(text)
    assert (again.name, again.title) == ("bad\udcff\x1b", "caf\u00e9")
    plain = Job("000002", "q", "alice", "caf\u00e9", 3, 1.0)
    assert "caf\u00e9" in plain.to_json()  # other tickets are as before: not escaped


def test_print_takes_a_job_name_that_is_not_utf8(tmp_path: Path) -> None:
    from lpfilter.cli import main
    sd = tmp_path / "sd"
    sd.mkdir()
    (tmp_path / "printcap").write_text(f"q:lp=/dev/null:sd={sd}\n")
    (tmp_path / "doc").write_text("page\n")
    env = {"LPFILTER_PRINTCAP": str(tmp_path / "printcap"),
           "LPFILTER_LOCK_DIR": str(tmp_path / "locks")}
    assert main(["print", "--no-wait", "-P", "q", "-J", "bad\udcff",
                 str(tmp_path / "doc")], env) == 0
    (job,) = SpoolStore(str(sd), "q").jobs()
    assert job.name == "bad\udcff"
