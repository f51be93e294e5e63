"""Each backend's typed settings (lpfilter/backends/settings.py), the request a backend gets
and why a send is interrupted: read once from a real printcap file, with LPRng's and
lpfilter's defaults and checks in one place (issue 12)."""
from __future__ import annotations

import ast
import dataclasses
import time
from pathlib import Path

import pytest

from lpfilter import printcap
from lpfilter.backends import SendRequest, backend_for
from lpfilter.backends.framing import Framing
from lpfilter.backends.settings import (OVERALL_DEFAULT, DeviceSettings, FtpSettings, LpdSettings,
                                        PipeSettings, SendSettings, SocketSettings, settings_for)
from lpfilter.errors import Interruption, JobInterrupted, JobRefused
from lpfilter.job import Job
from lpfilter.printcap import Entry
from lpfilter.printcap.entrytext import entry_to_text

BACKENDS = Path(__file__).resolve().parent.parent / "lpfilter" / "backends"


def entry_of(tmp_path: Path, lp: str, options: str = "") -> Entry:
    """Queue ``q`` of a one-line printcap file."""
    path = tmp_path / f"printcap{len(list(tmp_path.glob('printcap*')))}"
    path.write_text(f"q:sd={tmp_path}:lp={lp}{':' + options if options else ''}\n")
    return printcap.load([str(path)]).lookup("q")


def test_no_backend_reads_the_printcap_entry() -> None:
    """Only settings.py (and framing.py's pure function it calls) read printcap keys; the
    backends read their settings object."""
    readers = {}
    for path in sorted(BACKENDS.glob("*.py")):
        if path.name in ("settings.py", "framing.py"):
            continue
        tree = ast.parse(path.read_text())
        found = sorted({node.lineno for node in ast.walk(tree)
                        if (isinstance(node, ast.Attribute) and node.attr == "entry")
                        or (isinstance(node, ast.Name) and node.id == "Entry")
                        or (isinstance(node, ast.alias) and node.name == "Entry")})
        if found:
            readers[path.name] = found
    assert readers == {}


@pytest.mark.parametrize(("options", "pjl", "waitend"), [
    ("", False, "eof"),
    ("pjl", True, "pjl"),
    ("waitend=pjl", False, "eof"),  # PJL completion without PJL cannot work
    ("pjl:waitend= ECHO ", True, "echo"),
    ("waitend=delay", False, "delay"),
    ("pjl:waitend=someday", True, "eof"),
])
def test_socket_wait_mode(tmp_path: Path, options: str, pjl: bool, waitend: str) -> None:
    settings = SocketSettings.from_entry(entry_of(tmp_path, "h.example%9100", options))
    assert (settings.pjl, settings.waitend) == (pjl, waitend)


@pytest.mark.parametrize(("options", "stall", "overall"), [
    ("", 300.0, OVERALL_DEFAULT),
    ("stall_timeout#5", 5.0, OVERALL_DEFAULT),
    ("stall_timeout#5:send_job_rw_timeout#30", 30.0, 30.0),
    ("stall_timeout#0", 0.0, OVERALL_DEFAULT),
])
def test_stall_and_completion_bounds(tmp_path: Path, options: str, stall: float,
                                     overall: float) -> None:
    """send_job_rw_timeout, when set, bounds both; else stall_timeout the stall alone."""
    settings = SocketSettings.from_entry(entry_of(tmp_path, "h.example%9100", options))
    assert (settings.stall, settings.overall) == (stall, overall)
    assert DeviceSettings.from_entry(entry_of(tmp_path, "/dev/null", options)).stall == stall


def test_socket_defaults(tmp_path: Path) -> None:
    settings = SocketSettings.from_entry(entry_of(tmp_path, "h.example%9100"))
    assert settings == SocketSettings(
        queue="q", framing=Framing(b"", b"", b""), stall=300.0, pjl=False, waitend="eof",
        silence=90.0, delay=5.0, overall=OVERALL_DEFAULT, half_close=True,
        connect_grace=0.0, connect_timeout=10.0, keepalive=True,
        linger=10, sync=False, pagecount=False, pjl_enter=None, init=b"", ps_eoj=False)


def test_framing_is_read_once_and_none_when_lpd_frames(tmp_path: Path) -> None:
    """ld, tr and init are C-unescaped bytes; ``framed=False`` (lpd frames the job) drops
    the printcap's framing but not the socket's own wrapping."""
    entry = entry_of(tmp_path, "h.example%9100", r"ld=\033E:tr=\377:fo:sf:init=\101")
    framed = SocketSettings.from_entry(entry)
    assert framed.framing == Framing(b"\x1bE\f", b"", b"\xff") and framed.init == b"A"
    bare = SocketSettings.from_entry(entry, framed=False)
    assert bare.framing == Framing(b"", b"", b"") and bare.init == b"A"


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = DeviceSettings.from_entry(entry_of(tmp_path, "/dev/null", "lk"))
    assert (settings.lock, settings.read_write) == (True, True)  # a lock needs O_RDWR
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.lock = False  # type: ignore[misc]


def test_pipe_settings_carry_the_programs_environment(tmp_path: Path) -> None:
    entry = entry_of(tmp_path, "|/bin/cat", "send_job_rw_timeout#7")
    settings = PipeSettings.from_entry(entry)
    assert (settings.shell, settings.spool_dir, settings.finish_timeout) == (
        "/bin/sh", str(tmp_path), 7.0)
    assert settings.printcap_text == entry_to_text(entry)


def test_ftp_settings(tmp_path: Path) -> None:
    settings = FtpSettings.from_entry(entry_of(tmp_path, r"ftp\://h.example/PORT1",
                                               "ftp_sessions#0:ftp_active"))
    assert (settings.sessions, settings.active, settings.user, settings.password_file,
            settings.idle) == (1, True, "", "", 240)


@pytest.mark.parametrize(("lp", "kind"), [
    ("/dev/null", DeviceSettings), ("|/bin/cat", PipeSettings),
    ("h.example%9100", SocketSettings), (r"ftp\://h.example/PORT1", FtpSettings),
    ("queue@h.example", LpdSettings)])
def test_settings_for_each_kind(tmp_path: Path, lp: str, kind: type[SendSettings]) -> None:
    entry = entry_of(tmp_path, lp)
    assert type(settings_for(entry.destination(), entry)) is kind


def test_a_kind_without_backend_gets_common_settings_and_a_refusal(tmp_path: Path) -> None:
    """Building the request never fails; the backend lookup refuses the job, as before."""
    entry = entry_of(tmp_path, "not-a-destination")
    destination = entry.destination()
    assert type(settings_for(destination, entry)) is SendSettings
    with pytest.raises(JobRefused):
        backend_for(destination)


class Quiet:
    """A reporter that hears nothing and stops when told."""

    def __init__(self, reason: Interruption | None = None) -> None:
        self.reason = reason

    def interrupted(self) -> Interruption | None:
        return self.reason

    def first_byte(self) -> None:
        raise AssertionError("no byte may leave")

    def progress(self, taken: int) -> None:
        raise AssertionError("no byte may leave")

    def status(self, message: str) -> None:
        raise AssertionError(f"no status expected: {message}")


def test_interruption_is_an_enum_with_the_old_words() -> None:
    assert str(JobInterrupted(Interruption.CANCELLED)) == "cancelled"
    stopped = JobInterrupted(Interruption.SHUTDOWN, "SIGTERM")
    assert stopped.reason is Interruption.SHUTDOWN and str(stopped) == "SIGTERM"


@pytest.mark.parametrize("reason", list(Interruption))
def test_a_request_check_raises_the_reporters_reason(tmp_path: Path,
                                                     reason: Interruption) -> None:
    entry = entry_of(tmp_path, "/dev/null")
    job = Job("000001", "q", "root", "job", 1, time.time())
    request = SendRequest(job, "/dev/null", entry.destination(),
                          settings_for(entry.destination(), entry), Quiet())
    request.check()  # not interrupted: goes on
    request.reporter = Quiet(reason)
    with pytest.raises(JobInterrupted) as caught:
        request.check()
    assert caught.value.reason is reason


def test_an_ftp_send_needs_the_callers_lock_directory(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The backend never picks a lock directory of its own (that is the command's)."""
    monkeypatch.setenv("HOME", str(tmp_path))  # no netrc
    entry = entry_of(tmp_path, r"ftp\://127.0.0.1\:9/PORT1")
    data = tmp_path / "data"
    data.write_bytes(b"x")
    job = Job("000001", "q", "root", "job", 1, time.time())
    request = SendRequest(job, str(data), entry.destination(),
                          settings_for(entry.destination(), entry), Quiet())
    with pytest.raises(ValueError, match="lock directory"):
        backend_for(entry.destination()).send(request)
    assert not list(tmp_path.glob("ftp-*"))
