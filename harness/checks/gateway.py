"""Checks of an API gateway, from what clients saw and what reached the backends.

What clients saw: each request row with its name (the load names the
route, and ``bad-token <kind> <route>`` for requests sent with a bad
token), status, latency and the answer's ``partial``, ``missing`` and
``stale`` (LoadSpec.body_fields). What reached a backend: the backends'
own records of arrivals (``observed`` events ``arrival`` with the
``request_id`` the gateway passed on), matched to the load's rows by the
id the load gave each request (LoadSpec.request_id_header).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import pandas as pd

from ..timeline import Frames
from .recovery import recovers
from .verdict import Verdict, check, judged, unknown
from .windows import MissingData, fault_window, only, percentile, requests_between, round_figures

BAD_TOKEN = "bad-token"


def listed(value: Any) -> list[str]:
    """A row's list field: a list, or the JSON text the load keeps of it; anything else is empty."""
    if isinstance(value, str) and value.startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return [str(v) for v in value] if isinstance(value, list) else []


def names_in(rows: pd.DataFrame, column: str, name: str) -> pd.Series:
    """True where the row's list field `column` names `name`."""
    if column not in rows:
        return pd.Series(False, index=rows.index)
    return rows[column].map(lambda v: name in listed(v)).astype(bool)


def arrivals_at(frames: Frames, backends: tuple[str, ...]) -> pd.DataFrame:
    o = frames.observed
    if o.empty or "event" not in o:
        return o
    return o[o["source"].isin(backends) & (o["event"] == "arrival")]


@check("rejects-bad-tokens", steady=True)  # bad tokens are refused with or without a fault
def rejects_bad_tokens(frames: Frames, *, backends: tuple[str, ...], status: int = 401,
                       min_requests: int = 20) -> Verdict:
    """Every request sent with a bad token is answered `status`, and none of
    them reaches a backend (its request id is in no backend's arrivals)."""
    name = "rejects-bad-tokens"
    rows = frames.requests
    bad = rows[rows["name"].astype(str).str.startswith(BAD_TOKEN)]
    if len(bad) < min_requests:
        return unknown(name, f"only {len(bad)} requests with bad tokens were sent (need {min_requests})")
    if "request_id" not in rows or rows["request_id"].isna().all():
        return unknown(name, "request rows carry no request id: load with request_id_header")
    arrivals = arrivals_at(frames, backends)
    if arrivals.empty or "request_id" not in arrivals:
        return unknown(name, f"no arrivals with request ids were recorded at {', '.join(backends)}: probe their arrivals")
    good_ids = set(rows.loc[~rows.index.isin(bad.index), "request_id"].dropna())
    matched = int(arrivals["request_id"].isin(good_ids).sum())
    if matched == 0:
        return unknown(name, "no arrival carries the id of a request the load sent: the entry must pass the request id on")
    by_id = dict(zip(bad["request_id"], bad["name"].astype(str)))
    leaked = arrivals[arrivals["request_id"].isin(by_id)]
    wrong = bad[bad["status"] != status]
    kinds = bad["name"].astype(str).str.split(" ").str[1]
    leaked_kinds = sorted({by_id[i].split(" ")[1] for i in leaked["request_id"]})
    per_backend = {str(k): int(v) for k, v in leaked["source"].value_counts().items()}
    statuses = {str(k): int(v) for k, v in wrong["status"].value_counts().items()}
    text = (f"{len(bad) - len(wrong)} of {len(bad)} requests with bad tokens ({kinds.nunique()} kinds) got {status}; "
            f"{len(leaked)} reached a backend")
    if len(leaked):
        text += f" ({', '.join(f'{b} {n}' for b, n in per_backend.items())}; kinds: {', '.join(leaked_kinds[:6])})"
    if len(wrong):
        text += f"; other answers: {', '.join(f'{s} x{n}' for s, n in statuses.items())}"
    return judged(
        name, {"bad_tokens_refused": wrong.empty, "none_reached_backend": leaked.empty}, text,
        **round_figures(bad_requests=len(bad), kinds=int(kinds.nunique()), refused=len(bad) - len(wrong),
                        not_refused=len(wrong), reached_backends=len(leaked), good_arrivals_matched=matched,
                        leaked_kinds=",".join(leaked_kinds) or None),
    )


@check("partial-within-budget")
def partial_within_budget(frames: Frames, *, route: str, optional: str, budget_ms: float, margin_ms: float,
                          min_partial_ratio: float, min_success: float, min_requests: int = 20) -> Verdict:
    """While an optional backend is slower than its timeout, the route's p99
    stays within budget + margin, its answers stay 200, and they say partial
    with the optional backend in ``missing``. Judged: requests started in the
    fault window at least budget + margin before its end, which had to be
    answered while the fault was still on."""
    name = "partial-within-budget"
    limit = budget_ms + margin_ms
    try:
        mine = only(frames, route)
        start, end = fault_window(mine)
        during = requests_between(mine, start, end - limit / 1000, min_count=min_requests)
    except MissingData as exc:
        return unknown(name, str(exc))
    base = _latencies(mine, "baseline")
    p50, p99 = percentile(during["latency_ms"], 50), percentile(during["latency_ms"], 99)
    answered = during[during["status"] == 200]
    marked = answered[answered["partial"].eq(True) & names_in(answered, "missing", optional)] \
        if "partial" in answered else answered.iloc[0:0]
    success = len(answered) / len(during)
    ratio = len(marked) / len(answered) if len(answered) else 0.0
    clauses = {"p99_within_budget": p99 <= limit, "success_held": success >= min_success,
               "answers_marked_partial": ratio >= min_partial_ratio}
    return judged(
        name, clauses,
        f"p99 {p99:.0f} ms while {optional} was slow (limit {budget_ms:.0f} + {margin_ms:.0f} ms; baseline p99 "
        f"{base[1]:.0f} ms); {success * 100:.1f}% answered 200 (min {min_success * 100:.0f}%), "
        f"{ratio * 100:.1f}% of them partial without {optional} (min {min_partial_ratio * 100:.0f}%)",
        **round_figures(p50_ms=p50, p99_ms=p99, limit_ms=limit, baseline_p50_ms=base[0], baseline_p99_ms=base[1],
                        success_pct=success * 100, partial_pct=ratio * 100, requests=len(during)),
    )


@check("serves-stale")
def serves_stale(frames: Frames, *, route: str, backend: str, ttl_s: float, min_hit_ratio: float,
                 grace_s: float, min_requests: int = 20) -> Verdict:
    """While `backend` is down, answers still carry its data from the cache
    (hit ratio >= min_hit_ratio), and once its TTL has run out every answer
    that carries it says stale: fresh data cannot exist while it is down."""
    name = "serves-stale"
    try:
        mine = only(frames, route)
        start, end = fault_window(mine)
        back = _back_at(mine, backend, start, end)
        down = requests_between(mine, start, back, min_count=min_requests)
        late = requests_between(mine, start + ttl_s + grace_s, back - grace_s, min_count=5)
    except MissingData as exc:
        return unknown(name, str(exc))
    carried = (down["status"] == 200) & ~names_in(down, "missing", backend)
    stale = carried & names_in(down, "stale", backend)
    late_carried = (late["status"] == 200) & ~names_in(late, "missing", backend)
    unmarked = int((late_carried & ~names_in(late, "stale", backend)).sum())
    ratio = float(carried.mean())
    clauses = {"hit_ratio_held": ratio >= min_hit_ratio, "served_stale": int(stale.sum()) > 0,
               "stale_marked_after_ttl": unmarked == 0}
    return judged(
        name, clauses,
        f"{int(carried.sum())} of {len(down)} answers while {backend} was down carried its data "
        f"(hit ratio {ratio * 100:.1f}%, min {min_hit_ratio * 100:.0f}%), {int(stale.sum())} marked stale; "
        f"{unmarked} answers after its {ttl_s:g} s TTL carried it unmarked (limit 0)",
        **round_figures(hit_ratio=ratio, min_hit_ratio=min_hit_ratio, stale_served=int(stale.sum()),
                        from_fresh_cache=int((carried & ~stale).sum()), unmarked_after_ttl=unmarked,
                        errors=int((down["status"] != 200).sum()), requests=len(down), down_s=back - start),
    )


@check("recovers-complete")
def recovers_complete(frames: Frames, *, route: str, bound_s: float, min_success: float = 0.99,
                      min_requests: int = 20) -> Verdict:
    """After the fault, the route's answers are whole again: 200, not partial,
    nothing stale, for >= min_success of them, within bound_s. The shared
    ``recovers`` judges it, with "ok" read as "whole"."""
    r = frames.requests
    partial = r["partial"].eq(True) if "partial" in r else pd.Series(False, index=r.index)
    stale = r["stale"].map(lambda v: bool(listed(v))) if "stale" in r else pd.Series(False, index=r.index)
    whole = replace(frames, requests=r.assign(ok=(r["status"] == 200) & ~partial & ~stale))
    v = recovers(whole, bound_s=bound_s, min_success=min_success, min_requests=min_requests, request_name=route)
    return replace(v, check="recovers-complete", explanation=f"complete, fresh answers: {v.explanation}")


def _latencies(frames: Frames, phase_name: str) -> tuple[float, float]:
    """p50 and p99 of the requests a phase began and finished, for contrast
    (those still running at its end met the next phase's fault)."""
    window = frames.phase_window(phase_name)
    if window is None:
        return math.nan, math.nan
    rows = frames.requests_in(*window)
    rows = rows[rows["end_s"] <= window[1]]
    return percentile(rows["latency_ms"], 50), percentile(rows["latency_ms"], 99)


def _back_at(frames: Frames, service: str, start_s: float, end_s: float) -> float:
    """When the service was back in the fault window (its restart or resume), else the window's end."""
    life = frames.lifecycle
    back = life[(life["service"] == service) & life["action"].isin(("start", "resume"))
                & (life["t_s"] > start_s) & (life["t_s"] <= end_s)]
    return float(back["t_s"].min()) if len(back) else end_s


__all__ = ["partial_within_budget", "recovers_complete", "rejects_bad_tokens", "serves_stale"]
