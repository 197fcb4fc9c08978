"""A circuit breaker's promise, in the field's words, and when it is owed.

The three families in use, named as Resilience4j names them (the most used
breaker; opossum, gobreaker, Polly and Hystrix are one of these):

- ``consecutive``: opens when ``failure_threshold`` calls in a row failed
  (gobreaker's default ReadyToTrip, Polly's basic breaker);
- ``count``: opens when ``failure_threshold`` calls failed within the last
  ``sliding_window_s`` (gobreaker with an Interval);
- ``rate``: opens when, over the last ``sliding_window_s``, at least
  ``minimum_number_of_calls`` were made and at least
  ``failure_rate_threshold_pct`` of them failed (Resilience4j's
  failureRateThreshold with a time-based window, opossum's
  errorThresholdPercentage with rollingCountTimeout and volumeThreshold,
  Hystrix's errorThresholdPercentage with requestVolumeThreshold).

Then ``wait_duration_in_open_s`` open before half-open, and
``permitted_calls_in_half_open`` calls let through when half-open.

The checks replay the client's own record of real calls (not fast-fails)
in the order they were answered, as a breaker sees them, to tell the
moment the policy was first met: opening well after it is too late,
opening before it is too early.

What a fast-fail looks like is the service's, not the breaker library's:
by default an answer with the fast-fail status that came within
``fast_fail_p99_ms``; ``fast_fail_reason`` (the ``error`` field of the
body) narrows it where a service names its refusals.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Mapping

import pandas as pd

from ..errors import HarnessError

POLICIES = ("consecutive", "count", "rate")
# the names our first spec used, and what they are in the field's words
OLD_NAMES = {"window_s": "sliding_window_s", "open_s": "wait_duration_in_open_s",
             "half_open_probes": "permitted_calls_in_half_open"}


@dataclass(frozen=True)
class FastFail:
    """How a refusal while open is told from a real call's answer."""

    status: tuple[int, ...]
    p99_ms: float
    reason: str | None = None  # the body's "error", when the service names its refusals

    def of(self, requests: pd.DataFrame) -> pd.Series:
        """True where the answer was the breaker's fast-fail."""
        hit = requests["status"].isin(self.status)
        if self.reason is not None:
            hit &= (requests["reason"] == self.reason) if "reason" in requests else False
        else:  # no matcher: only a quick answer with that status is a refusal
            hit &= requests["latency_ms"] <= self.p99_ms
        return hit

    def said(self) -> str:
        status = "/".join(str(s) for s in self.status)
        return f"{status} {self.reason!r}" if self.reason else f"{status} within {self.p99_ms:g} ms"


@dataclass(frozen=True)
class BreakerPolicy:
    """When a breaker must open, how long it stays open, and how many calls it lets through half-open."""

    policy: str
    sliding_window_s: float
    wait_duration_in_open_s: float
    permitted_calls_in_half_open: int
    failure_threshold: int | None = None
    failure_rate_threshold_pct: float | None = None
    minimum_number_of_calls: int = 1

    def met_at(self, calls: pd.DataFrame) -> float:
        """When (an answer time, s) the real calls first met the policy; NaN if never.

        `calls`: the real calls (fast-fails left out), with end_s and ok."""
        ordered = calls.sort_values("end_s")
        ends = ordered["end_s"].astype(float).tolist()
        failed = (~ordered["ok"].astype(bool)).tolist()
        if self.policy == "consecutive":
            run = 0
            for end, bad in zip(ends, failed):
                run = run + 1 if bad else 0
                if run >= self.failure_threshold:
                    return end
            return math.nan
        window: deque[tuple[float, bool]] = deque()
        failures = 0
        for end, bad in zip(ends, failed):
            window.append((end, bad))
            failures += bad
            while end - window[0][0] > self.sliding_window_s:
                failures -= window.popleft()[1]
            if self._trips(failures, len(window)):
                return end
        return math.nan

    def _trips(self, failures: int, calls: int) -> bool:
        if self.policy == "count":
            return failures >= self.failure_threshold
        return calls >= self.minimum_number_of_calls and 100 * failures / calls >= self.failure_rate_threshold_pct

    @property
    def least_failures(self) -> int:
        """The fewest failures that can meet the policy (fewer can never open it)."""
        if self.policy == "rate":
            return max(1, math.ceil(self.minimum_number_of_calls * self.failure_rate_threshold_pct / 100))
        return int(self.failure_threshold)

    def said(self) -> str:
        if self.policy == "consecutive":
            return f"{self.failure_threshold} failures in a row"
        if self.policy == "count":
            return f"{self.failure_threshold} failures within {self.sliding_window_s:g} s"
        return (f"{self.failure_rate_threshold_pct:g}% failed of at least {self.minimum_number_of_calls} calls "
                f"within {self.sliding_window_s:g} s")


def policy_from_spec(spec: Mapping[str, Any], *, where: str = "[spec]") -> BreakerPolicy:
    """The policy a target's [spec] states; a clear error naming `where` and the key when it cannot."""
    values = dict(spec)
    for old, new in OLD_NAMES.items():
        if old in values:
            if new in values:
                raise HarnessError(f"{where}: give {new} or its old name {old}, not both")
            values[new] = values.pop(old)
    has_rate = "failure_rate_threshold_pct" in values
    policy = values.get("policy", "rate" if has_rate else "count")
    if policy not in POLICIES:
        raise HarnessError(f"{where}: policy = {policy!r} is not one of {', '.join(POLICIES)}")
    needs = {"consecutive": ("failure_threshold",), "count": ("failure_threshold", "sliding_window_s"),
             "rate": ("failure_rate_threshold_pct", "minimum_number_of_calls", "sliding_window_s")}[policy]
    needs += ("wait_duration_in_open_s", "permitted_calls_in_half_open")
    missing = [key for key in needs if key not in values]
    if missing:
        raise HarnessError(f"{where}: a {policy!r} breaker policy needs {', '.join(missing)}")
    return BreakerPolicy(
        policy=policy,
        sliding_window_s=_number(values, "sliding_window_s", where, default=math.inf, above=0),
        wait_duration_in_open_s=_number(values, "wait_duration_in_open_s", where, above=0),
        permitted_calls_in_half_open=int(_number(values, "permitted_calls_in_half_open", where, least=1, whole=True)),
        failure_threshold=(int(_number(values, "failure_threshold", where, least=1, whole=True))
                           if policy != "rate" else None),
        failure_rate_threshold_pct=(_number(values, "failure_rate_threshold_pct", where, above=0, most=100)
                                    if policy == "rate" else None),
        minimum_number_of_calls=(int(_number(values, "minimum_number_of_calls", where, least=1, whole=True))
                                 if policy == "rate" else 1),
    )


def fast_fail_from_spec(spec: Mapping[str, Any], *, where: str = "[spec]") -> FastFail:
    """How the target's refusals look, from fast_fail_status (one or a list), fast_fail_p99_ms and the
    optional fast_fail_reason."""
    raw = spec.get("fast_fail_status")
    statuses = raw if isinstance(raw, list) else [raw]
    if raw is None or not all(isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in statuses):
        raise HarnessError(f"{where}: fast_fail_status must be an HTTP status or a list of them, got {raw!r}")
    reason = spec.get("fast_fail_reason")
    if reason is not None and not isinstance(reason, str):
        raise HarnessError(f"{where}: fast_fail_reason must be a string (the body's \"error\"), got {reason!r}")
    return FastFail(status=tuple(statuses), p99_ms=_number(spec, "fast_fail_p99_ms", where, above=0),
                    reason=reason or None)


def _number(values: Mapping[str, Any], key: str, where: str, *, default: float | None = None,
            above: float | None = None, least: float | None = None, most: float | None = None,
            whole: bool = False) -> float:
    value = values.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and value != int(value)) \
            or (value != math.inf and not math.isfinite(value)):
        raise HarnessError(f"{where}: {key} must be a {'whole ' if whole else ''}number, got {value!r}")
    if (above is not None and not value > above) or (least is not None and value < least) \
            or (most is not None and value > most):
        bounds = [f"> {above:g}" if above is not None else "", f">= {least:g}" if least is not None else "",
                  f"<= {most:g}" if most is not None else ""]
        raise HarnessError(f"{where}: {key} must be {' and '.join(b for b in bounds if b)}, got {value!r}")
    return float(value)


__all__ = ["BreakerPolicy", "FastFail", "fast_fail_from_spec", "policy_from_spec"]
