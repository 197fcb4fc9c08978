"""A pass needs the fault seen on the wire: the gate every fault-dependent check goes through.

The harness watches each fault window (harness.landing) and writes what it
saw as a ``fault_effect`` event. A check whose verdict depends on the fault
gives ``unknown: fault not observed: <why>`` when that evidence is missing,
whatever it would have said: a breaker "opening" under a toxic its client
never crossed proves nothing, and neither does a "failure" under it. Where
the fault cannot be verified (a service_call that declares no way), the
verdict stands and says so.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from ..timeline import Frames
from .verdict import Verdict, unknown


def fault_landing(frames: Frames) -> tuple[bool | None, str] | None:
    """Whether the first fault landed, and why not; None when the timeline has no fault."""
    if frames.faults.empty:
        return None
    first = frames.faults.iloc[0]
    effects = frames.effects
    mine = effects[(effects["fault"] == first["fault"]) & (effects["on"] == first["on"])] if len(effects) else effects
    unreadable = [line for line in frames.skipped if line.startswith("fault_effect ")]
    if mine.empty and unreadable:
        return False, f"the evidence could not be read ({unreadable[0]})"
    if mine.empty:
        return False, (f"no evidence of {first['fault']} on {first['on']} was recorded "
                       "(a run saved before the harness watched its faults, or the watch never ran)")
    row = mine.iloc[0]
    return _flag(row["landed"]), str(row["reason"] or "")


def gated(verdict: Verdict, frames: Frames) -> Verdict:
    """The verdict if the fault landed; unknown, naming why, if it was not seen."""
    landing = fault_landing(frames)
    if landing is None or verdict.status == "unknown":
        return verdict
    landed, reason = landing
    if landed is True:
        return replace(verdict, figures={**verdict.figures, "fault_landed": True})
    if landed is None:
        return replace(verdict, explanation=f"{verdict.explanation} (fault effect not verified: {reason})",
                       figures={**verdict.figures, "fault_landed": None})
    return unknown(verdict.check, f"fault not observed: {reason}",
                   **{**verdict.figures, "fault_landed": False, "status_if_landed": verdict.status})


def _flag(value: Any) -> bool | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return bool(value)
