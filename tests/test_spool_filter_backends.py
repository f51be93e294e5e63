"""A filter's output streams to every backend, not only a socket printer: a device (an
O_APPEND file, where splice(2) is refused and the copy goes through a buffer), an
``lp=|`` program (pipe to pipe) and an FTP print server (issue 15)."""
from __future__ import annotations

from pathlib import Path

from ftpkit import FtpQueue, MakeServer, ftp_queue, ftp_server, hang_guard  # noqa: F401
from spoolkit import Kit, kit  # noqa: F401 - a fixture

UPPER = {"if": "-$ /usr/bin/tr a-z A-Z"}


def _print(kit: Kit, queue: str, data: bytes, *args: str) -> str:  # noqa: F811
    source = kit.root / f"{queue}.txt"
    source.write_bytes(data)
    done = kit.run("print", "--no-wait", "-P", queue, *args, str(source))
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1].removeprefix(f"{queue}-")


def test_filter_output_to_a_device_file(kit: Kit) -> None:  # noqa: F811
    device = kit.root / "device"
    device.write_bytes(b"before\n")
    kit.queue("d", str(device), ld="<ld>", tr="<tr>", **UPPER, user="root")
    job = _print(kit, "d", b"to the device\n")
    watch = kit.run("watch", "--once", "-P", "d")
    assert watch.returncode == 0, watch.stderr
    assert device.read_bytes() == b"before\n<ld>TO THE DEVICE\n<tr>"
    assert kit.states("d") == {job: "done"}


def test_filter_output_to_a_pipe_program(kit: Kit) -> None:  # noqa: F811
    kit.queue("p", kit.recorder(), mc=2, **UPPER, user="root")
    job = _print(kit, "p", b"to the program\n", "-K", "2")
    watch = kit.run("watch", "--once", "-P", "p")
    assert watch.returncode == 0, watch.stderr
    assert kit.output("p", job) == b"TO THE PROGRAM\nTO THE PROGRAM\n"


def test_filter_output_to_an_ftp_print_server(ftp_queue: FtpQueue,  # noqa: F811
                                               ftp_server: MakeServer) -> None:  # noqa: F811
    server = ftp_server()
    ftp_queue.setup(server.lp(), "if=-$ /usr/bin/tr a-z A-Z")
    run = ftp_queue.print(b"to the ftp server\n")
    assert run.rc == 0, run.err
    (stored,) = server.files(1)
    assert Path(stored.path).read_bytes() == b"TO THE FTP SERVER\n"
    assert ftp_queue.job().state == "done"
