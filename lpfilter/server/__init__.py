"""The print server: LPD requests from other hosts and local users, turned into jobs.

Above the spool in the data flow (requests -> job): it imports the spool, the protocols
and the printcap, and only the commands import it.
"""
