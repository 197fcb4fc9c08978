"""Turns an experiment's frames into the time series the charts draw.

Requests are bucketed by start time so a burst of slow calls shows up where
it began, which is where the fault window that caused it is shaded.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from harness.report.axes import nice_step
from harness.timeline import Frames

Points = list[tuple[float, float | None]]
BASE_BUCKET_S = 0.5
MAX_BUCKETS = 600


def ok_mask(requests: pd.DataFrame) -> pd.Series:
    """True where a request succeeded; a missing ok counts as a failure."""
    return requests["ok"].map(lambda v: bool(v) if isinstance(v, (bool, int, float)) and v == v else False)


def x_range(frames: Frames) -> tuple[float, float]:
    """The span every chart of an experiment shares: requests, phases and faults."""
    starts = [0.0]
    ends = [1.0]
    r = frames.requests
    if len(r):
        starts.append(float(r["t_s"].min()))
        ends.append(float(r["end_s"].max()))
    for df in (frames.phases, frames.faults):
        if len(df):
            starts.append(float(df["start_s"].min()))
            ends.append(float(pd.to_numeric(df["end_s"], errors="coerce").max()))
    if len(frames.probes):
        ends.append(float(frames.probes["t_s"].max()))
    ends = [e for e in ends if math.isfinite(e)]
    return min(starts), max(ends)


def bucket_size(span: float) -> float:
    """About half a second, coarser only when that would draw too many points."""
    if span / BASE_BUCKET_S <= MAX_BUCKETS:
        return BASE_BUCKET_S
    return nice_step(span, MAX_BUCKETS)


def _buckets(requests: pd.DataFrame, span: tuple[float, float]) -> tuple[pd.Series, float, list[float]]:
    size = bucket_size(span[1] - span[0])
    first = math.floor(span[0] / size)
    last = math.floor(span[1] / size)
    index = requests["t_s"].astype(float).floordiv(size).astype(int)
    centres = [(i + 0.5) * size for i in range(first, last + 1)]
    return index, size, centres


def latency_series(frames: Frames, span: tuple[float, float]) -> dict[str, Points]:
    """p50/p95/p99 latency (ms) of every request per bucket; None where empty."""
    r = frames.requests
    out: dict[str, Points] = {"p50": [], "p95": [], "p99": []}
    if not len(r):
        return out
    index, size, centres = _buckets(r, span)
    latency = pd.to_numeric(r["latency_ms"], errors="coerce")
    grouped = latency.groupby(index)
    quant = {q: grouped.quantile(q / 100) for q in (50, 95, 99)}
    for c in centres:
        key = math.floor(c / size)
        for q, values in quant.items():
            v = values.get(key)
            out[f"p{q}"].append((c, None if v is None or pd.isna(v) else float(v)))
    return out


def error_throughput_series(frames: Frames, span: tuple[float, float]) -> tuple[Points, Points]:
    """(% of requests not ok, requests started per second) per bucket."""
    r = frames.requests
    if not len(r):
        return [], []
    index, size, centres = _buckets(r, span)
    failed = (~ok_mask(r)).astype(int)
    counts = failed.groupby(index).count()
    fails = failed.groupby(index).sum()
    errors: Points = []
    rate: Points = []
    first, last = int(index.min()), int(index.max())
    for c in centres:
        key = math.floor(c / size)
        n = int(counts.get(key, 0))
        errors.append((c, 100.0 * int(fails.get(key, 0)) / n if n else None))
        # zero inside the load's span is a real stall; outside it there was no load
        rate.append((c, n / size if first <= key <= last else None))
    return errors, rate


def reason_series(frames: Frames, span: tuple[float, float], top: int = 4) -> dict[str, Points]:
    """% of requests per bucket that failed for each of the most frequent
    reasons (the error body's `error`, else the client's error text), so a
    breaker's fast-fails show apart from the timeouts that opened it."""
    r = frames.requests
    if not len(r):
        return {}
    failed = ~ok_mask(r)
    if not failed.any():
        return {}
    reasons = r.get("reason", pd.Series([None] * len(r), index=r.index)).map(_label)
    reasons = reasons.where(reasons != "", r["error"].map(_label)).where(failed, None)
    index, size, centres = _buckets(r, span)
    counts = index.groupby(index).count()
    out: dict[str, Points] = {}
    for reason in reasons.dropna().value_counts().index[:top]:
        hits = (reasons == reason).astype(int).groupby(index).sum()
        out[str(reason)] = [
            (c, 100.0 * int(hits.get(k, 0)) / int(counts[k]) if int(counts.get(k, 0)) else None)
            for c, k in ((c, math.floor(c / size)) for c in centres)
        ]
    return out


def observed_series(frames: Frames, span: tuple[float, float]) -> dict[str, Points]:
    """Events per second that services reported (e.g. arrivals at a
    dependency), one line per source and event."""
    o = frames.observed
    if not len(o) or "event" not in o:
        return {}
    index, size, centres = _buckets(o, span)
    out: dict[str, Points] = {}
    for (source, event), rows in o.groupby([o["source"].astype(str), o["event"].astype(str)], sort=True):
        per = index.loc[rows.index].value_counts()
        out[f"{source} {event}/s"] = [(c, int(per.get(math.floor(c / size), 0)) / size) for c in centres]
    return out


def probe_series(frames: Frames) -> dict[str, Points]:
    """Numeric probe values by probe name; non-numeric samples are left out."""
    p = frames.probes
    if not len(p) or "probe" not in p or "value" not in p:
        return {}
    out: dict[str, Points] = {}
    for name, rows in p.groupby(p["probe"].astype(str), sort=True):
        values = [(float(t), _number(v)) for t, v in zip(rows["t_s"], rows["value"])]
        values = [(t, v) for t, v in values if v is not None]
        if values:
            out[name] = values
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def error_breakdown(frames: Frames, top: int = 10) -> tuple[list[tuple[str, str, str, int]], int, int]:
    """The most frequent (status, hop, error) of failed requests, the failure total, the kinds."""
    r = frames.requests
    if not len(r):
        return [], 0, 0
    failed = r[~ok_mask(r)]
    if not len(failed):
        return [], 0, 0
    keys = pd.DataFrame({col: failed[col].map(_label) for col in ("status", "hop", "error")})
    counts = keys.value_counts()
    rows = sorted(((s, h, e, int(n)) for (s, h, e), n in counts.items()), key=lambda row: (-row[3], row[:3]))
    return rows[:top], len(failed), len(rows)


def _label(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
