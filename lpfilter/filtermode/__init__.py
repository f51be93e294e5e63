"""``lpfilter filter``: LPRng's side of the drop-in. lpd runs lpfilter as a filter or an
``lp=|`` program: its command line (``arguments``), one run (``run``), the accounting line."""
