"""Running a program named in the printcap (``lp=|``, filters, ``send_failure_action``) with
LPRng's command-line conventions (lprng-filters.md §2, ``Split_cmd_line``): the leading
``|`` and ``-$``/``ROOT`` words, a shell only when the text needs one, else words split on
blanks. The one splitter: ``filters.dollars`` expands ``$`` tokens in what it cuts."""
from __future__ import annotations

from lpfilter.memo import Pattern

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re

#: Characters that make LPRng run the command line through ``/bin/sh -c``.
_SHELL_CHARS = frozenset("<>|;")
_BLANKS = " \t"
#: ``$`` then its form markers (``0`` or blanks: flag and value apart; ``-``: value alone;
#: ``'``: quoted), then a letter, ``*`` or ``{name}``.
TOKEN: re.Pattern[str] = Pattern(r"\$([0 \t\-']*)(\{[^}]*\}|[A-Za-z*])")  # type: ignore[assignment]
#: A leading word and the blank (or end) after it.
_WORD: re.Pattern[str] = Pattern(r"(\S+)(?:[ \t]|$)")  # type: ignore[assignment]


def needs_shell(command: str) -> bool:
    """Does LPRng run this command line through the shell: ``< > | ;`` or a leading '('?"""
    text = command.strip()
    return bool(_SHELL_CHARS.intersection(text)) or text.startswith("(")


def strip_prefixes(text: str) -> tuple[str, bool, bool]:
    """(rest, no_options, as_root): the leading ``|`` and any ``-$``/``$-``/``ROOT`` words."""
    rest = text.lstrip(_BLANKS)
    if rest.startswith("|"):
        rest = rest[1:]
    no_options = as_root = False
    while True:
        rest = rest.lstrip(_BLANKS)
        word = _WORD.match(rest)
        if word is None:
            break
        if word.group(1) in ("-$", "$-"):
            no_options = True
        elif word.group(1).upper() == "ROOT":
            as_root = True
        else:
            break
        rest = rest[word.end():]
    return rest, no_options, as_root


def split_words(text: str) -> list[str]:
    """Words on blanks; a word starting with a quote runs to the same quote (quotes gone,
    no escapes). A ``$ X`` token stays one word."""
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in _BLANKS:
            i += 1
            continue
        if text[i] in "'\"":
            end = text.find(text[i], i + 1)
            end = n if end < 0 else end
            words.append(text[i + 1:end])
            i = end + 1
            continue
        start = i
        while i < n and text[i] not in _BLANKS:
            token = TOKEN.match(text, i) if text[i] == "$" else None
            i = token.end() if token else i + 1
        words.append(text[start:i])
    return words


def shell_argv(text: str, shell: str) -> list[str]:
    """``shell -c`` running ``text`` as LPRng does: in a subshell, ``( text )``, unless it
    already starts with '('."""
    return [shell, "-c", text if text.startswith("(") else f"( {text} )"]


def command_argv(command: str, shell: str = "/bin/sh") -> list[str]:
    """LPRng's command line without ``$`` expansion: a shell when it needs one, else
    ``split_words``."""
    text = command.strip()
    if needs_shell(text):
        return shell_argv(text, shell)
    return split_words(text)
