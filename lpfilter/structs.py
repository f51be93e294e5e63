"""Record classes that cost nothing to define: what ``@dataclass`` gives a plain record
(``==``, ``repr``, and for a frozen one ``hash`` and no assignment), without its class
processing.

A dataclass is built at import: Python 3.11 writes its ``__init__``, ``__repr__`` and
``__eq__`` as source and compiles each with ``exec``, 0.3-1 ms a class, and a quick command
(``lpfilter print``) imported a dozen of them, a fifth of its own cost (issue 16). A class
here writes its ``__slots__`` and ``__init__`` by hand (compiled once, into the ``.pyc``) and
names its fields in ``_fields``; ``repr`` and ``==`` behave as the dataclass's did, and a
frozen one raises ``dataclasses.FrozenInstanceError`` (an ``AttributeError``) when set.
"""
from __future__ import annotations


TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar, Self


class Struct:
    """A mutable record: ``==`` compares the fields of ``_compared`` (all of ``_fields``
    unless a class says otherwise) of two objects of the same class; unhashable, as a
    dataclass with ``eq`` and without ``frozen``."""

    __slots__ = ()
    #: Every field, in the order of ``__init__``'s parameters.
    _fields: ClassVar[tuple[str, ...]] = ()
    #: The fields ``repr`` shows, and those ``==`` compares (None: all of ``_fields``).
    _shown: ClassVar[tuple[str, ...] | None] = None
    _compared: ClassVar[tuple[str, ...] | None] = None

    def _values(self) -> tuple[Any, ...]:
        names = self._fields if self._compared is None else self._compared
        return tuple([getattr(self, name) for name in names])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        names = self._fields if self._shown is None else self._shown
        shown = ", ".join([f"{name}={getattr(self, name)!r}" for name in names])
        return f"{type(self).__qualname__}({shown})"

    def _assign(self, values: dict[str, Any]) -> None:
        """Set every field from ``values`` (an ``__init__``'s ``locals()``), for a class
        with many fields that is not built often."""
        for name in self._fields:
            object.__setattr__(self, name, values[name])

    def to_dict(self) -> dict[str, Any]:
        """The fields by name: ``dataclasses.asdict`` of a record of plain values (the
        values are not copied)."""
        return {name: getattr(self, name) for name in self._fields}

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` (``dataclasses.replace``), made through ``__init__``."""
        values = {name: getattr(self, name) for name in self._fields}
        values.update(changes)
        return type(self)(**values)


class FrozenStruct(Struct):
    """An immutable record: no field can be set after ``__init__`` (which sets them with
    ``object.__setattr__``), and it hashes by its compared fields."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        from dataclasses import FrozenInstanceError  # a frozen dataclass's error, imported
        raise FrozenInstanceError(f"cannot assign to field {name!r}")  # only on this path

    def __delattr__(self, name: str) -> None:
        from dataclasses import FrozenInstanceError
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(self._values())

    def __reduce__(self) -> tuple[Any, ...]:
        """``copy`` and ``pickle`` rebuild it through ``__init__`` (they cannot set fields)."""
        return (type(self), tuple([getattr(self, name) for name in self._fields]))
