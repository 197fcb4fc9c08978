"""Checks of asynchronous messaging, on the history of one experiment, in
the manner of Jepsen: what clients were told (every 202 with its message
id, from the request rows) against what consumers processed (``observed``
events named ``processed`` with the message ``id``, as the consumer
recorded them).

A message accepted but not processed by the end of the experiment (its
drain phase, when it has one: load stopped, the consumer working off its
backlog) counts as lost; the verdict says how long after the fault that was.
"""

from __future__ import annotations

import pandas as pd

from ..timeline import Frames
from .verdict import Verdict, check, judged, unknown
from .windows import MissingData, fault_window, only, percentile, phase, requests_between, round_figures


def accepted(frames: Frames, *, status: int = 202) -> pd.DataFrame:
    """Requests the producer acknowledged, with the message id it gave."""
    r = frames.requests
    if "id" not in r:
        raise MissingData("request rows carry no message id: load with body_fields=('id', ...)")
    return r[(r["status"] == status) & r["id"].notna()]


def processed(frames: Frames, *, source: str) -> pd.DataFrame:
    """Every processing of a message the consumer recorded (one row each)."""
    o = frames.observed
    rows = o[(o["source"] == source) & (o["event"] == "processed")] if len(o) else o
    if rows.empty or "id" not in rows:
        raise MissingData(f"no processed messages were recorded from {source!r}")
    return rows


@check("no-message-lost")
def no_message_lost(frames: Frames, *, consumer: str, max_lost: int = 0) -> Verdict:
    """Every message acknowledged to a client (202) was processed at least once."""
    name = "no-message-lost"
    try:
        acks = accepted(frames)
        done = processed(frames, source=consumer)
        _, end = frames.phase_window("drain") or phase(frames, "recovery")
        _, fault_end = fault_window(frames)
    except MissingData as exc:
        return unknown(name, str(exc))
    if acks.empty:
        return unknown(name, "no request was acknowledged with 202")
    lost = sorted(set(acks["id"]) - set(done["id"]))
    examples = ", ".join(str(i) for i in lost[:3])
    return judged(
        name, {"lost_within_limit": len(lost) <= max_lost},
        f"{len(lost)} of {len(acks)} acknowledged messages were never processed (limit {max_lost}), "
        f"{end - fault_end:.1f}s after the fault ended" + (f"; e.g. {examples}" if lost else ""),
        **round_figures(accepted=len(acks), processed_ids=int(done["id"].nunique()), lost=len(lost),
                        limit=max_lost, drain_time_s=end - fault_end),
    )


@check("duplicates-bounded")
def duplicates_bounded(frames: Frames, *, consumer: str, max_duplicates: int) -> Verdict:
    """Messages processed more than once stay within the spec's bound (an
    idempotent consumer shows redeliveries as 0 double processings)."""
    name = "duplicates-bounded"
    try:
        done = processed(frames, source=consumer)
    except MissingData as exc:
        return unknown(name, str(exc))
    counts = done["id"].value_counts()
    extra = int((counts - 1).clip(lower=0).sum())
    return judged(
        name, {"duplicates_within_limit": extra <= max_duplicates},
        f"{extra} extra processings of {int(counts.size)} messages (limit {max_duplicates})",
        **round_figures(duplicates=extra, messages=int(counts.size), limit=max_duplicates),
    )


@check("lag-recovers")
def lag_recovers(frames: Frames, *, consumer: str, lag_bound_ms: float, within_s: float) -> Verdict:
    """Publish-to-process lag is back under lag_bound_ms, for every message
    processed from then on, within `within_s` of the fault's end, and while the
    load still runs: a consumer that only catches up once the load stops (the
    drain) never kept up, however long the bound (a broker whose bound outlasts
    the recovery phase could otherwise never fail)."""
    name = "lag-recovers"
    done = processed(frames, source=consumer)
    _, fault_end = fault_window(frames)
    load_end = load_stopped(frames)
    if "published_t_ns" not in done:
        return unknown(name, f"{consumer}'s records carry no published_t_ns, so lag cannot be told")
    lag_ms = (done["t_s"] - (done["published_t_ns"].astype("int64") - frames.t0_ns) / 1e9) * 1000
    after = done.assign(lag_ms=lag_ms)[done["t_s"] >= fault_end]
    deadline_s = min(within_s, load_end - fault_end)
    bounds = dict(bound_s=within_s, load_left_s=load_end - fault_end, deadline_s=deadline_s, lag_bound_ms=lag_bound_ms)
    if after.empty:
        return judged(name, {"lag_back_within_bound": False}, "nothing was processed after the fault ended",
                      **round_figures(recovered_after_s=None, **bounds))
    over = after[after["lag_ms"] > lag_bound_ms]
    back_at = float(over["t_s"].max()) - fault_end if len(over) else 0.0
    worst = float(after["lag_ms"].max())
    when = "while the load ran" if back_at <= load_end - fault_end else "only after the load stopped"
    never = len(over) and over["t_s"].max() >= after["t_s"].max()  # the last processing recorded was still late
    back = (f"lag still over {lag_bound_ms:.0f} ms at the last processing, {back_at:.2f}s after the fault ended"
            if never else f"lag back under {lag_bound_ms:.0f} ms {back_at:.2f}s after the fault ended, {when}")
    return judged(
        name, {"lag_back_within_bound": back_at <= deadline_s},
        f"{back} (bound "
        f"{deadline_s:.1f}s: {within_s:g}s, or the {load_end - fault_end:.1f}s the load ran on); "
        f"worst lag after the fault {worst:.0f} ms",
        **round_figures(recovered_after_s=back_at, worst_lag_ms=worst, p99_lag_ms=percentile(after["lag_ms"], 99),
                        **bounds),
    )


def load_stopped(frames: Frames) -> float:
    """When the load stopped: the drain's start, else the end of the recovery phase."""
    drain = frames.phase_window("drain")
    return drain[0] if drain else phase(frames, "recovery")[1]


@check("accepts-during-outage")
def accepts_during_outage(frames: Frames, *, accept_p99_ms: float, request_name: str | None = None,
                          min_accepted: float = 0.99, grace_ms: float = 0.0) -> Verdict:
    """While the broker or the producer's link is out, the producer still
    accepts (202, kept durable locally) within a latency bound. Requests
    started in the first grace_ms (the producer's publish timeout: those in
    flight when a pause begins wait it out once) are left out."""
    name = "accepts-during-outage"
    try:
        frames = only(frames, request_name)
        start, end = fault_window(frames)
        during = requests_between(frames, start + grace_ms / 1000, end, min_count=5)
    except MissingData as exc:
        return unknown(name, str(exc))
    ok = during["status"] == 202
    rate = float(ok.mean())
    p99 = percentile(during["latency_ms"], 99)
    return judged(
        name, {"accepted_during_outage": rate >= min_accepted, "accept_p99_within_limit": p99 <= accept_p99_ms},
        f"{rate * 100:.1f}% accepted during the outage (need {min_accepted * 100:.0f}%), "
        f"p99 {p99:.0f} ms (limit {accept_p99_ms:.0f} ms)",
        **round_figures(accepted_pct=rate * 100, p99_ms=p99, limit_ms=accept_p99_ms, requests=len(during)),
    )


__all__ = ["accepted", "accepts_during_outage", "duplicates_bounded", "lag_recovers", "no_message_lost", "processed"]
