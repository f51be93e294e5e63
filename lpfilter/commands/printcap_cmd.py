"""``lpfilter printcap``: show entries as LPRng would use them, as printcap text or JSON."""
from __future__ import annotations

import argparse
import sys

from lpfilter.errors import LpfilterError
from lpfilter.status import ExitStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.commands.environment import Context
    from lpfilter.printcap import Entry
    from lpfilter.printcap.model import Option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("-P", dest="printer", metavar="NAME",
                       help="the printer to show (default: PRINTER, LPDEST, first printer)")
    which.add_argument("--all", action="store_true", help="every printer, in LPRng's order")
    parser.add_argument("--json", action="store_true", help="typed JSON instead of text")
    parser.add_argument("--client", action="store_true",
                        help="the client view (client records and client.KEY) instead of lpd's")


def option_text(entry: Entry, option: Option) -> str:
    """One option in printcap notation, with %-codes expanded and a URI's password hidden
    in any key (``lp``, ``rm``, a filter's command line, a mistyped ``lpp``)."""
    from lpfilter.printcap.destination import redact
    if option.form == "flag":
        return option.key
    if option.form == "off":
        return option.key + "@"
    sep = "#" if option.text[len(option.key):].lstrip(" \t").startswith("#") else "="
    value = entry.expand(option.value or "")
    return option.key + sep + redact(value)


def entry_text(entry: Entry) -> str:
    """The entry as LPRng shows it (``lpc client``, ``PRINTCAP_ENTRY``): names, then options."""
    lines = ["|".join([entry.name] + [n for n in entry.names if n != entry.name])]
    lines.extend(f" :{option_text(entry, option)}" for _, option in entry.items())
    return "\n".join(lines) + "\n"


def entry_json(entry: Entry) -> dict[str, object]:
    """``{"name", "aliases", "options"}`` with values typed by LPRng's key table."""
    from lpfilter.printcap.destination import redact
    from lpfilter.printcap.model import typed_value
    options: dict[str, object] = {}
    for name, option in entry.items():
        value = typed_value(option)
        if isinstance(value, str):
            value = entry.expand(value)
            value = redact(value)  # any key: rm=, a filter's command line, a mistyped lp
        options[name] = value
    return {"name": entry.name, "aliases": [n for n in entry.names if n != entry.name],
            "options": options}


def run(ctx: Context) -> ExitStatus:
    from lpfilter.commands.exits import for_error
    args = ctx.args
    printcap = ctx.printcap(side="client" if args.client else "server")
    names = printcap.printer_names() if args.all else [ctx.queue(args.printer)]
    status = ExitStatus.OK
    entries = []
    for name in names:
        try:
            entries.append(printcap.lookup(name))
        except LpfilterError as exc:
            if not args.all:
                raise
            print(f"lpfilter: {exc}", file=sys.stderr)
            status = max(status, for_error(exc))
    from lpfilter.text import printable
    if args.json:
        import json
        data = [entry_json(e) for e in entries]
        text = json.dumps(data if args.all else data[0], indent=2, ensure_ascii=False) + "\n"
    else:
        text = "".join(entry_text(e) for e in entries)
    ctx.stdout.write(printable(text))
    return status
