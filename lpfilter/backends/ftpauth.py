"""Who lpfilter logs in as on an FTP print server, and with which password.

In order: the user (and password) in ``lp=ftp://user:password@host/``; the printcap's
``ftp_user`` with ``ftp_password_file``; the ``machine`` entry (or ``default``) of the
netrc file (``$NETRC`` or ``~/.netrc``, the FTP convention); else ``anonymous``, which
JetDirect accepts (it ignores passwords unless an admin password is set). A password file
or netrc that other users can read is refused, as ftp clients refuse it. The password is
kept out of ``repr`` and never put into a message.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field

from lpfilter.job import user_name
from lpfilter.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.backends.settings import FtpSettings
    from lpfilter.printcap.destination import Ftp

ANONYMOUS = "anonymous"
ANONYMOUS_PASSWORD = "lpfilter@"


@dataclass(frozen=True, slots=True)
class Credentials:
    user: str
    password: str = field(repr=False)
    #: Where they came from, for messages: "lp", "ftp_user", "netrc FILE", "anonymous".
    source: str = "anonymous"


def credentials(destination: Ftp, settings: FtpSettings,
                environ: Mapping[str, str] | None = None) -> Credentials:
    """The login for ``destination``; ``ConfigError`` names a file that cannot be used."""
    env = os.environ if environ is None else environ
    user = destination.user
    source = "lp"
    if user is None and settings.user:
        user, source = settings.user, "ftp_user"
    if user is not None and destination.password is not None:
        return Credentials(user, destination.password, source)
    secret_file = settings.password_file
    if secret_file:  # without a user: anonymous with this (JetDirect admin) password
        return Credentials(user if user is not None else ANONYMOUS,
                           _password_file(secret_file),
                           source if user is not None else "ftp_password_file")
    found = _from_netrc(destination.host, user, env)
    if found is not None:
        return found
    if user is not None:
        return Credentials(user, "", source)
    return Credentials(ANONYMOUS, ANONYMOUS_PASSWORD)


def _private(path: str, what: str, reader: int | None = None) -> os.stat_result:
    """The file's status; a file others can read (or not the reader's own: the user
    running this, or ``reader``, whom checkpc checks for) is refused."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):  # a FIFO would hold the job's send for good
        raise ConfigError(f"{what} {path} is not a regular file; give a file")
    if reader is not None and info.st_uid != reader:
        raise ConfigError(f"{what} {path} belongs to {user_name(info.st_uid)}, but it is read"
                          f" by lpfilter filter running as {user_name(reader)}, the queue's"
                          f" filter user (LPRng's user=); chown {user_name(reader)} {path},"
                          " or set user= to its owner")
    if info.st_uid != os.getuid() and reader is None:
        raise ConfigError(f"{what} {path} belongs to another user; it must be your own")
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{what} {path} is open to other users (group or other"
                          f" permissions); run chmod 600 {path}")
    return info


def password_file_problem(path: str, reader: tuple[int, int] | None = None) -> str | None:
    """What is wrong with an ``ftp_password_file`` for the user running this, or for
    ``reader`` (uid, gid), the user an ``lp=|lpfilter filter`` program runs as (checkpc)."""
    if not os.path.isabs(path):
        return (f"ftp_password_file {path}: a relative path is read from the watcher's"
                " working directory; give an absolute path")
    try:
        _private(path, "ftp_password_file", None if reader is None else reader[0])
    except ConfigError as exc:
        return exc.message
    return None if reader is None else _unreachable(path, "ftp_password_file", reader)


def _permits(info: os.stat_result, uid: int, gid: int, bits: int) -> bool:
    """Whether the mode gives uid/gid (no other groups) ``bits`` (an ``S_IROTH``-style
    mask), as the kernel decides for a process that is not root: owner, else group, else other."""
    if info.st_uid == uid:
        return bool(info.st_mode & (bits << 6))
    if info.st_gid == gid:
        return bool(info.st_mode & (bits << 3))
    return bool(info.st_mode & bits)


def _unreachable(path: str, what: str, reader: tuple[int, int]) -> str | None:
    """Why ``reader`` cannot open ``path``: a directory on the way (of the path as
    written and of where its links lead) it may not search, or the file it may not read.
    A filter runs as uid/gid with no supplementary groups (children.run.identity), so the
    mode bits decide (ACLs aside); nothing is opened as, or run as, that user."""
    uid, gid = reader
    if uid == 0:
        return None
    who = user_name(uid)
    folders: list[str] = []
    for full in (os.path.abspath(path), os.path.realpath(path)):
        parent = os.path.dirname(full)
        while parent not in folders:
            folders.append(parent)
            parent = os.path.dirname(parent)
    try:
        for folder in sorted(folders, key=len):
            if not _permits(os.stat(folder), uid, gid, stat.S_IXOTH):
                return (f"{what} {path}: lpfilter filter runs as {who} (the queue's filter"
                        f" user, LPRng's user=) and may not enter the directory {folder};"
                        f" move the file to a directory {who} can reach")
        readable = _permits(os.stat(path), uid, gid, stat.S_IROTH)
    except OSError as exc:
        return f"{what} {path}: {exc.strerror}"
    return None if readable else (f"{what} {path}: lpfilter filter runs as {who} and may not"
                                  f" read it; run chmod u+r {path}")


def netrc_problem(home: str, reader: tuple[int, int]) -> str | None:
    """An ``lp=|lpfilter filter`` program run as ``reader`` (uid, gid) by a watcher whose
    login home is ``home`` (its HOME, as LPRng gives a filter lpd's) reads
    ``home/.netrc``: why it cannot use that file (checkpc); None when there is none or
    it can."""
    path = os.path.join(home, ".netrc")
    try:
        owner = os.stat(path).st_uid
    except OSError:
        return None
    if owner == reader[0]:
        return _unreachable(path, "netrc file", reader)
    who = user_name(reader[0])
    return (f"netrc file {path}: lpfilter filter runs as {who} (the queue's filter user,"
            f" LPRng's user=) with the watcher's HOME {home}, as under LPRng, and cannot use"
            f" this file of {user_name(owner)}'s; give the entry ftp_user and an"
            f" ftp_password_file belonging to {who} (mode 600), or set user= to its owner")


#: An ``ftp_password_file`` is read this far: a password is a line.
PASSWORD_FILE_MAX = 4096


def _password_file(path: str) -> str:
    """The first line of ``ftp_password_file`` (a regular file, read without waiting
    and at most PASSWORD_FILE_MAX bytes: what is put in its place cannot hold the job)."""
    _private(path, "ftp_password_file")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ConfigError(f"ftp_password_file {path} is not a regular file; give a"
                                  " file")
            data = os.read(fd, PASSWORD_FILE_MAX)
        finally:
            os.close(fd)
    except OSError as exc:
        raise ConfigError(f"ftp_password_file {path}: {exc.strerror}") from None
    return data.decode("utf-8", "surrogateescape").split("\n", 1)[0].rstrip("\r")


def _from_netrc(host: str, user: str | None, env: Mapping[str, str]) -> Credentials | None:
    """The netrc entry for ``host`` (for ``user`` when one is set), if there is a netrc."""
    import netrc
    path = env.get("NETRC") or os.path.join(env.get("HOME") or os.path.expanduser("~"),
                                             ".netrc")
    if not os.path.exists(path):
        return None
    _private(path, "netrc file")
    try:
        parsed = netrc.netrc(path)
    except netrc.NetrcParseError as exc:  # its message quotes the token: a password, maybe
        raise ConfigError(f"{exc.filename}:{exc.lineno}: not a netrc line lpfilter can read"
                          " (a word out of place: a password with a space must be in quotes;"
                          " the line is not shown, it may hold a password)") from None
    except OSError as exc:
        raise ConfigError(f"netrc file {path}: {exc.strerror}") from None
    found = parsed.authenticators(host)
    if found is None:
        return None
    login, _account, password = found
    if user is not None and login and login != user:
        return None
    return Credentials(user or login or ANONYMOUS, password or "", f"netrc {path}")
