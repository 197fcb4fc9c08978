"""Scales and tick positions for the report's charts.

Kept apart from the SVG drawing so the arithmetic (nice steps, log decades)
can be read and tested without any markup around it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

NICE_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)


def nice_step(span: float, count: int = 5) -> float:
    """A 1/2/2.5/5 x 10^k step that cuts span into about count pieces."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    return next(s * power for s in NICE_STEPS if s * power >= raw)


def linear_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Evenly spaced round values covering [lo, hi]."""
    step = nice_step(hi - lo, count)
    first = math.floor(lo / step + 1e-9) * step
    ticks: list[float] = []
    value = first
    while value <= hi + step * 1e-6:
        if value >= lo - step * 1e-6:
            ticks.append(round(value, 10))
        value += step
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    """Decades between lo and hi, with 2 and 5 added when few decades show."""
    lo_exp, hi_exp = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    mults = (1.0, 2.0, 5.0) if hi_exp - lo_exp <= 3 else (1.0,)
    ticks = [m * 10.0**e for e in range(lo_exp, hi_exp + 1) for m in mults]
    return [t for t in ticks if lo * 0.999 <= t <= hi * 1.001]


def format_tick(value: float) -> str:
    """Short tick text: 0.5, 20, 1.5k, 2M."""
    if value == 0:
        return "0"
    mag = abs(value)
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if mag >= limit:
            return f"{value / limit:g}{suffix}"
    if mag >= 1:
        return f"{value:.4g}"
    return f"{value:.3g}"


@dataclass
class Scale:
    """Maps data values on [lo, hi] to pixels on [p0, p1], linear or log10."""

    lo: float
    hi: float
    p0: float
    p1: float
    log: bool = False

    def __call__(self, value: float) -> float:
        lo, hi, v = self.lo, self.hi, value
        if self.log:
            lo, hi, v = math.log10(lo), math.log10(hi), math.log10(max(value, self.lo))
        if hi == lo:
            return (self.p0 + self.p1) / 2
        frac = (v - lo) / (hi - lo)
        return self.p0 + frac * (self.p1 - self.p0)

    def ticks(self, count: int = 5) -> list[float]:
        return log_ticks(self.lo, self.hi) if self.log else linear_ticks(self.lo, self.hi, count)


def value_range(values: list[float], log: bool, floor_zero: bool = True) -> tuple[float, float]:
    """The axis range for values: from 0 (or the lowest decade on log) to a round top."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if log:
        positive = sorted(v for v in finite if v > 0) or [1.0]
        p1 = positive[len(positive) // 100]
        floor = positive[0] if positive[0] * 10 >= p1 else p1  # a rare tiny outlier must not squash the rest
        lo = 10.0 ** math.floor(math.log10(floor))
        hi = 10.0 ** math.ceil(math.log10(max(positive)))
        return lo, hi if hi > lo else lo * 10
    if not finite:
        return 0.0, 1.0
    lo = min(0.0, min(finite)) if floor_zero else min(finite)
    hi = max(finite)
    if hi <= lo:
        hi = lo + 1.0
    step = nice_step(hi - lo)
    return lo, math.ceil(hi * 1.04 / step - 1e-9) * step  # headroom so a flat top line shows


def wants_log(values: list[float], decades: float = 2.0) -> bool:
    """True when positive values span more than `decades` powers of ten."""
    positive = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    if len(positive) < 2:
        return False
    return math.log10(max(positive) / min(positive)) > decades
