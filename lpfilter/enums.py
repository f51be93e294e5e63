"""Enumerations that cost little to define: ``enum``'s ``Enum``, ``IntEnum`` and
``StrEnum`` as lpfilter uses them, without importing ``enum`` when a command runs.

Why: in Python 3.11, ``import enum`` (with the ``functools``, ``collections``, ``types``
and ``operator`` it imports) runs 17 M instructions, and each enum class it makes 1.3-1.9 M
more. A quick command (``lpfilter print``) and lpd's filter made four each: with ``enum``
itself, about 40 % of the instructions either ran beyond the interpreter's own start
(issue 16, round 19).

Type checkers see ``enum``'s own classes (imported from it under ``TYPE_CHECKING``), so
mypy checks members, values and exhaustive matches as for any enum. At run time each plain
name of a class body (one not starting with ``_`` and not a function, property or other
descriptor) becomes a member: an instance of the class holding its value, made once, with
``name`` and ``value``. What a member and its class do is what ``enum``'s do for
constants: lookup by value (``Kind(2)``, ``ValueError`` for none) and by name
(``Kind["JOB"]``), iteration in definition order, ``len``, aliases for a repeated value,
``==``, ``hash``, ``str``, ``repr`` and ``format`` (``IntEnum`` and ``StrEnum`` as their int
or str, ``Enum`` as ``Class.NAME``), ``copy`` and ``pickle`` keeping the one member, no
reassigning a member, no extending a class that has members. ``x in Class`` answers as
Python 3.12's ``enum`` does (a member, or a member's value). Values must be hashable.
Not here: ``auto()``, ``Flag``, ``_missing_``, the functional API. tests/test_enums.py
compares each of these with ``enum``'s, for lpfilter's enums and for generated ones.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from enum import Enum, IntEnum, StrEnum
else:
    def _is_member(key: str, value: object) -> bool:
        """A plain name bound to a value, as ``enum`` picks a body's members (``_`` names
        and descriptors such as functions and properties are the class's own)."""
        if key.startswith("_"):
            return False
        kind = type(value)
        return not (hasattr(kind, "__get__") or hasattr(kind, "__set__")
                    or hasattr(kind, "__delete__"))

    class EnumType(type):
        """Makes the members of each class body, once, when the class is made."""

        def __new__(mcs, name: str, bases: tuple[type, ...],
                    namespace: dict[str, object]) -> EnumType:
            values = {key: value for key, value in namespace.items() if _is_member(key, value)}
            for key in values:
                del namespace[key]
            for base in bases:
                if values and getattr(base, "_member_names_", ()):
                    raise TypeError(f"<enum {name!r}> cannot extend <enum {base.__name__!r}>")
            cls = super().__new__(mcs, name, bases, namespace)
            by_name: dict[str, object] = {}
            by_value: dict[object, object] = {}
            names: list[str] = []
            for key, value in values.items():
                member = cls._make_member_(key, value)
                first = by_value.setdefault(member._value_, member)
                if first is member:
                    names.append(key)
                by_name[key] = first  # a repeated value is an alias of the first member
                type.__setattr__(cls, key, first)
            type.__setattr__(cls, "_member_map_", by_name)
            type.__setattr__(cls, "_value2member_map_", by_value)
            type.__setattr__(cls, "_member_names_", tuple(names))
            return cls

        def __call__(cls, value: object) -> object:
            """The member whose value is ``value`` (``value`` itself if a member)."""
            if type(value) is cls:
                return value
            try:
                return cls._value2member_map_[value]
            except (KeyError, TypeError):
                raise ValueError(f"{value!r} is not a valid {cls.__qualname__}") from None

        def __getitem__(cls, name: str) -> object:
            return cls._member_map_[name]

        def __iter__(cls) -> object:
            return (cls._member_map_[name] for name in cls._member_names_)

        def __reversed__(cls) -> object:
            return (cls._member_map_[name] for name in reversed(cls._member_names_))

        def __len__(cls) -> int:
            return len(cls._member_names_)

        def __contains__(cls, value: object) -> bool:
            if isinstance(value, cls):
                return True
            try:
                return value in cls._value2member_map_
            except TypeError:  # an unhashable value is no member's
                return False

        @property
        def __members__(cls) -> dict[str, object]:
            """Every name, aliases too, and its member (a copy: ``enum``'s is read-only)."""
            return dict(cls._member_map_)

        def __repr__(cls) -> str:
            return f"<enum {cls.__name__!r}>"

        def __setattr__(cls, name: str, value: object) -> None:
            if name in cls.__dict__.get("_member_map_", {}):
                raise AttributeError(f"cannot reassign member {name!r}")
            super().__setattr__(name, value)

        def __delattr__(cls, name: str) -> None:
            if name in cls.__dict__.get("_member_map_", {}):
                raise AttributeError(f"{cls.__name__!r} cannot delete member {name!r}.")
            super().__delattr__(name)

    class Enum(metaclass=EnumType):
        """A member is equal only to itself and shows as ``Class.NAME``."""

        _member_names_: tuple[str, ...] = ()

        @classmethod
        def _make_member_(cls, name: str, value: object) -> Enum:
            member = object.__new__(cls)
            member._name_, member._value_ = name, value
            return member

        @property
        def name(self) -> str:
            return self._name_

        @property
        def value(self) -> object:
            return self._value_

        def __repr__(self) -> str:
            return f"<{type(self).__qualname__}.{self._name_}: {self._value_!r}>"

        def __str__(self) -> str:
            return f"{type(self).__qualname__}.{self._name_}"

        def __format__(self, spec: str) -> str:
            return format(str(self), spec)

        def __hash__(self) -> int:
            return hash(self._name_)

        def __reduce_ex__(self, protocol: object) -> tuple[object, tuple[object]]:
            return type(self), (self._value_,)

        def __copy__(self) -> Enum:
            return self

        def __deepcopy__(self, memo: object) -> Enum:
            return self

    class IntEnum(int, Enum):
        """A member is its int (``==``, ``hash``, ``str``, ``format``, arithmetic)."""

        @classmethod
        def _make_member_(cls, name: str, value: object) -> IntEnum:
            member = int.__new__(cls, value)
            member._name_, member._value_ = name, int(member)
            return member

        __repr__ = Enum.__repr__
        __str__ = int.__repr__
        __format__ = int.__format__
        __hash__ = int.__hash__

    class StrEnum(str, Enum):
        """A member is its str (``==``, ``hash``, ``str``, ``format``)."""

        @classmethod
        def _make_member_(cls, name: str, value: object) -> StrEnum:
            if not isinstance(value, str):
                raise TypeError(f"{value!r} is not a string")
            member = str.__new__(cls, value)
            member._name_, member._value_ = name, str(member)
            return member

        __repr__ = Enum.__repr__
        __str__ = str.__str__
        __format__ = str.__format__
        __hash__ = str.__hash__


__all__ = ["Enum", "IntEnum", "StrEnum"]
