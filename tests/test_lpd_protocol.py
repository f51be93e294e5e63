"""The LPD protocol bytes as pure functions (lpfilter.protocols.lpd and .lpdcontrol):
the bytes real clients sent in the reference (shared/reference/lpd-protocol.md §2.1, §7.1)
reproduced from the same job fields, the acknowledgement table, and properties: no input
ever breaks a request line or a control file. No network here."""
from __future__ import annotations

import calendar
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lpfilter.job import Job
from lpfilter.protocols import lpd, lpdcontrol
from lpfilter.protocols.lpd import (Ack, AckKind, FileLine, JobNames, LpdProtocolError, Request,
                                    RequestLine, Subcommand)
from lpfilter.protocols.lpdcontrol import ControlFields, DataFile, Style
from lpfilter.spool.joboptions import JobOptions

PROPERTY = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
#: The longest line the builder may write: a command letter, N's 131 bytes, LF.
LONGEST_LINE = 1 + 131 + 1


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# --- requests: the bytes LPRng's lpr, lpq and lprm sent (§2.1, §7.1) ---------------------
@pytest.mark.parametrize(("made", "wire"), [
    (lpd.receive_job("q"), b"\x02q\n"),
    (lpd.print_waiting("q"), b"\x01q\n"),
    (lpd.status("q"), b"\x03q\n"),                                # lpq -s
    (lpd.status("q", long=True), b"\x04q\n"),                     # lpq, lpq -l
    (lpd.status("q", ("bob", "123"), long=True), b"\x04q bob 123\n"),
    (lpd.remove("q", "root", ("634",)), b"\x05q root 634\n"),     # lprm 634
    (lpd.remove("q", "root"), b"\x05q root\n"),                   # lprm, lprm -
    (lpd.remove("q", "root", ("all",)), b"\x05q root all\n"),
    (lpd.remove("q", "nobody", ("bob", "12")), b"\x05q nobody bob 12\n"),
    (lpd.abort_job(), b"\x01\n"),
    (lpd.file_line(Subcommand.CONTROL_FILE, 152, "cfA634localhost"), b"\x02152 cfA634localhost\n"),
    (lpd.file_line(Subcommand.DATA_FILE, 19, "dfA634localhost"), b"\x0319 dfA634localhost\n"),
    (lpd.file_line(Subcommand.DATA_FILE, 0, "dfA906localhost"), b"\x030 dfA906localhost\n"),
    (lpd.file_line(Subcommand.DATA_FILE, 38, "dfA546vm"), b"\x0338 dfA546vm\n"),
])
def test_requests_are_the_bytes_real_clients_send(made: bytes, wire: bytes) -> None:
    assert made == wire


def test_a_parsed_request_names_its_agent_and_items() -> None:
    removal = lpd.parse_request(b"\x05q\tnobody  bob\x0b12\x0c\n")  # any RFC separator
    assert removal == RequestLine(Request.REMOVE, "q", ("nobody", "bob", "12"))
    assert (removal.agent, removal.items) == ("nobody", ("bob", "12"))
    assert lpd.parse_request(b"\x04q bob 123") == RequestLine(Request.LONG_STATUS, "q",
                                                               ("bob", "123"))
    assert lpd.parse_request(b"\x04q\n").items == ()
    assert lpd.parse_request(b"\x03q alice\n").agent == ""


@pytest.mark.parametrize(("line", "why"), [
    (b"", "not an LPD request"),
    (b"\x06q\n", "not an LPD request (code 0x06)"),
    (b"q\n", "not an LPD request"),
    (b"\x02\n", "without a queue"),
    (b"\x05q\n", "without an agent"),
    (b"\x02q\0x\n", "NUL"),
    (b"\x02q\nx\n", "NUL, CR or LF"),
    (b"\x02q\r\n", "NUL, CR or LF"),
    (b"\x04q \x1b[2J\n", "control character"),
    (b"\x04q " + b"u " * 300 + b"\n", "longer than 512"),
])
def test_a_bad_request_line_is_refused_with_a_reason(line: bytes, why: str) -> None:
    with pytest.raises(LpdProtocolError, match=why.replace("(", r"\(").replace(")", r"\)")):
        lpd.parse_request(line)


@pytest.mark.parametrize(("queue", "operands"), [
    ("q r", ()), ("q\n\x05lp root", ()), ("", ()), ("q", ("bob\n",)), ("q", ("a b",)),
    ("q", ("",)), ("q", ("\0",)), ("q", ("x" * 600,)), ("q\u2028", ()),
])
def test_an_operand_that_would_split_or_end_the_line_is_refused(
        queue: str, operands: tuple[str, ...]) -> None:
    with pytest.raises(LpdProtocolError):
        lpd.status(queue, operands)


def test_a_remove_request_needs_an_agent() -> None:
    with pytest.raises(LpdProtocolError, match="agent"):
        lpd.request(Request.REMOVE, "q")


_WORD = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20).filter(
    lambda w: w.isprintable() and not any(c.isspace() for c in w))


@PROPERTY
@given(code=st.sampled_from(list(Request)), queue=_WORD,
       operands=st.lists(_WORD, min_size=1, max_size=6))
def test_request_round_trip(code: Request, queue: str, operands: list[str]) -> None:
    wire = lpd.request(code, queue, tuple(operands))
    assert wire.count(b"\n") == 1 and wire.endswith(b"\n") and len(wire) <= lpd.MAX_LINE
    assert lpd.parse_request(wire) == RequestLine(code, queue, tuple(operands))


@PROPERTY
@given(queue=st.text(max_size=40), operands=st.lists(st.text(max_size=40), max_size=4))
@example(queue="lp\n\x02evil", operands=[])
def test_no_request_is_ever_two_lines(queue: str, operands: list[str]) -> None:
    try:
        wire = lpd.status(queue, tuple(operands))
    except LpdProtocolError:
        return
    assert wire.count(b"\n") == 1 and b"\0" not in wire and b"\r" not in wire


@PROPERTY
@given(st.binary(max_size=700))
def test_any_bytes_parse_to_a_request_or_a_protocol_error(data: bytes) -> None:
    for parser in (lpd.parse_request, lpd.parse_subcommand):
        try:
            parser(data)
        except LpdProtocolError:
            pass


# --- subcommands -------------------------------------------------------------------------
def test_subcommands_parse_as_a_server_reads_them() -> None:
    assert lpd.parse_subcommand(b"\x02152 cfA634localhost\n") == FileLine(
        Subcommand.CONTROL_FILE, 152, "cfA634localhost")
    assert lpd.parse_subcommand(b"\x030 dfA906localhost\n") == FileLine(
        Subcommand.DATA_FILE, 0, "dfA906localhost")
    assert lpd.parse_subcommand(b"\x03999999999999 dfA001vm\n").size == lpd.MAX_COUNT
    assert lpd.parse_subcommand(b"\x01\n") is None


@pytest.mark.parametrize("line", [
    "\x0319 dfA١٢٣host\n".encode(), b"\x02152 ../../etc/passwd\n", b"\x0319 dfA/1host\n",
    b"\x0319 dfA001..\n",
    b"\x020 cfA001host\n", b"\x03-1 dfA001host\n", b"\x031e3 dfA001host\n",
    b"\x031000000000000 dfA001host\n", b"\x0319 dfA001 host\n", b"\x04q\n", b"\x0319\n",
])
def test_a_bad_subcommand_is_refused(line: bytes) -> None:
    with pytest.raises(LpdProtocolError):
        lpd.parse_subcommand(line)


# --- job numbers and names (§5) ----------------------------------------------------------
def test_job_numbers_and_names_as_lprng_and_bsd_write_them() -> None:
    names = lpd.job_names("000634", "localhost")
    assert names == JobNames(634, "localhost")
    assert (names.control, names.data(0), names.data(1)) == (
        "cfA634localhost", "dfA634localhost", "dfB634localhost")
    assert lpd.job_names("001634", "vm").control == "cfA634vm"          # mod 1000
    assert lpd.job_names("000007", "vm").data(51) == "dfz007vm"         # the 52nd file
    assert lpd.job_names("1234567", "h", digits=6).control == "cfA234567h"  # longnumber
    assert lpd.job_names("000634", "localhost", job_class="Z").control == "cfZ634localhost"
    assert lpd.job_names("000634", "h", job_class="zeta").control == "cfZ634h"
    assert lpd.job_names("000634", "h", job_class="9").control == "cfA634h"
    with pytest.raises(LpdProtocolError):
        names.data(52)
    with pytest.raises(LpdProtocolError):
        lpd.job_number("000634", digits=4)


def test_the_host_part_of_a_name_is_never_a_path() -> None:
    assert lpd.name_host("../etc/passwd x") == "_etc_passwd_x"
    assert lpd.name_host("a" * 40) == "a" * 31
    assert lpd.name_host("") == "localhost"
    assert lpd.job_number("abc") == lpd.job_number("abc") < 1000  # stable, in range
    assert lpd.name_host("a..b...c") == "a.b.c"
    with pytest.raises(LpdProtocolError):
        lpd.file_line(Subcommand.DATA_FILE, 1, "dfA١٢٣host")  # not ASCII digits
    for host in ("../..", "h/o\ns t", "\0"):
        lpd.check_file_name(lpd.job_names("000001", host).data(0))


# --- the control file: LPRng's and CUPS's bytes (§2.1) ------------------------------------
def test_lprng_lpr_control_file_byte_for_byte(utc: None) -> None:
    path = "/tmp/labdir/job.txt1"  # 20 bytes: the reference's cf was 152 bytes in all
    submitted = calendar.timegm((2026, 12, 4, 22, 0, 45)) + 0.365
    job = Job("000634", "q", "root", path, 19, submitted)
    names = lpd.job_names(job.id, "localhost")
    cf = lpdcontrol.build(lpdcontrol.from_job(job, names, host="localhost", queue="q"))
    assert cf == (b"Hlocalhost\nProot\nJ/tmp/labdir/job.txt1\nCA\nLroot\n"
                  b"Aroot@localhost+634\nD2026-12-04-22:00:45.365\nQq\n"
                  b"N/tmp/labdir/job.txt1\nfdfA634localhost\nUdfA634localhost\n")
    assert lpd.file_line(Subcommand.CONTROL_FILE, len(cf), names.control) == \
        b"\x02152 cfA634localhost\n"


def test_lprng_options_lines(utc: None) -> None:
    job = Job("000634", "q", "alice", "x", 1, 0.0, title="MyTitle", job_class="Z",
              no_banner=True, copies=2)
    cf = lpdcontrol.build(lpdcontrol.from_job(job, lpd.job_names(job.id, "h"), host="h",
                                              fmt="l"), Style.RFC)
    assert cf == b"Hh\nPalice\nJx\nCZ\nTMyTitle\nNx\nldfA634h\nldfA634h\nUdfA634h\n"


def test_a_received_jobs_own_lines_are_carried_to_the_next_server(utc: None) -> None:
    """A job that came over LPD with lpr's -Z, -w, -i lines (its ticket's
    extra["control"]) sends them on, as LPRng's lpd forwards its control file; the lines
    every job gets are written anew, not copied, but for N: the file's name it came with."""
    control = {"Z": "duplex,landscape", "W": "100", "I": "4", "A": "eve@far+7",
               "N": "orig.txt", "Q": "far", "D": "x", "H": "evil", "x": "dfA001h", "R": ""}
    job = Job("000634", "q", "alice", "x", 1, 0.0, extra={"control": control})
    cf = lpdcontrol.build(lpdcontrol.from_job(job, lpd.job_names(job.id, "h"), host="h"),
                          Style.RFC)
    assert cf == (b"Hh\nPalice\nJx\nCA\nLalice\nZduplex,landscape\nW100\nI4\nNorig.txt\n"
                  b"fdfA634h\nUdfA634h\n")
    assert lpdcontrol.parse(cf).other == (("Z", "duplex,landscape"), ("W", "100"), ("I", "4"))
    bad = Job("000001", "q", "u", "x", 1, 0.0, extra={"control": {"Z": "a\nPmallory"}})
    assert b"Za_Pmallory\n" in lpdcontrol.build(
        lpdcontrol.from_job(bad, lpd.job_names(bad.id, "h"), host="h"), Style.RFC)


def test_a_job_named_with_j_keeps_its_files_name_as_n(utc: None) -> None:
    """print -J MyJob doc.txt: J is the job's name, N the file's (LPRng's lpr), also
    when the job is forwarded."""
    options = JobOptions("alice", name="MyJob")
    assert options.names("/home/alice/doc.txt") == ("MyJob", "doc.txt")
    assert options.names("-") == ("MyJob", "stdin")
    assert JobOptions("alice").names("/home/alice/doc.txt") == ("doc.txt", "doc.txt")
    job = Job("000634", "q", "alice", "MyJob", 1, 0.0, extra=options.extra("doc.txt"))
    cf = lpdcontrol.build(lpdcontrol.from_job(job, lpd.job_names(job.id, "h"), host="h"),
                          Style.RFC)
    assert cf == b"Hh\nPalice\nJMyJob\nCA\nLalice\nNdoc.txt\nfdfA634h\nUdfA634h\n"


def test_cups_backend_control_file_byte_for_byte() -> None:
    fields = ControlFields(host="vm", user="alice", job_name="My Title", banner=False,
                           files=(DataFile("dfA542vm", "l", "My Title"),))
    assert lpdcontrol.build(fields, Style.CUPS) == (
        b"Hvm\nPalice\nJMy Title\nldfA542vm\nUdfA542vm\nNMy Title\n")
    # manual_copies=no: the print line once per copy; banner=on adds C<host> and L<user>.
    two = ControlFields(host="vm", user="alice", job_name="My Title", job_class="vm",
                        files=(DataFile("dfA542vm", "l", "My Title", copies=2),))
    assert lpdcontrol.build(two, Style.CUPS) == (
        b"Hvm\nPalice\nJMy Title\nCvm\nLalice\nldfA542vm\nldfA542vm\nUdfA542vm\nNMy Title\n")


def test_two_files_name_dfa_and_dfb() -> None:
    names = JobNames(748, "h")
    fields = ControlFields(host="h", user="u", files=(
        DataFile(names.data(0), "p", "a"), DataFile(names.data(1), "p", "b")))
    assert lpdcontrol.build(fields, Style.RFC) == (
        b"Hh\nPu\nLu\nNa\npdfA748h\nNb\npdfB748h\nUdfA748h\nUdfB748h\n")


def test_hostile_job_fields_are_cleaned_as_lprng_does() -> None:
    job = Job("000001", "q", "eve\nPmallory", "a\n\x00b\x1b[2J", 1, 0.0,
              title="t\r\nUdfA001../../etc", job_class="A B")
    fields = lpdcontrol.from_job(job, lpd.job_names(job.id, "h"), host="h\nx")
    cf = lpdcontrol.build(fields, Style.RFC)
    assert cf == (b"Hh_x\nPeve_Pmallory\nJa__b_[2J\nCA_B\nLeve_Pmallory\n"
                  b"Tt__UdfA001../../etc\nNa__b_[2J\nfdfA001h\nUdfA001h\n")
    assert lpdcontrol.parse(cf).user == "eve_Pmallory"


@pytest.mark.parametrize("fields", [
    ControlFields(host="h", user="u", files=()),
    ControlFields(host="", user="u", files=(DataFile("dfA001h"),)),
    ControlFields(host="h", user="", files=(DataFile("dfA001h"),)),
    ControlFields(host="h", user="u", files=(DataFile("../x"),)),
    ControlFields(host="h", user="u", files=(DataFile("cfA001h"),)),
    ControlFields(host="h", user="u", files=(DataFile("dfA001h", "F"),)),
    ControlFields(host="h", user="u", files=(DataFile("dfA001h", copies=0),)),
    ControlFields(host="h", user="u", files=(DataFile("dfA001h", copies=1000),)),
    ControlFields(host="h", user="u", files=(DataFile("dfA001h"),), other=(("N", "x"),)),
    ControlFields(host="h", user="u", files=(DataFile("dfA001h"),), other=(("f", "x"),)),
])
def test_fields_that_make_no_control_file_are_refused(fields: ControlFields) -> None:
    with pytest.raises(LpdProtocolError):
        lpdcontrol.build(fields)


# --- parsing a control file ----------------------------------------------------------------
def test_parse_lprng_and_cups_files() -> None:
    lprng = lpdcontrol.parse(b"Hlocalhost\nProot\nJjob\nCA\nLroot\nAroot@localhost+634\n"
                             b"D2026-12-04-22:00:45.365\nQq\nZduplex=on\nW100\nNjob\n"
                             b"fdfA634localhost\nUdfA634localhost\n")
    assert lprng == ControlFields(
        host="localhost", user="root", job_name="job", job_class="A", banner=True,
        identifier="root@localhost+634", date="2026-12-04-22:00:45.365", queue="q",
        other=(("Z", "duplex=on"), ("W", "100")),
        files=(DataFile("dfA634localhost", "f", "job"),))
    cups = lpdcontrol.parse(b"Hvm\nPalice\nJMy Title\nldfA542vm\nldfA542vm\nUdfA542vm\n"
                            b"NMy Title")  # a last line without LF is taken too
    assert cups.files == (DataFile("dfA542vm", "l", "My Title", copies=2),)
    assert not cups.banner


@pytest.mark.parametrize(("data", "why"), [
    (b"Hh\nPu\n", "prints no data file"),
    (b"Hh\nPu\nfdfA001h\0\n", "NUL"),
    (b"Hh\r\nPu\nfdfA001h\n", "CR"),
    (b"Hh\n\nfdfA001h\n", "line 2 has no command letter"),
    (b"Hh\n Pu\nfdfA001h\n", "line 2 has no command letter"),
    (b"Hh\nfdfA001h\nU../../etc/passwd\n", "bad job file name"),
    (b"Hh\nf/etc/passwd\n", "bad job file name"),
    (b"J" + b"x" * 600 + b"\nfdfA001h\n", "line 1 longer than 512"),
    (b"W1\n" * 30000, "larger than 65536"),
])
def test_a_bad_control_file_is_refused_with_a_reason(data: bytes, why: str) -> None:
    with pytest.raises(LpdProtocolError, match=why):
        lpdcontrol.parse(data)


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
_HOSTILE = st.text(st.sampled_from("a \n\r\0\x1b\x7f\x85\t\u2028é\udcff\udc85"), max_size=300)
_NAMES = st.builds(lpd.job_names, st.from_regex(r"\d{1,7}", fullmatch=True),
                   st.text(max_size=40), digits=st.sampled_from([3, 6]),
                   job_class=st.text(max_size=2))


@st.composite
def _fields(draw: st.DrawFn, text: st.SearchStrategy[str]) -> ControlFields:
    names = draw(_NAMES)
    count = draw(st.integers(1, 4))
    files = tuple(DataFile(names.data(i), draw(st.sampled_from("cdfglnoprtv")), draw(text),
                           draw(st.integers(1, 3))) for i in range(count))
    other = tuple(draw(st.lists(st.tuples(st.sampled_from("IMRSWZ1234"), text), max_size=3)))
    return ControlFields(
        host=draw(text) or "h", user=draw(text) or "u", files=files, job_name=draw(text),
        job_class=draw(text), title=draw(text), banner=draw(st.booleans()),
        identifier=draw(text), date=draw(text), queue=draw(text), other=other)


def _as_written(fields: ControlFields, style: Style) -> ControlFields:
    """What a control file of ``style`` can say of ``fields``."""
    if style is not Style.LPRNG:
        fields = fields.replace(identifier="", date="", queue="")
    if style is Style.CUPS and not fields.banner:
        fields = fields.replace(job_class="")
    return fields


@PROPERTY
@given(fields=_fields(_TEXT), style=st.sampled_from(list(Style)))
def test_control_file_round_trip(fields: ControlFields, style: Style) -> None:
    expected = lpdcontrol.cleaned(fields)
    assert lpdcontrol.cleaned(expected) == expected  # cleaning twice changes nothing
    assert lpdcontrol.parse(lpdcontrol.build(fields, style)) == _as_written(expected, style)


@PROPERTY
@given(fields=_fields(_HOSTILE), style=st.sampled_from(list(Style)))
@example(fields=ControlFields(host="h\nPx", user="\0" * 10_000, job_name="\n" * 1000,
                              files=(DataFile("dfA001h", "f", "\udcff" * 500),)),
         style=Style.LPRNG)
def test_no_input_adds_a_line_or_makes_one_too_long(fields: ControlFields, style: Style) -> None:
    cf = lpdcontrol.build(fields, style)
    lines = cf.split(b"\n")
    assert lines.pop() == b""
    f = lpdcontrol.cleaned(fields)  # what is left of each value: empty ones make no line
    expected = 2 + bool(f.job_name) + bool(f.title) + len(f.other)
    expected += sum(data.copies + 1 for data in f.files)  # print lines and U
    expected += {Style.LPRNG: sum(map(bool, (f.job_class, f.identifier, f.date, f.queue))),
                 Style.RFC: bool(f.job_class), Style.CUPS: 0}[style]
    expected += 2 * f.banner if style is Style.CUPS else f.banner
    expected += len(f.files) if style is Style.CUPS else sum(bool(d.source) for d in f.files)
    assert len(lines) == expected
    for line in lines:
        assert len(line) + 1 <= LONGEST_LINE
        assert not any(b < 0x20 or b == 0x7F for b in line), line
    assert lpdcontrol.build(lpdcontrol.parse(cf), style) == cf  # stable as bytes too


@PROPERTY
@given(st.binary(max_size=2000))
def test_any_bytes_parse_to_a_control_file_or_a_protocol_error(data: bytes) -> None:
    try:
        lpdcontrol.parse(data)
    except LpdProtocolError:
        pass


# --- acknowledgements (§3) -------------------------------------------------------------------
@pytest.mark.parametrize(("data", "code", "kind", "permanent"), [
    (b"\0", 0, AckKind.OK, False),
    (b"\x01no connect permissions\n", 1, AckKind.STOP_QUEUE, True),
    (b"\x02", 2, AckKind.RETRY, False),
    (b"\x03bad job\n", 3, AckKind.FAIL, True),
    (b"\x04", 4, AckKind.OTHER, False),
    (b"\xff", 255, AckKind.OTHER, False),
    (b"lpd [@h]: Your host does not have line printer access\n", -1, AckKind.REFUSED, True),
])
def test_ack_classification(data: bytes, code: int, kind: AckKind, permanent: bool) -> None:
    answer = lpd.parse_ack(data)
    assert (answer.code, answer.kind, answer.permanent) == (code, kind, permanent)
    assert answer.ok is (kind is AckKind.OK)


def test_lprng_reason_is_one_line() -> None:
    answer = lpd.parse_ack(
        b"\x03spool queue for 'nosuch' does not exist on server localhost\ncheck for correct"
        b" printer name or you may need to run\n'checkpc -f' to create queue\n")
    assert answer == Ack(3, AckKind.FAIL, "spool queue for 'nosuch' does not exist on server"
                         " localhost check for correct printer name or you may need to run"
                         " 'checkpc -f' to create queue")
    assert answer.words().startswith("job refused (code 3): spool queue for 'nosuch'")
    assert lpd.parse_ack(b"\x02").words() == "try later (code 2)"
    hostile = lpd.parse_ack(b"\x02\x1b[2J" + b"x" * 5000)
    assert hostile.reason.startswith("\\x1b[2J") and len(hostile.reason) == lpd.MAX_REASON
    with pytest.raises(LpdProtocolError, match="closed without"):
        lpd.parse_ack(b"")


def test_server_acks() -> None:
    assert lpd.ack(0) == b"\0"
    assert lpd.ack(1, "queue 'x' is disabled\nnow") == b"\x01queue 'x' is disabled now\n"
    assert lpd.parse_ack(lpd.ack(2, "no space")) == Ack(2, AckKind.RETRY, "no space")
    with pytest.raises(LpdProtocolError):
        lpd.ack(256)


# --- status text (§7.2) ---------------------------------------------------------------------
def test_status_reply_shown_as_lprng_sent_it() -> None:
    reply = (b"Printer: q@localhost (printing disabled)\n Queue: 4 printable jobs\n"
             b"1      alice@clienthost+123         A   123 jobname                  6 22:03:21\n")
    assert lpd.status_lines(reply) == reply.decode().splitlines()
    assert lpd.status_lines(b"no final LF") == ["no final LF"]
    assert lpd.status_lines(b"") == []


def test_status_reply_is_bounded_and_visible() -> None:
    lines = lpd.status_lines(b"\x1b]0;owned\x07\r\n" + b"x" * 10_000 + b"\n" + b"y\n" * 2000)
    assert lines[0] == "\\x1b]0;owned\\x07"
    assert len(lines[1]) == lpd.MAX_STATUS_LINE and lines[1].endswith("...")
    assert len(lines) == lpd.MAX_STATUS_LINES
    assert lines[-1] == "... (1503 more lines)"


@PROPERTY
@given(st.binary(max_size=3000), st.integers(1, 20), st.integers(4, 50))
def test_status_lines_never_exceed_their_bounds(data: bytes, count: int, width: int) -> None:
    lines = lpd.status_lines(data, max_lines=count, max_line=width)
    assert len(lines) <= count
    assert all(len(line) <= width and line.isprintable() for line in lines)


def test_a_job_file_name_gives_its_number_and_host() -> None:
    assert lpd.file_job("cfA634localhost") == (634, "localhost")
    assert lpd.file_job("dfB123456print.example.org") == (123456, "print.example.org")
    for bad in ("cfA12host", "cfA001../x", "xfA001h", "cfA001" + "h" * 200):
        with pytest.raises(LpdProtocolError, match="bad job file name"):
            lpd.file_job(bad)


def test_a_job_file_name_has_a_length_limit() -> None:
    longest = "dfA001" + "h" * (lpd.MAX_FILE_NAME - 6)
    lpd.check_file_name(longest)
    with pytest.raises(LpdProtocolError, match="bad job file name"):
        lpd.check_file_name(longest + "h")
    with pytest.raises(LpdProtocolError, match="bad job file name"):
        lpd.parse_subcommand(b"\x0310 " + longest.encode() + b"h\n")


def _clean_by_character(value: str, limit: int, name: bool) -> str:
    """The rule of ``lpdcontrol.clean``, one character at a time (its loop, without the
    shortcut it takes for what lpr sends)."""
    out, size = "", 0
    for c in value if name else value.lstrip():
        keep = (c.isprintable() and not (name and c.isspace())) or "\udca0" <= c <= "\udcff"
        c = c if keep else "_"
        width = len(c.encode("utf-8", "surrogateescape"))
        if size + width > limit:
            break
        out, size = out + c, size + width
    return out


@PROPERTY
@given(value=st.one_of(st.text(st.characters(max_codepoint=0x7F), max_size=140), _HOSTILE),
       limit=st.integers(0, 140), name=st.booleans())
@example(value=" lpr's user", limit=131, name=False)
@example(value="a b", limit=31, name=True)
@example(value="x" * 32, limit=31, name=False)
def test_clean_keeps_to_its_rule_on_every_input(value: str, limit: int, name: bool) -> None:
    assert lpdcontrol.clean(value, limit, name=name) == _clean_by_character(value, limit, name)
