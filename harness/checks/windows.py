"""Shared pieces of checks: the phase and fault windows, percentiles, rates."""

from __future__ import annotations

import math

import pandas as pd

from ..timeline import Frames


class MissingData(Exception):
    """The timeline lacks what a check needs; the check says 'unknown'."""


def only(frames: Frames, request_name: str | None) -> Frames:
    """The same timeline with only the requests of one name (one route), so
    any check can judge one route of several (e.g. critical work apart)."""
    if request_name is None:
        return frames
    from dataclasses import replace

    kept = frames.requests[frames.requests["name"] == request_name].reset_index(drop=True)
    if kept.empty:
        raise MissingData(f"no requests named {request_name!r} were recorded")
    return replace(frames, requests=kept)


def phase(frames: Frames, name: str) -> tuple[float, float]:
    window = frames.phase_window(name)
    if window is None:
        raise MissingData(f"the timeline has no {name!r} phase")
    return window


def fault_window(frames: Frames) -> tuple[float, float]:
    """The first fault's window (start of apply to end of revert)."""
    if frames.faults.empty:
        raise MissingData("the timeline has no fault window")
    row = frames.faults.iloc[0]
    return float(row["start_s"]), float(row["end_s"])


def requests_between(frames: Frames, start_s: float, end_s: float, *, min_count: int = 1) -> pd.DataFrame:
    """Requests that started inside the window; too few is missing data."""
    rows = frames.requests_in(start_s, end_s)
    if len(rows) < min_count:
        raise MissingData(f"only {len(rows)} requests started in {start_s:.2f}-{end_s:.2f}s (need {min_count})")
    return rows


def requests_during(frames: Frames, start_s: float, end_s: float, *, min_count: int = 1) -> pd.DataFrame:
    """Requests that started inside the window, and those still in flight when
    it began: a request caught by a pause or a stall is the one that shows a
    hang, and users that send in step can all be waiting on one started just
    before the fault."""
    r = frames.requests
    rows = r[((r["t_s"] >= start_s) & (r["t_s"] < end_s)) | ((r["t_s"] < start_s) & (r["end_s"] > start_s))]
    if len(rows) < min_count:
        raise MissingData(f"only {len(rows)} requests started in or were in flight at {start_s:.2f}-{end_s:.2f}s "
                          f"(need {min_count})")
    return rows


def percentile(values: pd.Series, q: float) -> float:
    """Nearest-rank percentile (q in 0..100): a value that was really seen."""
    data = sorted(float(v) for v in values)
    if not data:
        return math.nan
    rank = max(1, math.ceil(q / 100.0 * len(data)))
    return data[rank - 1]


def success_rate(rows: pd.DataFrame) -> float:
    return float(rows["ok"].astype(bool).mean()) if len(rows) else math.nan


def recovery_time(frames: Frames, *, after_s: float, until_s: float, min_success: float, min_requests: int) -> float | None:
    """Seconds from after_s until the requests from then on keep success >=
    min_success; None if that never happens before until_s."""
    rows = frames.requests_in(after_s, until_s)
    failures = rows[~rows["ok"].astype(bool)]["t_s"].tolist()
    for t in [after_s] + failures:
        tail = rows[rows["t_s"] > t] if t > after_s else rows
        if len(tail) >= min_requests and success_rate(tail) >= min_success:
            return max(0.0, t - after_s)
    return None


def round_figures(**figures: float | int | str | None) -> dict[str, float | int | str | None]:
    """Figures as shown in verdicts: floats to 2 decimal places."""
    return {k: (round(v, 2) if isinstance(v, float) and not math.isnan(v) else v) for k, v in figures.items()}
