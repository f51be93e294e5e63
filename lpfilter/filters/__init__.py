"""LPRng's filters for lpfilter's own queues, as pure pieces: which filter a format gets,
its command line and environment (``command``, ``dollars``; ``lpfilter.children`` runs
them and reads their exit codes), and
LPRng's accounting lines. The spool runs them; nothing here starts a process unless named
so (the accounting writer).

Facts: ``shared/reference/lprng-filters.md`` (observed on LPRng 3.8.B).
"""
