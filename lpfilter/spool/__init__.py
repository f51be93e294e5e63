"""The spool: jobs on disk in each queue's ``sd`` directory, and the workers that send them.

Data flow: ``submit`` and ``intake`` (a job in: ``print``, or a file dropped into the hot
folder) -> ``store`` (tickets and data, written atomically) -> ``worker`` (one queue: pick a
job, send it through a backend, decide with ``policy``, write the outcome with ``ledger``
and ``records``) -> ``serve`` (a queue served from this process, under its ``lease``) ->
``watcher`` (many queues, events, signals).

The state folder's name and the journal's are here, not in ``spooldir`` and
``journalformat``: an ordinary user's ``status`` tells a spool closed to it by them, and
asks the print server, without the store's modules.
"""
#: A queue's state folder, in its spool directory (``sd/.lpfilter``).
STATE_DIR = ".lpfilter"
#: The journal's name in a queue's state folder (its lock: ``journal.lock``).
JOURNAL = "journal"
