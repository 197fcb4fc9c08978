"""The check every pattern shares: after the fault, service comes back."""

from __future__ import annotations

from ..timeline import Frames
from .verdict import Verdict, check, judged, unknown
from .windows import MissingData, only, fault_window, phase, recovery_time, requests_between, round_figures, success_rate


@check("recovers")
def recovers(frames: Frames, *, bound_s: float, min_success: float = 0.99, min_requests: int = 20,
             request_name: str | None = None) -> Verdict:
    """After the fault is reverted, success returns to >= min_success within
    bound_s and stays (of one route's requests, if request_name is given)."""
    name = f"recovers ({request_name})" if request_name else "recovers"
    try:
        frames = only(frames, request_name)
        _, fault_end = fault_window(frames)
        _, until = phase(frames, "recovery")
        requests_between(frames, fault_end, until, min_count=min_requests)
    except MissingData as exc:
        return unknown(name, str(exc))
    took = recovery_time(frames, after_s=fault_end, until_s=until, min_success=min_success, min_requests=min_requests)
    after = frames.requests_in(fault_end, until)
    rate = success_rate(after)
    if took is None:
        return judged(name, {"success_back_within_bound": False},
                      f"never recovered: {rate * 100:.1f}% succeeded in the {until - fault_end:.1f}s "
                      "after the fault",
                      **round_figures(recovery_s=None, bound_s=bound_s, success_after_pct=rate * 100, requests=len(after)))
    return judged(
        name, {"success_back_within_bound": took <= bound_s},
        f"success back to >= {min_success * 100:.0f}% {took:.2f}s after the fault ended (bound {bound_s:.1f}s)",
        **round_figures(recovery_s=took, bound_s=bound_s, success_after_pct=rate * 100, requests=len(after)),
    )
