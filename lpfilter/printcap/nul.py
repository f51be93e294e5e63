"""A NUL byte in a printcap value: no path, host or program can hold one, and LPRng's C
strings end there. A problem line for checkpc, the one-line printcap error (exit 3) for a
command that uses the entry, before a path built from it reaches the file system (where
Python raises ValueError)."""
from __future__ import annotations


from lpfilter.errors import ConfigError
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.printcap.entry import Entry, Option


def nul_problem(option: Option) -> str | None:
    """A NUL byte in a value: no path, host or program can hold one (a C string, as LPRng
    reads it, ends there), so the entry is unusable; the message says where, masked."""
    if option.value is None or "\0" not in option.value:
        return None
    from lpfilter.printcap.destination import redact  # rare: only a value holding NUL
    shown = option.text[:len(option.key) + 1] + redact(option.value)  # key=, key#
    return (f"{visible(shown)[:200]}: a NUL byte (\\x00) in the value; no file"
            " name, host or program can hold one (LPRng ends the value there): remove it")


def refuse_nul(entry: Entry) -> None:
    """The usual one-line printcap error (exit 3) for an entry with a NUL byte, before a
    path built from it reaches the file system (where it would raise ValueError)."""
    for option in entry.options.values():
        message = nul_problem(option)
        if message:
            raise ConfigError(message, where=str(option.origin))  # as checkpc says it
    if "\0" in entry.name:
        raise ConfigError("a NUL byte (\\x00) in the queue's name; remove it",
                          where=str(entry.where))
