"""Whether an experiment's fault landed, from its timeline's ``fault_effect`` events.

The harness records what it saw of each fault window (``events.FaultEffect``,
loaded as ``Frames.effects``): landed true is evidence that the fault took
effect, ``seen_after_ms`` after it was applied; false that it was looked for
and not seen (with the reason); null that it could not be verified. Runs
saved before the event existed have none: their landing is "not recorded".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from harness.timeline import Frames

Landed = Literal["landed", "not observed", "not verified", "not recorded"]
STATES: dict[bool | None, Landed] = {True: "landed", False: "not observed", None: "not verified"}


def _landed(value: Any) -> bool | None:
    """A frame cell's landed: true, false, or null (None, or NaN where pandas filled one in)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return bool(value)


def _seen_after_ms(figures: Any) -> float | None:
    seen = figures.get("seen_after_ms") if isinstance(figures, dict) else None
    return float(seen) if isinstance(seen, (int, float)) and not isinstance(seen, bool) else None


def _describe(effect: dict[str, Any]) -> str:
    """'latency on b->c: landed after 85 ms (412 bytes through the proxy)'."""
    landed, seen = _landed(effect.get("landed")), _seen_after_ms(effect.get("figures"))
    text = f"{effect.get('fault') or 'fault'} on {effect.get('on') or '?'}: {STATES[landed]}"
    if landed and seen is not None:
        text += f" after {seen:.0f} ms"
    if isinstance(effect.get("reason"), str) and effect["reason"]:
        text += f": {effect['reason']}"
    evidence = effect.get("evidence")
    return text + (f" ({'; '.join(map(str, evidence))})" if isinstance(evidence, list) and evidence else "")


@dataclass(frozen=True, slots=True)
class Landing:
    """An experiment's fault windows taken together: the worst state among them
    (not observed, then not verified), the slowest evidence when all landed, and
    one line per window."""

    state: Landed
    seen_after_ms: float | None
    reason: str | None
    detail: str

    @classmethod
    def of(cls, frames: Frames) -> "Landing":
        effects = frames.effects.to_dict("records")
        if not effects:
            return cls("not recorded", None, None, "the timeline has no fault_effect event")
        states = [_landed(e.get("landed")) for e in effects]
        worst = next((i for i, s in enumerate(states) if s is False), None)
        worst = next((i for i, s in enumerate(states) if s is None), None) if worst is None else worst
        seen = [s for s in (_seen_after_ms(e.get("figures")) for e in effects) if s is not None]
        reason = effects[worst].get("reason") if worst is not None else None
        return cls(
            state=STATES[states[worst]] if worst is not None else "landed",
            seen_after_ms=max(seen) if seen and worst is None else None,
            reason=reason if isinstance(reason, str) and reason else None,
            detail="\n".join(_describe(e) for e in effects),
        )

    def short(self) -> str:
        """'landed +85 ms', 'not observed: no bytes through b->c', 'not verified', 'not recorded'."""
        if self.state == "landed":
            return f"landed +{self.seen_after_ms:.0f} ms" if self.seen_after_ms is not None else "landed"
        return f"{self.state}: {self.reason}" if self.reason else self.state
