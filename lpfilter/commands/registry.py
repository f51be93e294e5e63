"""lpfilter's commands: each word, the module under ``lpfilter.commands`` that runs it.

Both readers of a command line use it: ``parser.py`` (argparse, for help, errors and
anything unusual) and ``quickargs.py`` (a quick command's plain arguments).
"""
from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

#: command name -> (module under lpfilter.commands, one-line help, aliases)
COMMANDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "printcap": ("printcap_cmd", "show resolved printcap entries", ()),
    "checkpc": ("checkpc_cmd", "check the printcap and the spool directories", ()),
    "print": ("print_cmd", "spool files and print them", ("lpr",)),
    "lp": ("lp_cmd", "print with CUPS's lp options (-d queue -n copies -o option)", ()),
    "lpstat": ("lpstat_cmd", "CUPS's lpstat: jobs (-o), printers (-p), devices (-v), all (-t)",
               ()),
    "watch": ("watch_cmd", "serve queues: send their jobs to the printers", ()),
    "status": ("status_cmd", "show queues and their jobs", ("lpq",)),
    "cancel": ("jobctl_cmd", "remove jobs, stopping one that is printing", ("lprm",)),
    "requeue": ("jobctl_cmd", "queue failed or held jobs again", ()),
    "hold": ("jobctl_cmd", "hold queued jobs", ()),
    "release": ("jobctl_cmd", "release held jobs", ()),
    "lpc": ("lpc_cmd", "queue control as LPRng's lpc: stop, start, disable, redirect...", ()),
    "stop": ("lpc_cmd", "stop printing a queue's jobs (lpc stop)", ()),
    "start": ("lpc_cmd", "start printing a queue's jobs again (lpc start)", ()),
    "disable": ("lpc_cmd", "refuse new jobs for a queue (lpc disable)", ()),
    "enable": ("lpc_cmd", "take new jobs for a queue again (lpc enable)", ()),
    "down": ("lpc_cmd", "stop printing and refuse new jobs (lpc down)", ()),
    "up": ("lpc_cmd", "start printing and take new jobs (lpc up)", ()),
    "topq": ("lpc_cmd", "put jobs at the head of their queue (lpc topq)", ()),
    "move": ("lpc_cmd", "move jobs to another queue (lpc move)", ()),
    "redirect": ("lpc_cmd", "send a queue's jobs to another queue (lpc redirect)", ()),
    "holdall": ("lpc_cmd", "hold every new job of a queue (lpc holdall)", ()),
    "noholdall": ("lpc_cmd", "stop holding new jobs (lpc noholdall)", ()),
    "reread": ("lpc_cmd", "make the daemon reread the printcap (lpc reread)", ()),
    "demo": ("demo_cmd", "print a sample through a virtual printer, to see lpfilter work", ()),
    "virtual-printer": ("virtual_printer_cmd", "a JetDirect printer emulator for testing"
                        " printcaps", ()),
    "filter": ("filter_cmd", "send standard input through lpfilter's backends, as an LPRng"
               " filter or lp=| program", ()),
}

#: The names lpfilter answers to as a program of its own (a link, or a copy of the
#: command, named so): ``lpr -P lp f`` is then ``lpfilter lpr -P lp f``, as LPRng's and
#: CUPS's programs of those names are called (cli.main). Not ``print``, ``status``,
#: ``hold``... (other programs have those names), nor lpd (``watch`` is not a drop-in).
PROGRAMS = frozenset({"lpr", "lpq", "lprm", "lpc", "lp", "cancel", "lpstat", "checkpc"})

#: Every word a command answers to (its name and aliases) -> its name.
WORDS: dict[str, str] = {word: name for name, (_module, _help, aliases) in COMMANDS.items()
                         for word in (name, *aliases)}


def command_module(module: str) -> ModuleType:
    """A command's module, imported when that command runs (a quick command stays quick).
    (``__import__`` itself: the importlib package brings warnings with it, 0.5 ms.)"""
    name = f"lpfilter.commands.{module}"
    __import__(name)
    return sys.modules[name]
