"""Checks of service discovery: membership as the registry, the balancer and
the clients saw it.

What each view is made of:
- registry and balancer: ``observed`` events ``joined``/``left`` with a
  ``member``, from membership probes (harness/patterns/discovery.py) whose source
  names the view;
- clients: the successful requests, each naming the instance that served it
  in a body field (``instance``);
- what really ran: the runtime's lifecycle events.

Every check takes the fault window from the timeline, so the same functions
judge a saved run.
"""

from __future__ import annotations

import pandas as pd

from ..timeline import Frames
from .verdict import Verdict, check, judged, unknown
from .windows import MissingData, fault_window, phase, requests_between

REGISTRY, BALANCER = "registry", "balancer"
CLIENT_WINDOW_S = 1.0   # clients "see" an instance that served them within this long


def membership_events(frames: Frames, view: str) -> pd.DataFrame:
    o = frames.observed
    if o.empty or "member" not in o:
        raise MissingData(f"no membership events were recorded (a membership probe named {view!r} is needed)")
    rows = o[(o["source"] == view) & o["event"].isin(["joined", "left"])]
    if rows.empty:
        raise MissingData(f"the {view} probe recorded no membership")
    return rows.sort_values("t_s")


def members_at(events: pd.DataFrame, t_s: float) -> set[str]:
    """The view's members after every event up to t_s."""
    members: set[str] = set()
    for row in events[events["t_s"] <= t_s].itertuples():
        (members.add if row.event == "joined" else members.discard)(str(row.member))
    return members


def first_event(events: pd.DataFrame, event: str, member: str, after_s: float) -> float | None:
    rows = events[(events["event"] == event) & (events["member"] == member) & (events["t_s"] >= after_s)]
    return float(rows["t_s"].iloc[0]) if len(rows) else None


def served(frames: Frames, field: str) -> pd.DataFrame:
    r = frames.requests
    if field not in r:
        raise MissingData(f"the requests carry no {field!r} field (LoadSpec.body_fields must ask for it)")
    return r[r["ok"].astype(bool) & r[field].notna()]


def running_at_end(frames: Frames, service: str, initial: int) -> set[int]:
    """Instance numbers of `service` running at the end: the `initial` ones
    (up before recording began), changed by the lifecycle events recorded."""
    lc = frames.lifecycle
    alive: dict[int, bool] = {i: True for i in range(initial)}
    for row in lc[lc["service"] == service].sort_values("t_s").itertuples():
        if row.action in ("start", "ready", "resume", "pause"):
            alive[int(row.instance)] = True
        elif row.action in ("kill", "stop", "scale-in"):
            alive[int(row.instance)] = False
    return {i for i, up in alive.items() if up}


def registered_s(frames: Frames, joined: pd.Series) -> float:
    """When a member registered: the entry's own registered_ns when it has one
    (the probe sees it up to one interval late), else when the probe saw it."""
    stamp = joined.get("registered_ns")
    if stamp is not None and stamp == stamp:
        return min(float(joined["t_s"]), (int(stamp) - frames.t0_ns) / 1e9)
    return float(joined["t_s"])


def _fmt(t: float | None) -> str:
    return "never" if t is None else f"{t:.2f} s"


@check("takes-traffic")
def takes_traffic(frames: Frames, *, member: str, bound_s: float, field: str = "instance") -> Verdict:
    """A new instance serves a client within bound_s of appearing in the registry."""
    name = "takes-traffic"
    start, _ = fault_window(frames)
    joined = membership_events(frames, REGISTRY)
    joined = joined[(joined["event"] == "joined") & (joined["member"] == member) & (joined["t_s"] >= start)]
    if joined.empty:
        return unknown(name, f"{member} never appeared in the registry after the fault started at {start:.2f} s")
    registered = registered_s(frames, joined.iloc[0])
    rows = served(frames, field)
    rows = rows[(rows[field] == member) & (rows["t_s"] >= start)]
    first = float(rows["end_s"].min()) if len(rows) else None
    in_balancer = first_event(membership_events(frames, BALANCER), "joined", member, start)
    delay = None if first is None else max(0.0, first - registered)
    return judged(
        name, {"served_within_bound": delay is not None and delay <= bound_s},
        f"{member} registered at {registered:.2f} s, was in the balancer at {_fmt(in_balancer)} and first served a "
        f"client at {_fmt(first)}: {'never' if delay is None else f'{delay:.2f} s'} after registering (limit {bound_s:g} s)",
        registered_s=round(registered, 3), in_balancer_s=in_balancer, first_served_s=first,
        delay_s=None if delay is None else round(delay, 3), bound_s=bound_s, served_by_it=len(rows),
    )


@check("dead-instance-removed")
def dead_instance_removed(frames: Frames, *, member: str, ttl_s: float, bound_s: float, budget_s: float,
                          field: str = "instance") -> Verdict:
    """A crashed or frozen instance leaves the registry and the balancer within
    TTL + bound_s of the fault; the requests that failed meanwhile are at most
    its share of budget_s seconds of traffic."""
    name = "dead-instance-removed"
    start, end = fault_window(frames)
    limit = ttl_s + bound_s
    seen = {view: membership_events(frames, view) for view in (REGISTRY, BALANCER)}
    left = {view: first_event(events, "left", member, start) for view, events in seen.items()}
    late = {view: (t is None or t - start > limit) for view, t in left.items()}
    base_start, base_end = phase(frames, "baseline")
    base = requests_between(frames, base_start, base_end, min_count=10)
    rate = len(base) / max(base_end - base_start, 1e-9)
    before = members_at(seen[BALANCER], start) or {member}
    allowed = rate * budget_s / len(before)
    window = frames.requests_in(start, end)
    failed = int((~window["ok"].astype(bool)).sum())
    clauses = {"left_registry_in_time": not late[REGISTRY], "left_balancer_in_time": not late[BALANCER],
               "failures_within_budget": failed <= allowed}
    taken = ", ".join(f"{v} {'never' if t is None else f'{t - start:.2f} s'}" for v, t in left.items())
    return judged(
        name, clauses,
        f"{member} left the {taken} after the fault (limit TTL {ttl_s:g} + {bound_s:g} s = {limit:g} s); "
        f"{failed} requests failed in the fault window, budget {allowed:.0f} "
        f"({budget_s:g} s of its 1/{len(before)} share of {rate:.1f} req/s)",
        registry_left_after_s=None if left[REGISTRY] is None else round(left[REGISTRY] - start, 3),
        balancer_left_after_s=None if left[BALANCER] is None else round(left[BALANCER] - start, 3),
        limit_s=limit, failed_requests=failed, failure_budget=round(allowed, 1), requests_in_window=len(window),
    )


@check("graceful-stop-loses-nothing")
def graceful_stop_loses_nothing(frames: Frames, *, member: str, service: str, instance: int) -> Verdict:
    """A gracefully stopped instance deregisters before it exits, and no
    request fails from the stop until the fault ends."""
    name = "graceful-stop-loses-nothing"
    start, end = fault_window(frames)
    window = requests_between(frames, start, end, min_count=10)
    failed = window[~window["ok"].astype(bool)]
    left = first_event(membership_events(frames, REGISTRY), "left", member, start)
    lc = frames.lifecycle
    stops = lc[(lc["service"] == service) & (lc["instance"] == instance) & (lc["action"] == "stop") & (lc["t_s"] >= start)]
    exited = float(stops["t_s"].iloc[0]) if len(stops) else None
    first = left is not None and exited is not None and left <= exited
    reasons = failed["status"].astype(str).value_counts().to_dict() if len(failed) else {}
    return judged(
        name, {"deregistered_before_exit": first, "no_request_failed": failed.empty},
        f"{member} left the registry at {_fmt(left)} and exited at {_fmt(exited)} "
        f"({'deregistered first' if first else 'NOT deregistered first'}); {len(failed)} of {len(window)} requests "
        f"failed in the fault window (limit 0){f', by status {reasons}' if reasons else ''}",
        left_registry_s=left, exited_s=exited, failed_requests=len(failed), requests=len(window),
    )


@check("serves-through-registry-outage")
def serves_through_registry_outage(frames: Frames, *, max_failed_ratio: float) -> Verdict:
    """While the registry is down the balancer keeps its last membership and
    the clients are served."""
    name = "serves-through-registry-outage"
    start, end = fault_window(frames)
    window = requests_between(frames, start, end, min_count=10)
    failed = int((~window["ok"].astype(bool)).sum())
    ratio = failed / len(window)
    events = membership_events(frames, BALANCER)
    before = members_at(events, start)
    lost = sorted(set(events[(events["t_s"] > start) & (events["t_s"] <= end) & (events["event"] == "left")]["member"]))
    return judged(
        name, {"failures_within_limit": ratio <= max_failed_ratio, "balancer_kept_members": not lost},
        f"{failed} of {len(window)} requests failed while the registry was down ({ratio:.1%}, limit "
        f"{max_failed_ratio:.1%}); the balancer had {len(before)} members and dropped "
        f"{', '.join(lost) if lost else 'none'}",
        failed_requests=failed, requests=len(window), failed_ratio=round(ratio, 4), limit=max_failed_ratio,
        balancer_members_before=len(before), dropped=lost,
    )


@check("membership-converges")
def membership_converges(frames: Frames, *, service: str, initial: int, bound_s: float,
                         field: str = "instance") -> Verdict:
    """Within bound_s of the fault's end, the registry, the balancer and the
    clients all see exactly the instances that run (`initial` of them when
    the recording began)."""
    name = "membership-converges"
    _, end = fault_window(frames)
    expected = {f"{service}-{i}" for i in running_at_end(frames, service, initial)}
    at = end + bound_s
    seen = {view: membership_events(frames, view) for view in (REGISTRY, BALANCER)}
    registry, balancer = members_at(seen[REGISTRY], at), members_at(seen[BALANCER], at)
    rows = served(frames, field)
    after = rows[(rows["t_s"] >= at) & (rows["t_s"] < at + CLIENT_WINDOW_S)]
    if len(after) < 3 * max(1, len(expected)):
        return unknown(name, f"only {len(after)} successful requests in {at:.2f}-{at + CLIENT_WINDOW_S:.2f} s: "
                             "too few to tell which instances serve (make the recovery phase longer)")
    clients = set(after[field].astype(str))
    views = {"registry": registry, "balancer": balancer, "clients": clients}
    wrong = {v: s for v, s in views.items() if s != expected}
    converged = _converged_at(views_events=seen, rows=rows, field=field, expected=expected, after_s=end)
    text = "; ".join(f"{v}: {', '.join(sorted(s)) or 'none'}" for v, s in views.items())
    clauses = {"registry_agrees": registry == expected, "balancer_agrees": balancer == expected,
               "clients_agree": clients == expected}
    return judged(
        name, clauses,
        f"{bound_s:g} s after the fault ended, expected {', '.join(sorted(expected)) or 'none'}; {text}"
        + (f" — {', '.join(wrong)} disagree" if wrong else "")
        + f" (all agreed {'never' if converged is None else f'{converged:.2f} s after the end'})",
        expected=sorted(expected), registry=sorted(registry), balancer=sorted(balancer), clients=sorted(clients),
        converged_after_s=None if converged is None else round(converged, 3), bound_s=bound_s,
    )


def _converged_at(*, views_events: dict[str, pd.DataFrame], rows: pd.DataFrame, field: str,
                  expected: set[str], after_s: float) -> float | None:
    """Seconds after after_s from which registry, balancer and a sliding client
    window first all equal `expected` (for a figure; the verdict is judged at the bound)."""
    times = sorted({after_s, *(float(t) for e in views_events.values() for t in e["t_s"] if t > after_s)})
    last = float(rows["t_s"].max()) if len(rows) else after_s
    for t in times:
        if not all(members_at(e, t) == expected for e in views_events.values()):
            continue
        step = t
        while step + CLIENT_WINDOW_S <= last:
            window = rows[(rows["t_s"] >= step) & (rows["t_s"] < step + CLIENT_WINDOW_S)]
            if set(window[field].astype(str)) == expected:
                return step - after_s
            step += 0.1
        return None
    return None
