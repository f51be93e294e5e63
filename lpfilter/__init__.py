"""lpfilter: an LPRng-style, printcap-driven print spooler backend."""

__version__ = "0.1.0"
