"""JSON text through CPython's ``_json`` scanner and encoder, without the ``json`` package.

Every quick command (``print``, ``status``, ``cancel``) replays its queue's journal, whose
records are JSON, and ``print`` writes some. ``import json`` loads ``json.decoder``, which
compiles regular expressions at import: that imports ``re``, and ``re`` imports ``enum``,
``functools`` and ``collections``. The C scanner and encoder that ``json.loads`` and
``json.dumps`` call are the ones called here, given the settings ``json``'s defaults give
them, so what is read and written is the same to the byte (``tests/test_jsontext.py``
compares the two for any value and any text). Text that does not parse goes to
``json.loads`` for its error (a ``ValueError``), as does everything on a Python without
``_json``.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType
    from typing import Any

#: What ``json.loads`` skips around a value (its ``WHITESPACE``): JSON's four, no others.
_BLANKS = " \t\n\r"
#: ``json.decoder``'s constants: ``NaN`` and the infinities read as floats, as json reads them.
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _Decoding:
    """The attributes the C scanner reads from ``json.JSONDecoder()``: its defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    array_hook = None  # (read from Python 3.15 on)
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


def _accelerator() -> ModuleType | None:
    """CPython's ``_json``, imported once; None on a Python without it."""
    try:
        import _json
    except ImportError:
        return None
    return _json


def _scanner() -> Callable[[str, int], tuple[Any, int]] | None:
    """One scanner for every call, as ``json`` keeps one default decoder: a call runs in
    C from start to end (float, int and a dict's lookup are C), so threads share it. None
    where ``_json`` is missing or wants more than ``_Decoding`` has: then json does it."""
    try:
        return _C.make_scanner(_Decoding()) if _C is not None else None
    except (AttributeError, TypeError):
        return None


_C = _accelerator()
_scan = _scanner()


def loads(text: str) -> Any:
    """``json.loads(text)`` for a ``str``: the same value, or the same ``ValueError``.
    Arrays or objects nested deeper than the interpreter's recursion limit are a
    ``ValueError`` too, where json raises ``RecursionError``: the text read here (a
    journal's records, a lock's holder) is untrusted input, and its readers handle a
    ``ValueError``."""
    try:
        if _scan is not None:
            start = len(text) - len(text.lstrip(_BLANKS))
            try:
                value, end = _scan(text, start)
            except StopIteration:  # no value where one starts: json's message says where
                pass
            else:
                if end == len(text) or not text[end:].strip(_BLANKS):
                    return value
        import json  # an error (or no _json): json raises what it always raised
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _unknown(value: object) -> object:
    """``json.JSONEncoder.default``: a value JSON has no text for is an error."""
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


def dumps(value: object, *, sort_keys: bool = False, ensure_ascii: bool = True) -> str:
    """``json.dumps(value, sort_keys=..., ensure_ascii=...)``, its other settings the
    defaults: the same text, or the same ``TypeError`` or ``ValueError``."""
    if _C is None:
        import json
        return json.dumps(value, sort_keys=sort_keys, ensure_ascii=ensure_ascii)
    quote = _C.encode_basestring_ascii if ensure_ascii else _C.encode_basestring
    if isinstance(value, str):
        return quote(value)  # type: ignore[no-any-return]
    # A new encoder and a new dict of markers for each call, as json makes them: the
    # markers find a circular list or dict, and one left from a failed call could be wrong.
    encode = _C.make_encoder({}, _unknown, quote, None, ": ", ", ", sort_keys, False, True)
    return "".join(encode(value, 0))
