"""Exit statuses of the ``lpfilter`` command, in one place.

Every command returns one of these; ``man/lpfilter.1`` (EXIT STATUS) lists the same
numbers. Keep the two in step: scripts and cron jobs test these values.
"""
from __future__ import annotations

from lpfilter.enums import IntEnum


class ExitStatus(IntEnum):
    """What a finished ``lpfilter`` command tells its caller."""

    OK = 0
    #: The command ran but found or met a failure (``checkpc`` found problems).
    FAILURE = 1
    #: The command line was wrong (argparse uses 2 as well).
    USAGE = 2
    #: A printcap file cannot be read or has an error LPRng treats as fatal.
    CONFIG = 3
    #: The named printer (queue) is not in the printcap.
    NO_SUCH_PRINTER = 4
    #: A file or directory could not be read or written (permissions, missing file).
    ACCESS = 5
    #: A job failed for good (the printer refused it, or send_try ran out); it is kept as
    #: failed in the spool with the reason (``lpfilter status``).
    JOB_FAILED = 6
    #: A job ended up held (a pipe program's exit 6, or send_failure_action=hold); a job
    #: held on purpose at submission (``print --hold``, ``ah``) is a success (0).
    JOB_HELD = 7
    #: A job is still queued for a later try (printer busy or offline); nothing is lost.
    JOB_PENDING = 8
    #: Another process serves the queue (``watch --once`` from cron while a daemon runs).
    QUEUE_BUSY = 9
    #: The spool directory (or another directory lpfilter must write) is on a file system
    #: that is full, over quota or read-only: nothing was half-made, queued jobs wait; free
    #: space (or remount it read-write) and run the command again.
    SPOOL_FULL = 10
    #: An unexpected internal error (a bug); the message asks for ``--debug``.
    INTERNAL = 70
    #: Interrupted by SIGINT.
    INTERRUPTED = 130
