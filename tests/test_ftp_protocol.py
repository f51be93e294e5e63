"""The FTP control-connection bytes as pure functions (lpfilter.protocols.ftp), the reply
to error mapping and the session-slot names (lpfilter.backends.ftpsession), and the login
rules (lpfilter.backends.ftpauth) against real files. No network here."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from lpfilter.backends.ftpauth import Credentials, credentials
from lpfilter.backends.ftpsession import failure, slot_paths
from lpfilter.backends.settings import FtpSettings
from lpfilter.errors import ConfigError, JobRefused, PrinterBusy, TransientError
from lpfilter.printcap import load
from lpfilter.printcap.destination import Ftp, classify
from lpfilter.protocols import ftp
from lpfilter.protocols.ftp import (MAX_LINE, MAX_LINES, MAX_STORE_NAME, ProtocolError, Reply,
                                    ReplyReader, command, eprt_argument, parse_epsv, parse_pasv,
                                    port_argument, store_name)

SAFE = re.compile(r"[A-Za-z0-9._-]+")


# --- replies ----------------------------------------------------------------------------
def test_single_line_replies_come_out_complete_and_in_order() -> None:
    reader = ReplyReader()
    replies = reader.feed(b"220 JetDirect ready\r\n331 Password please\r\n230\r\n")
    assert replies == [Reply(220, "JetDirect ready"), Reply(331, "Password please"),
                       Reply(230, "")]
    assert [r.kind for r in replies] == [2, 3, 2]


def test_multi_line_reply_ends_only_at_its_own_code_with_a_space() -> None:
    reader = ReplyReader()
    data = (b"230-Welcome to the print server\r\n"
            b"  indented text\r\n"
            b"220 a line that looks like another reply\r\n"
            b"230-still inside\r\n"
            b"230 Logged in.\r\n")
    assert reader.feed(data) == [Reply(230, "Welcome to the print server indented text"
                                            " 220 a line that looks like another reply"
                                            " 230-still inside Logged in.")]
    # And the reader is back to normal for the next reply.
    assert reader.feed(b"200 ok\n") == [Reply(200, "ok")]


def test_replies_split_across_feeds_byte_by_byte_are_the_same() -> None:
    data = b"220 hi\r\n150-Opening\r\n more\r\n150 data now\r\n226 Transfer complete.\r\n"
    whole = ReplyReader().feed(data)
    reader = ReplyReader()
    pieces: list[Reply] = []
    for i in range(len(data)):
        pieces.extend(reader.feed(data[i:i + 1]))
    assert pieces == whole == [Reply(220, "hi"), Reply(150, "Opening more data now"),
                               Reply(226, "Transfer complete.")]
    assert ReplyReader().feed(b"226 half") == []  # nothing until the line ends


def test_a_line_without_end_longer_than_the_limit_is_refused() -> None:
    reader = ReplyReader()
    assert reader.feed(b"220 " + b"x" * (MAX_LINE - 4)) == []  # at the limit: still waiting
    with pytest.raises(ProtocolError, match="longer than"):
        reader.feed(b"xx")


def test_an_overlong_line_is_refused_however_it_arrives() -> None:
    """The limit is the line's length, not the way the bytes were cut into reads: the same
    overlong line is refused when it arrives whole (with its CRLF) as when it arrives in
    pieces. BUG: a line that comes with its newline in one read is accepted at any length."""
    line = b"220 " + b"x" * (MAX_LINE + 100) + b"\r\n"
    with pytest.raises(ProtocolError):
        ReplyReader().feed(line[:MAX_LINE + 50])  # in pieces: refused
    with pytest.raises(ProtocolError):
        ReplyReader().feed(line)  # whole: must be refused as well


def test_a_multi_line_reply_that_never_ends_is_refused() -> None:
    reader = ReplyReader()
    reader.feed(b"220-start\r\n")
    with pytest.raises(ProtocolError, match="does not end"):
        for _ in range(MAX_LINES + 5):
            reader.feed(b"just more text\r\n")


@pytest.mark.parametrize("line", [b"hello\r\n", b"22 short\r\n", b"2200 four digits\r\n",
                                  b"abc text\r\n", b"\r\n", b"220x\r\n"])
def test_bytes_that_are_not_a_reply_are_refused(line: bytes) -> None:
    with pytest.raises(ProtocolError, match="not an FTP reply"):
        ReplyReader().feed(line)


def test_reply_words_are_one_printable_bounded_line() -> None:
    reply = Reply(550, "No\tsuch\x1b[31m file \x00" + "y" * 400)
    words = reply.words(80)
    assert words.startswith("550 No such [31m file") and words.endswith("...")
    assert len(words) <= 84 and words.isprintable()


# --- commands ---------------------------------------------------------------------------
def test_command_lines_end_in_crlf_and_carry_utf8_arguments() -> None:
    assert command("QUIT") == b"QUIT\r\n"
    assert command("TYPE", "I") == b"TYPE I\r\n"
    assert command("STOR", "Grüße.ps") == "STOR Grüße.ps\r\n".encode()


@pytest.mark.parametrize("argument", ["a\r\nDELE x", "name\n", "\rname", "a\x00b",
                                      "PORT1\r\nSTOR /etc/passwd"])
def test_an_argument_that_could_end_the_line_is_refused(argument: str) -> None:
    with pytest.raises(ValueError, match="line break or NUL"):
        command("CWD", argument)


def test_port_and_eprt_arguments() -> None:
    assert port_argument("127.0.0.1", 1025) == "127,0,0,1,4,1"
    assert port_argument("10.1.2.3", 65535) == "10,1,2,3,255,255"
    assert eprt_argument("::1", 50000) == "|2|::1|50000|"


# --- passive mode -----------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("Entering Passive Mode (127,0,0,1,4,1).", ("127.0.0.1", 1025)),
    ("Entering passive mode (192,168,1,20,255,255)", ("192.168.1.20", 65535)),
    ("=10,0,0,9,0,21", ("10.0.0.9", 21)),  # RFC 1123: the parentheses are optional
])
def test_pasv_replies_give_an_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_pasv(text) == expected


@pytest.mark.parametrize("text", ["Entering Passive Mode", "(127,0,0,1,4)",
                                  "(127,0,0,256,4,1)", "(127,0,0,1,4,300)", ""])
def test_bad_pasv_replies_are_a_protocol_error(text: str) -> None:
    with pytest.raises(ProtocolError):
        parse_pasv(text)


@pytest.mark.parametrize(("text", "port"), [
    ("Entering Extended Passive Mode (|||6446|)", 6446),
    ("EPSV ok (!!!1!)", 1), ("(###65535#)", 65535)])
def test_epsv_replies_give_a_port(text: str, port: int) -> None:
    assert parse_epsv(text) == port


@pytest.mark.parametrize("text", ["Entering Extended Passive Mode", "(|||0|)", "(|||65536|)",
                                  "(||6446|)", "(|||6446)", "(|!|6446|)", "(|||abc|)"])
def test_bad_epsv_replies_are_a_protocol_error(text: str) -> None:
    with pytest.raises(ProtocolError, match="EPSV"):
        parse_epsv(text)


# --- store names ------------------------------------------------------------------------
HOSTILE = ["report.pdf", "it's \"quoted\".ps", "two\nlines\r\n.txt", "../../etc/passwd",
           "..\\..\\windows\\x.prn", "$(rm -rf ~); `id` | tee >x & echo;*?.ps",
           "-rf", "...", "", "Grüße – 履歴書.pdf", "a" * 5000 + ".ps", "\x00\x1b[2J\x7f",
           "STOR x\r\nDELE y", " leading and trailing spaces "]


@pytest.mark.parametrize("name", HOSTILE)
def test_store_name_of_a_hostile_job_name_is_safe_and_short(name: str) -> None:
    stored = store_name("lp", "000042", name)
    assert SAFE.fullmatch(stored), stored
    assert stored.startswith("lp-000042") and len(stored) <= MAX_STORE_NAME
    assert not stored.startswith(("-", ".")) and "/" not in stored
    command("STOR", stored)  # a valid command argument


def test_store_name_keeps_a_short_form_of_the_name() -> None:
    assert store_name("lp", "000007", "/home/ann/Quarterly report.pdf") == \
        "lp-000007-Quarterly_report.pdf"
    assert store_name("q", "000001", "../../etc/passwd") == "q-000001-passwd"
    assert store_name("lp", "000002", "...") == "lp-000002"
    assert store_name("my queue!", "000003", "x") == "my_queue-000003-x"


def test_store_names_are_unique_per_job_id_whatever_the_job_name() -> None:
    for name in HOSTILE:
        names = {store_name("lp", f"{n:06d}", name) for n in range(1, 300)}
        assert len(names) == 299, name
    long_ids = {store_name("lp", str(10**6 + n), "a" * 100) for n in range(50)}
    assert len(long_ids) == 50


# --- reply -> error ---------------------------------------------------------------------
WHERE = "ftp://127.0.0.1:2121/PORT1"


def test_reply_codes_map_to_busy_transient_and_permanent_errors() -> None:
    busy = failure(Reply(421, "Service not available, too many sessions."), WHERE, "connect")
    assert isinstance(busy, PrinterBusy) and "421" in busy.message and WHERE in busy.message
    for code in (425, 426, 450, 451, 452):
        error = failure(Reply(code, "try later"), WHERE, "STOR x")
        assert isinstance(error, TransientError) and not isinstance(error, PrinterBusy)
        assert f"{code} try later" in error.message
    login = failure(Reply(530, "Login incorrect."), WHERE, "login as bob")
    assert isinstance(login, JobRefused)
    assert "530 Login incorrect." in login.message and "login refused" in login.message
    nodir = failure(Reply(550, "No such file or directory."), WHERE, "CWD NOPE")
    assert isinstance(nodir, JobRefused) and "no such directory" in nodir.message
    denied = failure(Reply(553, "Not allowed."), WHERE, "STOR x")
    assert isinstance(denied, JobRefused) and "no such directory" not in denied.message
    odd = failure(Reply(331, "more please"), WHERE, "TYPE I")
    assert isinstance(odd, TransientError) and "unexpected reply 331" in odd.message
    for error in (busy, login, nodir, denied, odd):
        assert "\n" not in error.message and WHERE in error.message


def test_slot_paths_are_per_server_and_live_in_the_lock_dir(tmp_path: Path) -> None:
    paths = slot_paths(str(tmp_path), "127.0.0.1", 2121, 3)
    assert len(set(paths)) == 3 and all(os.path.dirname(p) == str(tmp_path) for p in paths)
    assert paths == slot_paths(str(tmp_path), "127.0.0.1", 2121, 3)  # every process agrees
    assert slot_paths(str(tmp_path), "127.0.0.1", 2121, 1) == paths[:1]
    assert set(paths).isdisjoint(slot_paths(str(tmp_path), "127.0.0.1", 2122, 3))
    assert slot_paths(str(tmp_path), "PRINTER.example", 21, 1) == slot_paths(
        str(tmp_path), "printer.example", 21, 1)


# --- who logs in ------------------------------------------------------------------------
def _entry(tmp_path: Path, lp: str, options: str = "") -> tuple[Ftp, FtpSettings]:
    """The destination and the FTP settings of queue ``q`` with ``lp`` and ``options``."""
    pc = tmp_path / "printcap"
    pc.write_text(f"q:lp={lp}:sd={tmp_path}{options}\n")
    entry = load([str(pc)]).lookup("q")
    destination = entry.destination()
    assert isinstance(destination, Ftp)
    return destination, FtpSettings.from_entry(entry)


def _private(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_credentials_from_lp_then_keys_then_netrc_then_anonymous(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    dest, entry = _entry(tmp_path, "ftp\\://bob\\:pw1@h.example/PORT1")
    assert credentials(dest, entry, env) == Credentials("bob", "pw1", "lp")
    secret = _private(tmp_path / "pw", "pw2\nignored\n")
    dest, entry = _entry(tmp_path, "ftp\\://h.example/PORT1",
                         f":ftp_user=carol:ftp_password_file={secret}")
    assert credentials(dest, entry, env) == Credentials("carol", "pw2", "ftp_user")
    netrc = _private(tmp_path / "nrc", "machine h.example login dave password pw3\n"
                                        "default login eve password pw4\n")
    dest, entry = _entry(tmp_path, "ftp\\://h.example/PORT1")
    assert credentials(dest, entry, {**env, "NETRC": str(netrc)}) == Credentials(
        "dave", "pw3", f"netrc {netrc}")
    dest, entry = _entry(tmp_path, "ftp\\://other.example/PORT1")
    assert credentials(dest, entry, {**env, "NETRC": str(netrc)}).user == "eve"
    dest, entry = _entry(tmp_path, "ftp\\://h.example/PORT1", f":ftp_password_file={secret}")
    assert credentials(dest, entry, env) == Credentials("anonymous", "pw2", "ftp_password_file")
    dest, entry = _entry(tmp_path, "ftp\\://h.example/PORT1")
    assert credentials(dest, entry, env) == Credentials("anonymous", "lpfilter@", "anonymous")
    assert "pw" not in repr(Credentials("x", "pw-secret"))


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_netrc_or_password_file_others_can_read_is_refused(tmp_path: Path,
                                                             mode: int) -> None:
    netrc = _private(tmp_path / ".netrc", "machine h.example login a password b\n", mode)
    dest, entry = _entry(tmp_path, "ftp\\://h.example/PORT1")
    with pytest.raises(ConfigError, match=f"chmod 600 {re.escape(str(netrc))}"):
        credentials(dest, entry, {"HOME": str(tmp_path)})
    secret = _private(tmp_path / "pw", "b\n", mode)
    dest, entry = _entry(tmp_path, "ftp\\://h.example/PORT1",
                         f":ftp_user=a:ftp_password_file={secret}")
    with pytest.raises(ConfigError, match=f"chmod 600 {re.escape(str(secret))}") as caught:
        credentials(dest, entry, {"HOME": str(tmp_path)})
    assert "b\n" not in caught.value.message


def test_display_of_an_ftp_destination_masks_the_password() -> None:
    dest = classify("ftp\\://bob\\:Sekr3t-pw@127.0.0.1\\:2121/PORT1", queue="q")
    assert isinstance(dest, Ftp) and dest.password == "Sekr3t-pw"
    assert dest.display() == "ftp://bob:***@127.0.0.1:2121/PORT1"
    assert "Sekr3t" not in repr(dest) and "Sekr3t" not in str(dest)
    assert ftp.command("PASS", dest.password) == b"PASS Sekr3t-pw\r\n"
