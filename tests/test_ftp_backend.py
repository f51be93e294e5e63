"""The FTP backend (``lp=ftp://``) end to end against the JetDirect FTP emulator (a real
pyftpdlib server on 127.0.0.1, port 0, in a thread): ``lpfilter print`` and ``watch
--once`` run in this process (``lpfilter.cli.main``), one big job through the installed
``lpfilter`` program. Checked in what the server received, the ticket, the queue's log,
status and accounting, and the command's output. Every wait is bounded."""
from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from ftpkit import FtpQueue, MakeServer, ftp_queue, ftp_server, hang_guard, wait_until  # noqa: F401

PASSWORD = "Pw-7f3a9Zq"  # distinctive: found anywhere it must not be


def received(server_file: object) -> bytes:
    return Path(server_file.path).read_bytes()  # type: ignore[attr-defined]


# --- bytes ------------------------------------------------------------------------------
def test_binary_file_arrives_byte_for_byte(ftp_queue: FtpQueue, ftp_server: MakeServer) -> None:
    """All 256 byte values and every line-end pair: image type, never translated."""
    server = ftp_server()
    ftp_queue.setup(server.lp())
    data = (b"\r\n" + bytes(range(256)) * 3 + b"\r\n\n\r\r\n\n\n\r\r" + bytes(range(255, -1, -1))
            + b"line\r\nline\nline\rline\n\r" + b"\x00" * 10 + b"\x1a\x04\xff\r")
    run = ftp_queue.print(data)
    assert run.rc == 0, run.err
    (stored,) = server.files(1)
    assert received(stored) == data and stored.size == len(data)
    assert stored.directory == "PORT1" and stored.name == "q-000001-doc0"
    job = ftp_queue.job()
    assert (job.state, job.attempts, job.bytes_sent, job.delivery) == (
        "done", 1, len(data), "sent")
    assert ("TYPE", "I") in server.seen.commands and ("TYPE", "A") not in server.seen.commands
    assert server.seen.verbs().index("TYPE") < server.seen.verbs().index("STOR")
    acct = ftp_queue.text("acct")
    assert f"bytes={len(data)}" in acct and "outcome=done" in acct and "delivery=sent" in acct


def test_a_hostile_job_name_is_stored_under_a_safe_name(ftp_queue: FtpQueue,
                                                        ftp_server: MakeServer) -> None:
    server = ftp_server()
    ftp_queue.setup(server.lp())
    run = ftp_queue.print(b"x\n")
    assert run.rc == 0
    doc = ftp_queue.file(b"evil\n", "evil")
    run = ftp_queue.run("print", "-P", "q", "-J", "../../x\r\nDELE y;$(id) Grüße", str(doc))
    assert run.rc == 0, run.err
    names = [job.name for job in server.files(2)]
    assert names == ["q-000001-doc0", "q-000002-x_DELE_y_id_Gr_e"]
    assert all(os.path.dirname(job.path) == str(server.out / "PORT1")
               for job in server.files(2))
    assert not any(verb == "DELE" for verb in server.seen.verbs())


def _lpfilter_peak_rss(queue: FtpQueue, path: Path) -> int:
    """Run the installed lpfilter program on ``path`` in a child of a small wrapper process;
    the wrapper reports its children's peak RSS (KiB): the lpfilter process alone."""
    program = str(Path(sys.executable).with_name("lpfilter"))
    wrapper = ("import resource, subprocess, sys\n"
               "rc = subprocess.run(sys.argv[1:], timeout=120).returncode\n"
               "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    done = subprocess.run([sys.executable, "-c", wrapper, program, "print", "-P", "q",
                           str(path)], env={**os.environ, **queue.env}, capture_output=True,
                          text=True, timeout=150, check=False)
    assert done.returncode == 0, done.stderr
    rc, peak = done.stdout.split()[-2:]
    assert rc == "0", done.stderr
    return int(peak)


def test_a_large_file_is_streamed_with_flat_memory(ftp_queue: FtpQueue,
                                                   ftp_server: MakeServer) -> None:
    if not Path(sys.executable).with_name("lpfilter").exists():
        pytest.skip("the lpfilter program is not installed beside this python")
    server = ftp_server()
    ftp_queue.setup(server.lp())
    big = ftp_queue.root / "big.bin"
    size, digest = 0, hashlib.sha256()
    with open(big, "wb") as handle:
        block = os.urandom(1 << 20)
        for n in range(96):  # 96 MiB, every MiB different
            chunk = n.to_bytes(4, "big") + block[4:]
            handle.write(chunk)
            digest.update(chunk)
            size += len(chunk)
    small = ftp_queue.file(b"small job\n", "small")
    baseline = _lpfilter_peak_rss(ftp_queue, small)
    peak = _lpfilter_peak_rss(ftp_queue, big)
    stored = server.files(2)
    assert [job.size for job in stored] == [10, size]
    with open(stored[1].path, "rb") as handle:
        copy = hashlib.sha256()
        while chunk := handle.read(1 << 20):
            copy.update(chunk)
    assert copy.hexdigest() == digest.hexdigest()
    jobs = ftp_queue.jobs()
    assert [(j.state, j.bytes_sent) for j in jobs] == [("done", 10), ("done", size)]
    # The file is 96 MiB; the process that spooled and sent it grew by a few MiB at most.
    assert peak - baseline < 24 * 1024, (baseline, peak)
    assert peak < (size >> 10) // 2, (baseline, peak)


# --- sessions ---------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["print", "watch --once"])
def test_a_batch_uses_one_session_and_quits_at_the_end(ftp_queue: FtpQueue,
                                                       ftp_server: MakeServer,
                                                       how: str) -> None:
    server = ftp_server()
    ftp_queue.setup(server.lp())
    docs = [b"job one\n", b"job two\r\n", b"job three\x00\xff"]
    if how == "print":
        run = ftp_queue.print(*docs)
    else:
        paths = [str(ftp_queue.file(d, f"doc{n}")) for n, d in enumerate(docs)]
        assert ftp_queue.run("print", "--no-wait", "-P", "q", *paths).rc == 0
        assert server.seen.logins == []
        run = ftp_queue.run("watch", "--once", "-P", "q")
    assert run.rc == 0, run.err
    assert [received(job) for job in server.files(3)] == docs
    assert [job.attempts for job in ftp_queue.jobs()] == [1, 1, 1]
    assert server.seen.logins == ["anonymous"] and server.printer.peak_sessions == 1
    assert server.seen.verbs().count("USER") == 1 and server.seen.verbs().count("STOR") == 3
    assert server.seen.verbs()[-1] == "QUIT"  # sent before the command ended
    wait_until(lambda: server.printer.active_sessions == 0, what="the session to end")
    # The server notes the logout in its own thread, a moment after the session ends.
    wait_until(lambda: server.seen.logouts == ["anonymous"], what="the logout")


# --- failures ---------------------------------------------------------------------------
def test_wrong_password_fails_the_job_with_530_and_never_shows_it(
        ftp_queue: FtpQueue, ftp_server: MakeServer) -> None:
    server = ftp_server(password="the-right-one")
    ftp_queue.setup(server.lp(user="bob", password=PASSWORD))
    run = ftp_queue.print(b"not for you\n", opts=("-vv",))
    job = ftp_queue.job()
    assert run.rc == 6 and (job.state, job.attempts, job.bytes_sent) == ("failed", 1, 0)
    host = f"127.0.0.1:{server.port}"
    assert "530" in job.last_error and host in job.last_error
    assert "login refused" in job.last_error and "login as bob" in job.last_error
    assert server.complete() == [] and server.seen.verbs().count("USER") == 1  # no retry
    status = ftp_queue.run("status", "-P", "q")
    assert "530" in ftp_queue.text("log") and "530" in run.err
    for text in (run.err, run.out, status.out, status.err, ftp_queue.every_file()):
        assert PASSWORD not in text
    assert f"bob:***@{host}" in run.err


@pytest.mark.parametrize("lp", ["PORT1%0D%0ADELE%20x", "PORT1%0ADELE x", "PORT1%00"])
def test_a_line_break_in_the_lp_path_is_never_sent(ftp_queue: FtpQueue,
                                                   ftp_server: MakeServer, lp: str) -> None:
    server = ftp_server()
    ftp_queue.setup(server.lp(lp))
    run = ftp_queue.print(b"injected?\n")
    job = ftp_queue.job()
    assert run.rc == 6 and (job.state, job.attempts) == ("failed", 1)
    assert "line break or NUL" in job.last_error
    assert "DELE" not in server.seen.verbs() and "CWD" not in server.seen.verbs()


def test_missing_directory_fails_with_550(ftp_queue: FtpQueue,
                                          ftp_server: MakeServer) -> None:
    server = ftp_server()
    ftp_queue.setup(server.lp("NOPE"))
    run = ftp_queue.print(b"nowhere\n")
    job = ftp_queue.job()
    assert run.rc == 6 and (job.state, job.attempts) == ("failed", 1)
    assert "550" in job.last_error and "no such directory" in job.last_error
    assert "CWD NOPE" in job.last_error and f"127.0.0.1:{server.port}" in job.last_error
    assert "no such directory" in run.err and server.printer.jobs == []
    assert "STOR" not in server.seen.verbs()


# --- active mode ------------------------------------------------------------------------
def test_passive_refused_then_active_mode_prints(ftp_queue: FtpQueue,
                                                 ftp_server: MakeServer) -> None:
    server = ftp_server(passive=False)
    ftp_queue.setup(server.lp())
    docs = [bytes(range(256)) * 40, b"second\r\n"]
    run = ftp_queue.print(*docs, opts=("-v",))
    assert run.rc == 0, run.err
    assert [received(job) for job in server.files(2)] == docs
    assert [j.attempts for j in ftp_queue.jobs()] == [1, 1]
    log = ftp_queue.text("log")
    assert log.count("passive mode refused (500") == 1 and "using active mode" in log
    assert "using active mode" in run.err  # the process log (-v) says it too
    verbs = server.seen.verbs()
    assert verbs.count("PASV") == 1 and verbs.count("PORT") == 2  # then stays active
    assert server.seen.logins == ["anonymous"]


def test_ftp_active_uses_port_from_the_start(ftp_queue: FtpQueue,
                                             ftp_server: MakeServer) -> None:
    server = ftp_server()
    ftp_queue.setup(server.lp(), "ftp_active")
    run = ftp_queue.print(b"active\n")
    assert run.rc == 0, run.err
    assert [received(job) for job in server.files(1)] == [b"active\n"]
    verbs = server.seen.verbs()
    assert "PORT" in verbs and "PASV" not in verbs and "EPSV" not in verbs
    assert "passive" not in ftp_queue.text("log")


@pytest.mark.parametrize("passive", [True, False])
def test_ipv6_loopback_uses_epsv_or_eprt(ftp_queue: FtpQueue, ftp_server: MakeServer,
                                         passive: bool) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no ::1 on this machine")
    server = ftp_server(host="::1", passive=passive)
    ftp_queue.setup(server.lp())
    data = bytes(range(256)) * 64
    run = ftp_queue.print(data)
    assert run.rc == 0, run.err
    assert [received(job) for job in server.files(1)] == [data]
    verbs = server.seen.verbs()
    assert verbs.count("EPSV") == 1 and "PASV" not in verbs  # tried first either way
    assert ("EPRT" in verbs) != passive and "PORT" not in verbs
    assert ("passive mode refused" in ftp_queue.text("log")) != passive


# --- the password -----------------------------------------------------------------------
def test_password_is_in_no_log_status_ticket_or_output(ftp_queue: FtpQueue,
                                                       ftp_server: MakeServer) -> None:
    server = ftp_server(password=PASSWORD)
    ftp_queue.setup(server.lp(user="bob", password=PASSWORD))
    run = ftp_queue.print(b"secret job\n", opts=("--debug",))
    assert run.rc == 0, run.err
    assert server.seen.logins == ["bob"] and len(server.files(1)) == 1
    assert "> PASS ***" in run.err and "> USER bob" in run.err  # the debug log is there
    shown = {" ".join(argv): ftp_queue.run("--debug", *argv) for argv in (
        ["status", "-P", "q"], ["printcap", "-P", "q"], ["printcap", "--json", "-P", "q"],
        ["checkpc"])}
    assert f"lp=ftp\\://bob\\:***@127.0.0.1\\:{server.port}/PORT1" in shown[
        "printcap -P q"].out
    assert "bob\\\\:***@" in shown["printcap --json -P q"].out  # JSON escapes the backslash
    texts = [run.out, run.err, ftp_queue.every_file()]
    texts += [text for result in shown.values() for text in (result.out, result.err)]
    for text in texts:
        assert PASSWORD not in text


def test_a_percent_encoded_password_logs_in_and_is_hidden_in_both_forms(
        ftp_queue: FtpQueue, ftp_server: MakeServer) -> None:
    password = "p@ss:w/rd%Z9"
    encoded = "p%40ss%3Aw%2Frd%25Z9"
    server = ftp_server(password=password)
    ftp_queue.setup(server.lp(user="bob", password=encoded))
    run = ftp_queue.print(b"encoded\n", opts=("--debug",))
    assert run.rc == 0, run.err
    assert server.seen.logins == ["bob"]
    shown = ftp_queue.run("printcap", "-P", "q")
    for text in (run.err, shown.out, ftp_queue.every_file()):
        assert password not in text and encoded not in text and "p@ss" not in text


@pytest.mark.parametrize("delimiter", ["/", "#", "?"])
def test_a_password_with_an_unencoded_uri_delimiter_logs_in_and_is_never_shown(
        ftp_queue: FtpQueue, ftp_server: MakeServer, delimiter: str) -> None:
    """A password with '/', '#' or '?' left unencoded: the user information runs to the
    last '@', so the job logs in with it; the log, status, printcap and checkpc still hide
    the password (and the part of it before the delimiter)."""
    password = f"Qx7Zr{delimiter}cr3t-9"
    server = ftp_server(password=password)
    ftp_queue.setup(server.lp(user="bob", password=password))
    run = ftp_queue.print(b"sent with a strange password\n", opts=("--debug",))
    assert run.rc == 0, run.err
    assert server.seen.logins == ["bob"]
    assert ftp_queue.job().state == "done"
    texts = [run.err, ftp_queue.every_file()]
    for argv in (["status", "-P", "q"], ["printcap", "-P", "q"], ["checkpc"]):
        result = ftp_queue.run(*argv)
        texts += [result.out, result.err]
    leaked = [text for text in texts if "Qx7Zr" in text]
    assert not leaked, leaked[0]


def test_unescaped_uri_is_read_and_checkpc_masks_the_password(ftp_queue: FtpQueue,
                                                              ftp_server: MakeServer) -> None:
    server = ftp_server(password=PASSWORD)
    ftp_queue.setup(server.lp(user="bob", password=PASSWORD, escaped=False))
    run = ftp_queue.print(b"unescaped\n", opts=("--debug",))
    assert run.rc == 0, run.err
    assert server.seen.logins == ["bob"] and len(server.files(1)) == 1
    check = ftp_queue.run("checkpc")
    shown = ftp_queue.run("printcap", "-P", "q")
    assert f"lp=ftp\\://bob\\:***@127.0.0.1\\:{server.port}/PORT1" in check.out
    assert "lp=ftp" in shown.out and "***" in shown.out
    for text in (run.err, run.out, check.out, check.err, shown.out, shown.err,
                 ftp_queue.every_file()):
        assert PASSWORD not in text


# --- credentials ------------------------------------------------------------------------
def test_ftp_user_and_password_file_log_in(ftp_queue: FtpQueue,
                                           ftp_server: MakeServer) -> None:
    server = ftp_server(password=PASSWORD)
    secret = ftp_queue.root / "ftp-password"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    ftp_queue.setup(server.lp(), f"ftp_user=printer:ftp_password_file={secret}")
    run = ftp_queue.print(b"with a password file\n", opts=("-v",))
    assert run.rc == 0, run.err
    assert server.seen.logins == ["printer"] and "(ftp_user)" in run.err
    assert PASSWORD not in run.err + ftp_queue.every_file()


def test_netrc_from_the_netrc_variable_is_used_when_lp_has_no_user(
        ftp_queue: FtpQueue, ftp_server: MakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server = ftp_server(password=PASSWORD)
    netrc = ftp_queue.root / "my-netrc"
    netrc.write_text(f"machine 127.0.0.1 login nettie password {PASSWORD}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    ftp_queue.env["NETRC"] = str(netrc)
    ftp_queue.setup(server.lp())
    run = ftp_queue.print(b"netrc\n", opts=("-v",))
    assert run.rc == 0, run.err
    assert server.seen.logins == ["nettie"] and f"(netrc {netrc})" in run.err
    assert PASSWORD not in run.err + ftp_queue.every_file()


def test_netrc_readable_by_others_fails_the_job_naming_the_file(
        ftp_queue: FtpQueue, ftp_server: MakeServer) -> None:
    server = ftp_server()
    netrc = ftp_queue.root / ".netrc"  # $HOME/.netrc
    netrc.write_text(f"machine 127.0.0.1 login nettie password {PASSWORD}\n")
    netrc.chmod(0o644)
    ftp_queue.setup(server.lp())
    run = ftp_queue.print(b"refused\n")
    job = ftp_queue.job()
    assert run.rc == 6 and (job.state, job.attempts) == ("failed", 1)
    assert str(netrc) in job.last_error and f"chmod 600 {netrc}" in job.last_error
    assert server.seen.logins == [] and server.printer.peak_sessions == 0
    assert PASSWORD not in run.err + ftp_queue.every_file()


def test_anonymous_by_default(ftp_queue: FtpQueue, ftp_server: MakeServer) -> None:
    server = ftp_server()
    ftp_queue.setup(server.lp())
    run = ftp_queue.print(b"anyone\n", opts=("-v",))
    assert run.rc == 0, run.err
    assert server.seen.logins == ["anonymous"]
    assert ("USER", "anonymous") in server.seen.commands
    assert "logged in as anonymous (anonymous)" in run.err
