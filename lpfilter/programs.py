"""Running a program named in the printcap (``lp=|``, filters, ``send_failure_action``) with
LPRng's command-line conventions (lprng-filters.md §2): a shell only when the text needs one."""
from __future__ import annotations

#: Characters that make LPRng run the command line through ``/bin/sh -c``.
_SHELL_CHARS = frozenset("<>|;")


def needs_shell(command: str) -> bool:
    """Does LPRng run this command line through the shell: ``< > | ;`` or a leading '('?"""
    text = command.strip()
    return bool(_SHELL_CHARS.intersection(text)) or text.startswith("(")


def command_argv(command: str, shell: str = "/bin/sh") -> list[str]:
    """LPRng's filter command line: a shell when it needs one, else words split on
    blanks, where a word starting with a quote runs to the same quote."""
    text = command.strip()
    if needs_shell(text):
        return [shell, "-c", text if text.startswith("(") else f"( {text} )"]
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in " \t":
            i += 1
            continue
        if text[i] in "'\"":
            end = text.find(text[i], i + 1)
            end = n if end < 0 else end
            words.append(text[i + 1:end])
            i = end + 1
        else:
            end = i
            while end < n and text[end] not in " \t":
                end += 1
            words.append(text[i:end])
            i = end
    return words
