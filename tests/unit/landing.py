"""Fault evidence in hand-made timelines: a check judges a fault only when the harness saw it land."""

from __future__ import annotations

from typing import Any

from harness.events import FaultDescription, FaultEffect
from harness.timeline import Recorder


def record_landed(rec: Recorder, fault: str, on: str, *, t_ns: int, params: dict[str, Any] | None = None,
                  landed: bool | None = True, reason: str | None = None) -> None:
    """Writes the fault_effect event a watched fault window leaves."""
    rec.write(FaultEffect(FaultDescription(fault, on, dict(params or {})), landed, reason,
                          ("seen by the test's own hand",) if landed else (), {}, t_ns=t_ns))
