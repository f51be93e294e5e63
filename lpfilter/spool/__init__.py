"""The spool: jobs on disk in each queue's ``sd`` directory, and the workers that send them.

Data flow: ``store`` (tickets and data, written atomically) -> ``worker`` (one queue: pick a
job, send it through a backend, record the outcome with ``policy`` and ``records``) ->
``watcher`` (many queues, events, signals). ``hotfolder`` turns files dropped into ``sd``
into jobs; ``locks`` makes sure one process serves a queue and one job uses a printer.
"""
