"""lpfilter: an LPRng-style, printcap-driven print spooler backend.

Start-up is part of every ``lpfilter print``: a module says ``TYPE_CHECKING = False`` (mypy
reads that name as true) and imports typing's names under it, because importing ``typing``
costs a quick command about 2 ms. Only the modules that use typing at run time (a
``Protocol`` or ``Generic`` base, ``cast``) import it, and no quick command imports those
(``tests/test_startup.py``).
"""

__version__ = "0.1.0"
