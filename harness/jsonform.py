"""Reading a record back from its JSON form, with each field's type checked.

A saved run is read by a later version of the harness, or after a kill, so
a record that does not have the shape its writer gives it must say which
field is wrong (a ``ValueError`` the reader turns into an error entry), not
surface later as a ``KeyError`` in the middle of rendering.
"""

from __future__ import annotations

from typing import Any, Mapping

_MISSING = object()


def json_object(data: Any, record: str) -> Mapping[str, Any]:
    """`data` when it is a JSON object; a ValueError naming the record otherwise."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{record}: expected a JSON object, got {type(data).__name__}")
    return data


def field_of(data: Mapping[str, Any], name: str, kind: type | tuple[type, ...], record: str, default: Any = _MISSING) -> Any:
    """data[name] when it has the type `kind`; `default` when absent (if given); a ValueError otherwise.

    A bool is not taken for an int: JSON tells them apart, so a writer did too."""
    if name not in data:
        if default is _MISSING:
            raise ValueError(f"{record}: missing field {name!r}")
        return default
    value = data[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise ValueError(f"{record}: field {name!r} is {value!r}, not {_names(kinds)}")
    if not isinstance(value, kinds):
        raise ValueError(f"{record}: field {name!r} is {type(value).__name__} {value!r:.60}, not {_names(kinds)}")
    return value


def _names(kinds: tuple[type, ...]) -> str:
    return " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
