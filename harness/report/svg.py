"""Inline SVG line charts with shaded fault windows and phase markers.

Hand-written SVG so the report opens from disk with no scripts, fonts or
CDN; every chart of an experiment shares one x range so windows line up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from harness.report.axes import Scale, value_range
from harness.report.chartframe import LEGEND_ROW, Axis, Frame, legend, legend_rows, phase_markers, text, x_axis, y_axis

__all__ = ["Axis", "Series", "Window", "empty_chart", "line_chart", "window_labels", "window_shades"]

Point = tuple[float, float | None]


@dataclass
class Series:
    """One line; a None value breaks it (no data in that bucket)."""

    label: str
    points: list[Point]
    color: str
    axis: str = "left"
    dash: str = ""


@dataclass
class Window:
    """A shaded span of x, e.g. the time a fault was applied."""

    start: float
    end: float
    label: str
    color: str = "#e03131"


def window_shades(windows: list[Window], xs: Scale, fr: Frame, x_range: tuple[float, float]) -> list[str]:
    """A light band over the plot's full height for each window, drawn under the data."""
    out = []
    for w in windows:
        a, b = xs(max(w.start, x_range[0])), xs(min(w.end, x_range[1]))
        out.append(
            f"<rect x='{a:.1f}' y='{fr.y1}' width='{max(b - a, 1):.1f}' height='{fr.y0 - fr.y1}'"
            f" fill='{w.color}' fill-opacity='0.13'><title>{escape(w.label)}</title></rect>"
        )
    return out


def window_labels(windows: list[Window], xs: Scale, fr: Frame, x_range: tuple[float, float]) -> list[str]:
    """Each window's label at its bottom left, with a white halo so data drawn before never hides it."""
    halo = "stroke='#fff' stroke-width='3' paint-order='stroke'"
    return [
        text(xs(max(w.start, x_range[0])) + 4, fr.y0 - 6, w.label, 10, "start",
             f"fill='{w.color}' font-weight='600' {halo}")
        for w in windows
    ]


def _segments(points: list[Point]) -> list[list[tuple[float, float]]]:
    segs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None or not math.isfinite(y):
            if segs[-1]:
                segs.append([])
        else:
            segs[-1].append((x, y))
    return [s for s in segs if s]


def _line(s: Series, xs: Scale, ys: Scale) -> list[str]:
    out = []
    dash = f" stroke-dasharray='{s.dash}'" if s.dash else ""
    for seg in _segments(s.points):
        if len(seg) == 1:
            x, y = seg[0]
            out.append(f"<circle cx='{xs(x):.1f}' cy='{ys(y):.1f}' r='2' fill='{s.color}'/>")
            continue
        pts = " ".join(f"{xs(x):.1f},{ys(y):.1f}" for x, y in seg)
        out.append(
            f"<polyline points='{pts}' fill='none' stroke='{s.color}' stroke-width='1.8'"
            f" stroke-linejoin='round'{dash}><title>{escape(s.label)}</title></polyline>"
        )
    return out


def line_chart(
    ident: str,
    title: str,
    series: list[Series],
    x_range: tuple[float, float],
    left: Axis,
    right: Axis | None = None,
    windows: list[Window] | None = None,
    markers: list[tuple[float, str]] | None = None,
    x_label: str = "seconds since experiment start",
) -> str:
    """An SVG line chart; windows are shaded, markers are labelled vertical lines."""
    windows, markers, fr = windows or [], markers or [], Frame()  # same margins with or without a right axis
    items = [(s.label, s.color, s.dash, False) for s in series]
    items += [("fault window", windows[0].color, "", True)] if windows else []
    extra = (legend_rows(items, fr, title) - 1) * LEGEND_ROW
    fr.top, fr.height = fr.top + extra, fr.height + extra
    xs = Scale(x_range[0], x_range[1], fr.x0, fr.x1)
    scales = {}
    for side, axis in (("left", left), ("right", right)):
        if axis is not None:
            values = axis.values or [y for s in series if s.axis == side for _, y in s.points if y is not None]
            lo, hi = value_range(values, axis.log)
            scales[side] = Scale(lo, hi, fr.y0, fr.y1, axis.log)
    clip = f"clip-{escape(ident)}"
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' class='chart' viewBox='0 0 {fr.width} {fr.height}'"
        f" width='{fr.width}' height='{fr.height}' role='img' aria-label='{escape(title)}'>",
        f"<defs><clipPath id='{clip}'><rect x='{fr.x0}' y='{fr.y1}' width='{fr.x1 - fr.x0}'"
        f" height='{fr.y0 - fr.y1}'/></clipPath></defs>",
        f"<rect x='{fr.x0}' y='{fr.y1}' width='{fr.x1 - fr.x0}' height='{fr.y0 - fr.y1}' fill='#fff'/>",
    ]
    out += window_shades(windows, xs, fr, x_range)
    out += y_axis(scales["left"], left, fr, "left")
    if right is not None:
        out += y_axis(scales["right"], right, fr, "right")
    out += x_axis(xs, fr, x_label)
    out.append(f"<g clip-path='url(#{clip})'>")
    for s in series:
        out += _line(s, xs, scales.get(s.axis, scales["left"]))
    out.append("</g>")
    out += window_labels(windows, xs, fr, x_range)  # last, so lines never hide them
    out += phase_markers(markers, xs, fr)
    out += legend(items, fr, title)
    out.append("</svg>")
    return "\n".join(out)


def empty_chart(title: str, message: str) -> str:
    """A placeholder of the same size when there is nothing to plot."""
    fr = Frame()
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' class='chart' viewBox='0 0 {fr.width} 80' width='{fr.width}'"
        f" height='80' role='img' aria-label='{escape(title)}'>"
        + text(fr.x0, 16, title, 13, "start", "font-weight='600' fill='#212529'")
        + text(fr.width / 2, 52, message, 12, "middle", "fill='#868e96'")
        + "</svg>"
    )
