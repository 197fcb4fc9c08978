"""Fault kinds by name: each module registers its kinds; ``make_fault`` builds one."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import FaultError

_KINDS: dict[str, type] = {}


def register(cls: type) -> type:
    _KINDS[cls.kind] = cls
    return cls


def kinds() -> list[str]:
    _load_all()
    return sorted(_KINDS)


def make_fault(kind: str, on: str, **params: Any) -> Any:
    """Builds a fault by kind name, with a clear error for unknown kinds or parameters."""
    _load_all()
    cls = _KINDS.get(kind)
    if cls is None:
        raise FaultError(f"unknown fault {kind!r}; known faults: {', '.join(sorted(_KINDS))}")
    fields = {f.name for f in dataclasses.fields(cls)} - {"on"}
    unknown = set(params) - fields
    if unknown:
        raise FaultError(f"fault {kind}: unknown parameter(s) {sorted(unknown)}; it takes {sorted(fields) or 'none'}")
    try:
        return cls(on=on, **params)
    except TypeError as exc:
        raise FaultError(f"fault {kind} on {on}: {exc}") from None


def _load_all() -> None:
    from . import call, link, partition, process, toxics  # noqa: F401  (each registers its kinds)
