"""A real FTP server (Debian's vsftpd) as the print server: a job arrives byte for byte;
its disk full (a 64 KiB tmpfs mounted in vsftpd's own mount namespace) keeps the job
queued with the server's words; its session killed mid-transfer keeps the job queued as a
possible duplicate. vsftpd runs as root in the foreground with its own configuration on
127.0.0.1 (anonymous upload into ``PORT1``, a private secure_chroot_dir) and is stopped by
its pid. CI installs vsftpd (.ci/run); without it these tests fail and say so."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from ftpkit import FtpQueue, ftp_queue, hang_guard, wait_until  # noqa: F401

VSFTPD = "/usr/sbin/vsftpd"

CONFIG = """\
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port={port}
background=NO
anonymous_enable=YES
no_anon_password=YES
local_enable=NO
write_enable=YES
anon_upload_enable=YES
anon_umask=022
anon_root={root}
secure_chroot_dir={empty}
anon_max_rate={rate}
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
connect_from_port_20=NO
pasv_enable=YES
xferlog_enable=NO
syslog_enable=NO
vsftpd_log_file={log}
"""


@dataclass
class Vsftpd:
    proc: subprocess.Popen[bytes]
    port: int
    upload: Path
    log: Path

    def lp(self) -> str:
        return f"ftp\\://127.0.0.1\\:{self.port}/PORT1"

    def sessions(self) -> list[psutil.Process]:
        """vsftpd's per-connection processes (the listener forks one or two a session)."""
        return psutil.Process(self.proc.pid).children(recursive=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


MakeVsftpd = Callable[..., Vsftpd]


def _stop(server: Vsftpd) -> None:
    """Kill the sessions, then the listener, and always reap it: a session may end by itself
    between being listed and being killed, which must not leave the listener unreaped (its
    Popen would warn later, inside some other test)."""
    try:
        for child in server.sessions() if server.proc.poll() is None else []:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
    except psutil.NoSuchProcess:
        pass  # the listener itself is gone: nothing left to list
    finally:
        server.proc.terminate()
        server.proc.wait(timeout=10)
        server.proc.stdout.close()  # type: ignore[union-attr]


@pytest.fixture
def vsftpd(tmp_path: Path) -> Iterator[MakeVsftpd]:
    """vsftpd(rate=0, tmpfs=None): started and listening; ``tmpfs`` (a size such as "64k")
    mounts a tmpfs of that size on the upload directory in vsftpd's private mount
    namespace (unshare -m), so the host never sees it."""
    if not os.path.exists(VSFTPD):
        pytest.fail("vsftpd is not installed: apt-get install vsftpd (.ci/run does it)")
    if os.geteuid() != 0:
        pytest.fail("vsftpd needs root here (it chroots anonymous sessions); run as root")
    started: list[Vsftpd] = []

    def make(*, rate: int = 0, tmpfs: str | None = None) -> Vsftpd:
        base = tmp_path / f"vsftpd{len(started)}"
        root, empty, upload = base / "root", base / "empty", base / "root" / "PORT1"
        upload.mkdir(parents=True)
        empty.mkdir()
        upload.chmod(0o777)
        root.chmod(0o555)  # vsftpd refuses a chroot its user could write to
        empty.chmod(0o555)
        port = _free_port()
        config = base / "vsftpd.conf"
        log = base / "vsftpd.log"
        config.write_text(CONFIG.format(port=port, root=root, empty=empty, rate=rate, log=log))
        argv = [VSFTPD, str(config)]
        if tmpfs is not None:
            mount = (f"mount -t tmpfs -o size={tmpfs},mode=0777 lpfilter-test {upload}"
                     f' && exec "$0" "$1"')
            argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", mount, *argv]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        server = Vsftpd(proc, port, upload, log)
        started.append(server)
        deadline = time.monotonic() + 10
        while not _listening(port):
            assert proc.poll() is None, proc.stdout.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "vsftpd did not start listening"
            time.sleep(0.05)
        return server

    yield make
    for server in started:
        _stop(server)
    for server in started:
        shutil.rmtree(server.upload.parent.parent, ignore_errors=True)


def test_a_job_reaches_vsftpd_byte_for_byte(ftp_queue: FtpQueue, vsftpd: MakeVsftpd) -> None:
    server = vsftpd()
    ftp_queue.setup(server.lp())
    data = bytes(range(256)) * 1024 + b"\r\n\n\r\x00\x1a" + os.urandom(100_000)
    run = ftp_queue.print(data)
    assert run.rc == 0, run.err
    (stored,) = list(server.upload.iterdir())
    assert stored.name == "q-000001-doc0" and stored.read_bytes() == data
    job = ftp_queue.job()
    assert (job.state, job.bytes_sent, job.possible_duplicate) == ("done", len(data), False)


def test_vsftpds_disk_full_keeps_the_job_queued_with_its_words(ftp_queue: FtpQueue,
                                                               vsftpd: MakeVsftpd) -> None:
    """vsftpd's answer to a write that fails (ENOSPC) is ``451 Failure writing to local
    file`` with the data connection reset: transient, so the job waits for a later try."""
    server = vsftpd(tmpfs="64k")
    ftp_queue.setup(server.lp(), "connect_interval#60")
    assert ftp_queue.print(os.urandom(1 << 20), args=("--no-wait",)).rc == 0
    run = ftp_queue.run("watch", "--once", "-P", "q")
    assert run.rc == 8, run.err  # JOB_PENDING
    job = ftp_queue.job()
    assert (job.state, job.attempts) == ("queued", 1), job.last_error
    assert "451 Failure writing to local file" in job.last_error
    assert job.possible_duplicate and "Traceback" not in run.err


def test_vsftpd_session_killed_mid_transfer_keeps_the_job_as_a_possible_duplicate(
        ftp_queue: FtpQueue, vsftpd: MakeVsftpd) -> None:
    """vsftpd takes 256 KB/s; once part of the 8 MiB file is on its disk, its session
    processes are killed (SIGKILL, by pid): data and control connections drop."""
    server = vsftpd(rate=256_000)
    ftp_queue.setup(server.lp(), "connect_interval#60")
    assert ftp_queue.print(os.urandom(8 << 20), args=("--no-wait",)).rc == 0
    killed: list[int] = []

    def kill_mid_transfer() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            files = list(server.upload.iterdir())
            if files and files[0].stat().st_size > 0:
                for process in server.sessions():
                    os.kill(process.pid, signal.SIGKILL)
                    killed.append(process.pid)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_mid_transfer)
    killer.start()
    try:
        run = ftp_queue.run("watch", "--once", "-P", "q")
    finally:
        killer.join(40)
    assert killed, "the transfer never started"
    assert run.rc == 8, run.err
    job = ftp_queue.job()
    assert (job.state, job.attempts) == ("queued", 1), job.last_error
    assert job.possible_duplicate and 0 < job.bytes_sent < 8 << 20
    assert f"127.0.0.1:{server.port}" in job.last_error
    assert "(possible duplicate)" in ftp_queue.text("log")
    (partial,) = list(server.upload.iterdir())
    assert partial.stat().st_size < 8 << 20
    wait_until(lambda: server.proc.poll() is None and not server.sessions(),
               what="vsftpd's killed session to be reaped")
