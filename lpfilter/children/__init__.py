"""Programs a printcap names, started as children: filters, ``lp=|`` programs and
accounting programs all run the same way (LPRng's lpd runs them alike): as the queue's
filter user, in their own session, with their stderr read as bounded status lines, ended
with the process that started them, and their exit status read as LPRng's codes.

Below the backends (an ``lp=|`` program is a backend) and above the printcap reader (the
printcap says as whom a queue's programs run).
"""
