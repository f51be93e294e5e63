"""``lpfilter.jsontext`` reads and writes what ``json`` reads and writes, for any value and
any text: the journal's records go through it, and records written by either must read
back alike (a journal written before it, or by a tool using ``json``)."""
from __future__ import annotations

import json
import math
from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lpfilter import jsontext

PROPERTY = settings(max_examples=600, deadline=None)

_KEYS = st.one_of(st.text(), st.integers(), st.floats(), st.booleans(), st.none())
VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text()),
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(_KEYS, inner, max_size=5),
                            st.tuples(inner, inner)),
    max_leaves=25)


def _same(left: object, right: object) -> bool:
    """Equal, NaN included (json reads NaN back as a float that equals nothing)."""
    return json.dumps(left) == json.dumps(right)


@PROPERTY
@given(VALUES, st.booleans(), st.booleans())
@example({"b": 1, "a": [1.5, "\udcff", None]}, True, False)
@example(float("nan"), False, True)
def test_dumps_writes_what_json_writes(value: object, sort_keys: bool,
                                       ensure_ascii: bool) -> None:
    try:
        expected: object = json.dumps(value, sort_keys=sort_keys, ensure_ascii=ensure_ascii)
    except (TypeError, ValueError) as error:  # sort_keys over keys of mixed types
        with pytest.raises(type(error)):
            jsontext.dumps(value, sort_keys=sort_keys, ensure_ascii=ensure_ascii)
        return
    assert jsontext.dumps(value, sort_keys=sort_keys, ensure_ascii=ensure_ascii) == expected


@PROPERTY
@given(VALUES, st.sampled_from(["", " ", "\n\t \r", "\x0c", " x", "]"]),
       st.sampled_from(["", " ", "\r\n", "\u00a0", "\ufeff"]))
def test_loads_reads_what_json_reads(value: object, after: str, before: str) -> None:
    text = before + json.dumps(value) + after
    try:
        expected = json.loads(text)
    except ValueError as error:
        with pytest.raises(ValueError) as raised:
            jsontext.loads(text)
        assert str(raised.value) == str(error)  # json's own message: file and place
        return
    assert _same(jsontext.loads(text), expected)


@PROPERTY
@given(st.text(alphabet='{}[]":,. \t\n\\0123456789eE+-tfnrulsaNIy\ud800\xff'))
@example("")
@example("   ")
@example('{"a": 1} {"b": 2}')
@example('"\x00"')
@example("[1, 2")
@example("NaN")
@example("-Infinity")
def test_any_text_reads_alike(text: str) -> None:
    try:
        expected = json.loads(text)
    except ValueError as error:
        with pytest.raises(ValueError) as raised:
            jsontext.loads(text)
        assert str(raised.value) == str(error)
        return
    assert _same(jsontext.loads(text), expected)


def test_unknown_types_are_refused_as_json_refuses_them() -> None:
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        jsontext.dumps({"a": {1}})
    circular: list[object] = []
    circular.append(circular)
    with pytest.raises(ValueError, match="Circular reference"):
        jsontext.dumps(circular)
    # A failed call leaves nothing behind for the next.
    assert jsontext.dumps([[], []]) == "[[], []]"
    assert math.isnan(jsontext.loads("NaN"))


def test_neither_json_nor_re_is_imported(fresh_python: Callable[[str], str]) -> None:
    """The point of the module: a fresh interpreter reads and writes a record with
    neither ``json`` nor ``re`` loaded (nor what ``re`` loads)."""
    code = ("import sys; from lpfilter import jsontext; "
            "value = jsontext.loads(jsontext.dumps({'id': '7', 'n': [1.5, None]})); "
            "assert value == {'id': '7', 'n': [1.5, None]}, value; "
            "print(sorted(m for m in ('json', 're', 'enum', 'functools', 'collections') "
            "if m in sys.modules))")
    assert fresh_python(code) == "[]"


def test_without_the_accelerator_json_does_it(fresh_python: Callable[[str], str]) -> None:
    """On a Python without ``_json`` both ways go through ``json`` itself, alike."""
    code = ("import sys; sys.modules['_json'] = None; from lpfilter import jsontext; "
            "assert jsontext._scan is None; "
            "text = jsontext.dumps({'b': 'é', 'a': [1.5, None]}, sort_keys=True); "
            "print(text, jsontext.loads(text)['b'] == 'é')")
    assert fresh_python(code) == '{"a": [1.5, null], "b": "\\u00e9"} True'
