"""Who was in, as each view saw it: one swimlane chart per experiment.

Service discovery goes wrong between views: the registry drops an instance
but the balancer still sends to it, or the balancer knows a new one the
clients never reach. So each member gets a group of thin lanes, one per
view, side by side on the shared time axis, and a gap that one view has
and another lacks is where they disagreed.

A view is any source of ``joined``/``left`` observed events (the membership
probes: in discovery experiments "registry" and "balancer"), plus "clients"
when the requests name the instance that served them.
"""

from __future__ import annotations

import math
import re
from html import escape

import pandas as pd

from harness.report import series as ser
from harness.report.axes import Scale
from harness.report.chartframe import (
    LEGEND_ROW, Frame, legend, legend_rows, marker_label_rows, phase_markers, text, x_axis,
)
from harness.report.svg import Window, window_labels, window_shades
from harness.timeline import Frames

Interval = tuple[float, float]
Lanes = dict[str, dict[str, list[Interval]]]  # member -> view -> when it was present there

CLIENTS = "clients"
INSTANCE_FIELD = "instance"
EVENTS = ("joined", "left")
COLOURS = ["#1c7ed6", "#f08c00", "#7048e8", "#0c8599", "#d6336c"]  # probe views, in order; never the fault red
CLIENTS_COLOUR = "#2f9e44"

LANE_H = 9
LANE_GAP = 3
GROUP_GAP = 14


def _events(frames: Frames) -> pd.DataFrame:
    o = frames.observed
    if not len(o) or "event" not in o or "member" not in o:
        return pd.DataFrame(columns=["t_s", "source", "event", "member"])
    return o[o["event"].isin(EVENTS) & o["member"].notna()]


def has_membership(frames: Frames) -> bool:
    """True when some probe recorded a member joining or leaving; only then is there a chart."""
    return len(_events(frames)) > 0


def views(frames: Frames) -> list[str]:
    """Sources of membership events in order of first appearance, then
    "clients" when the requests say which instance served them."""
    names = [str(s) for s in dict.fromkeys(_events(frames).sort_values("t_s", kind="stable")["source"])]
    if _served_by(frames) is not None:
        names.append(CLIENTS)
    return names


def _served_by(frames: Frames) -> pd.Series | None:
    """The instance column of the requests, or None when the load did not ask for it."""
    r = frames.requests
    if INSTANCE_FIELD not in r or not r[INSTANCE_FIELD].notna().any():
        return None
    return r[INSTANCE_FIELD]


def clients_bucket_s(span: tuple[float, float]) -> float:
    """Half the other charts' bucket: 0.25 s for runs up to five minutes, fine
    enough to place a change against a 1 s bound; coarser only for long runs,
    so a lane never has more than about 1200 buckets."""
    return ser.bucket_size(span[1] - span[0]) / 2


def _replay(rows: pd.DataFrame, span: tuple[float, float]) -> dict[str, list[Interval]]:
    """joined opens an interval, left closes it; one still open runs to the end of the span.

    A joined while already present (the member registered again between two
    samples) keeps the interval going: the view never saw it gone.
    """
    out: dict[str, list[Interval]] = {}
    since: dict[str, float] = {}
    for t, event, member in zip(rows["t_s"], rows["event"], rows["member"]):
        member, t = str(member), min(max(float(t), span[0]), span[1])
        if event == "joined" and member not in since:
            since[member] = t
        elif event == "left" and member in since:
            out.setdefault(member, []).append((since.pop(member), t))
    for member, start in since.items():
        out.setdefault(member, []).append((start, span[1]))
    return out


def _clients(frames: Frames, span: tuple[float, float]) -> dict[str, list[Interval]]:
    """Per instance, the buckets in which at least one request it served
    succeeded, by start time; adjacent buckets merge into one interval. So a
    bar may start and end up to a bucket before and after the requests do."""
    served = _served_by(frames)
    if served is None:
        return {}
    r = frames.requests
    ok = ser.ok_mask(r) & served.notna()
    size = clients_bucket_s(span)
    out: dict[str, list[Interval]] = {}
    for member, starts in r.loc[ok, "t_s"].astype(float).groupby(served[ok].astype(str)):
        merged: list[Interval] = []
        for i in sorted({math.floor(t / size) for t in starts}):
            a, b = max(i * size, span[0]), min((i + 1) * size, span[1])
            if merged and a <= merged[-1][1] + 1e-9:
                merged[-1] = (merged[-1][0], b)
            elif b > a:
                merged.append((a, b))
        out[str(member)] = merged
    return out


def _natural(name: str) -> list[str | int]:
    """Sort key that puts web-2 before web-10."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def intervals(frames: Frames, span: tuple[float, float]) -> Lanes:
    """Per member (in natural order), per view (in views() order), the
    intervals it was present in that view; a view that never had it is []."""
    names = views(frames)
    events = _events(frames).sort_values("t_s", kind="stable")
    per_view = {v: _replay(rows, span) for v, rows in events.groupby(events["source"].astype(str), sort=False)}
    if CLIENTS in names:
        per_view[CLIENTS] = _clients(frames, span)
    members = sorted({m for found in per_view.values() for m in found}, key=_natural)
    return {m: {v: per_view.get(v, {}).get(m, []) for v in names} for m in members}


def _colours(names: list[str]) -> dict[str, str]:
    probes = [v for v in names if v != CLIENTS]
    out = {v: COLOURS[i % len(COLOURS)] for i, v in enumerate(probes)}
    return out | ({CLIENTS: CLIENTS_COLOUR} if CLIENTS in names else {})


def _title(names: list[str]) -> str:
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"Membership: {listed}"


def _label(name: str, room: float) -> str:
    """The member's name as fits left of the plot; a long one keeps its end,
    which is what tells instances apart (web-1, host:8081)."""
    fits = max(int(room / 6.2), 3)
    return name if len(name) <= fits else "…" + name[-(fits - 1):]


def membership_chart(
    frames: Frames,
    span: tuple[float, float],
    windows: list[Window] | None = None,
    markers: list[tuple[float, str]] | None = None,
) -> str:
    """A swimlane SVG: per member a group of lanes, one per view, filled where
    the member was present; fault windows shaded and phases marked as in the
    line charts, on the same x range so they line up."""
    windows, markers, fr = windows or [], markers or [], Frame()
    lanes = intervals(frames, span)
    names = views(frames)
    colours = _colours(names)
    title = _title(names)
    items = [(v, colours[v], "", False) for v in names]
    items += [("fault window", windows[0].color, "", True)] if windows else []
    fr.top += (legend_rows(items, fr, title) - 1) * LEGEND_ROW
    xs = Scale(span[0], span[1], fr.x0, fr.x1)
    top_pad = 12 * marker_label_rows(markers, xs, fr) + 4  # phase labels sit above the first lane
    bottom_pad = 16 if windows else 4  # and window labels below the last
    group_h = len(names) * LANE_H + (len(names) - 1) * LANE_GAP
    plot_h = top_pad + len(lanes) * group_h + max(len(lanes) - 1, 0) * GROUP_GAP + bottom_pad
    fr.height = fr.top + plot_h + fr.bottom
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' class='chart' viewBox='0 0 {fr.width} {fr.height}'"
        f" width='{fr.width}' height='{fr.height}' role='img' aria-label='{escape(title)}'>",
        f"<rect x='{fr.x0}' y='{fr.y1}' width='{fr.x1 - fr.x0}' height='{fr.y0 - fr.y1}' fill='#fff'/>",
    ]
    tops = {m: fr.y1 + top_pad + g * (group_h + GROUP_GAP) for g, m in enumerate(lanes)}
    for g, (member, y0) in enumerate(tops.items()):
        if g:
            sep = y0 - GROUP_GAP / 2
            out.append(f"<line x1='{fr.x0}' y1='{sep:.1f}' x2='{fr.x1}' y2='{sep:.1f}' stroke='#e9ecef'/>")
        shown = _label(member, fr.left - 10)
        label = text(fr.x0 - 6, y0 + group_h / 2 + 4, shown, 11, "end", "fill='#343a40'")
        out.append(label if shown == member else f"<g><title>{escape(member)}</title>{label}</g>")
        for k, view in enumerate(names):  # the empty lane: absent there, as opposed to not drawn
            y = y0 + k * (LANE_H + LANE_GAP)
            out.append(f"<rect x='{fr.x0}' y='{y}' width='{fr.x1 - fr.x0}' height='{LANE_H}' fill='#f1f3f5'/>")
            if not g:  # the first group names its lanes; the others keep the same order
                out.append(text(fr.x1 + 4, y + LANE_H - 1, view, 9, "start", f"fill='{colours[view]}'"))
    out += window_shades(windows, xs, fr, span)  # over the empty lanes, under the bars
    out.append(f"<line x1='{fr.x0}' y1='{fr.y1}' x2='{fr.x0}' y2='{fr.y0}' stroke='#495057'/>")
    for member, present in lanes.items():
        for k, view in enumerate(names):
            y = tops[member] + k * (LANE_H + LANE_GAP)
            for a, b in present[view]:
                pa, pb = xs(a), xs(b)
                out.append(
                    f"<rect x='{pa:.1f}' y='{y}' width='{max(pb - pa, 1):.1f}' height='{LANE_H}'"
                    f" fill='{colours[view]}' fill-opacity='0.85'>"
                    f"<title>{escape(member)} in {escape(view)}: {a:.2f}–{b:.2f} s</title></rect>"
                )
    out += x_axis(xs, fr, "seconds since experiment start")
    out += window_labels(windows, xs, fr, span)
    out += phase_markers(markers, xs, fr)
    out += legend(items, fr, title)
    out.append("</svg>")
    return "\n".join(out)
