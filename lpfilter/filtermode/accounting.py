"""The accounting line ``lpfilter filter`` appends to LPRng's ``af`` file (pure).

Shaped like lpd's own ``jobstart``/``jobend`` lines (lprng-filters.md §8): a word, then
``'-Xvalue'`` items, quoted so that a value with blanks stays one item. A value never
carries a quote, a newline or a control character into the file.
"""
from __future__ import annotations

import time

from lpfilter.text import visible


def _item(text: str) -> str:
    cleaned = visible(text).replace("'", "_")
    return f"'{cleaned[:200]}'"


def line(*, queue: str, user: str, host: str, name: str, bytes_sent: int,
         pages: int | None, seconds: float, outcome: str, when: float | None = None) -> str:
    """One line, newline included; ``outcome`` is sent, confirmed or failed."""
    stamp = time.strftime("%Y-%m-%d-%H:%M:%S.000", time.localtime(when))
    items = [("P", queue), ("n", user), ("H", host), ("J", name), ("b", str(bytes_sent)),
             ("p", "-" if pages is None else str(pages)), ("s", f"{seconds:.2f}"),
             ("t", stamp)]
    fields = " ".join(_item(f"-{letter}{value}") for letter, value in items)
    return f"lpfilter {fields} {_item('outcome=' + outcome)}\n"
