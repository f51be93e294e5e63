"""The print server: LPD requests from other hosts and local users, turned into jobs.

Above the spool in the data flow (requests -> job): it imports the spool, the protocols
and the printcap, and only the commands import it.
"""

# The daemon's defaults, here so that building the command line (every command does)
# need not import the listener and what it needs.
#: Connections served at a time on TCP (``watch --max-connections``).
DEFAULT_MAX_CONNECTIONS = 64
#: Seconds a client may take for a line, a control file, a MiB or an answer.
DEFAULT_IDLE_TIMEOUT = 60.0
