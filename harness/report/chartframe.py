"""The frame around a chart's data: axes with ticks, legend, title, phase markers.

Kept apart from the line drawing in svg.py; both share one Frame so every
chart of an experiment has the same plot area and its windows line up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from harness.report.axes import Scale, format_tick

FONT = "font-family='system-ui, sans-serif'"
LEGEND_ROW = 16


@dataclass
class Axis:
    label: str
    log: bool = False
    values: list[float] = field(default_factory=list)


@dataclass
class Frame:
    """Where the plot area sits inside the SVG."""

    width: int = 900
    height: int = 230
    left: int = 62
    right: int = 62
    top: int = 34
    bottom: int = 38

    @property
    def x0(self) -> float:
        return self.left

    @property
    def x1(self) -> float:
        return self.width - self.right

    @property
    def y0(self) -> float:
        return self.height - self.bottom

    @property
    def y1(self) -> float:
        return self.top


def text(x: float, y: float, body: str, size: int = 11, anchor: str = "start", extra: str = "") -> str:
    return (
        f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}' text-anchor='{anchor}' {FONT} {extra}>"
        f"{escape(body)}</text>"
    )


LegendItem = tuple[str, str, str, bool]  # label, colour, dash, shaded


def _layout(items: list[LegendItem], fr: Frame, title: str) -> list[tuple[float, int]]:
    """(x, row) of each item, placed right to left; a row is full at the title (or the left edge)."""
    limit = fr.x0 + 7.2 * len(title) + 24
    x, row, places = float(fr.x1), 0, []
    for label, *_ in reversed(items):
        width = 6.6 * len(label) + 34
        if x - width < (limit if row == 0 else fr.x0) and x < fr.x1:
            x, row = float(fr.x1), row + 1
        x -= width
        places.append((x, row))
    return list(reversed(places))


def legend_rows(items: list[LegendItem], fr: Frame, title: str) -> int:
    """How many rows legend() will use, so the plot can be pushed down first."""
    return 1 + max((row for _, row in _layout(items, fr, title)), default=0)


def legend(items: list[LegendItem], fr: Frame, title: str) -> list[str]:
    """The chart's title top left and its legend top right."""
    out = [text(fr.x0, 16, title, 13, "start", "font-weight='600' fill='#212529'")]
    for (label, color, dash, shaded), (x, row) in zip(items, _layout(items, fr, title)):
        y = 12 + row * LEGEND_ROW
        if shaded:
            out.append(f"<rect x='{x:.1f}' y='{y - 5}' width='20' height='11' fill='{color}' fill-opacity='0.15'/>")
        else:
            stroke = f" stroke-dasharray='{dash}'" if dash else ""
            out.append(
                f"<line x1='{x:.1f}' y1='{y}' x2='{x + 20:.1f}' y2='{y}' stroke='{color}' stroke-width='2.5'{stroke}/>"
            )
        out.append(text(x + 24, y + 4, label, 11, "start", "fill='#343a40'"))
    return out


def y_axis(scale: Scale, axis: Axis, fr: Frame, side: str) -> list[str]:
    x = fr.x0 if side == "left" else fr.x1
    sign, anchor = (-1, "end") if side == "left" else (1, "start")
    out = [f"<line x1='{x}' y1='{fr.y1}' x2='{x}' y2='{fr.y0}' stroke='#495057'/>"]
    for tick in scale.ticks():
        y = scale(tick)
        if side == "left":
            out.append(f"<line x1='{fr.x0}' y1='{y:.1f}' x2='{fr.x1}' y2='{y:.1f}' stroke='#e9ecef'/>")
        out.append(f"<line x1='{x}' y1='{y:.1f}' x2='{x + 4 * sign}' y2='{y:.1f}' stroke='#495057'/>")
        out.append(text(x + 6 * sign, y + 3.5, format_tick(tick), 10, anchor, "fill='#495057'"))
    label = axis.label + (" (log)" if axis.log else "")
    lx = 14 if side == "left" else fr.width - 10
    cy = (fr.y0 + fr.y1) / 2
    out.append(text(lx, cy, label, 11, "middle", f"fill='#343a40' transform='rotate(-90 {lx} {cy:.1f})'"))
    return out


def x_axis(scale: Scale, fr: Frame, label: str) -> list[str]:
    out = [f"<line x1='{fr.x0}' y1='{fr.y0}' x2='{fr.x1}' y2='{fr.y0}' stroke='#495057'/>"]
    for tick in scale.ticks(10):
        x = scale(tick)
        out.append(f"<line x1='{x:.1f}' y1='{fr.y0}' x2='{x:.1f}' y2='{fr.y0 + 4}' stroke='#495057'/>")
        out.append(text(x, fr.y0 + 15, format_tick(tick), 10, "middle", "fill='#495057'"))
    out.append(text((fr.x0 + fr.x1) / 2, fr.height - 6, label, 11, "middle", "fill='#343a40'"))
    return out


def _marker_rows(markers: list[tuple[float, str]], xs: Scale, fr: Frame) -> list[tuple[float, bool, int]]:
    """(x in pixels, label left of the line, label row) of each marker; a label
    steps down a row instead of overlapping the one before."""
    places, rows_end = [], [-1e9, -1e9, -1e9]
    for x, label in markers:
        px = xs(x)
        width = 5.6 * len(label) + 6
        right_edge = px + 3 + width > fr.x1
        start = px - 3 - width if right_edge else px + 3
        row = next((i for i, end in enumerate(rows_end) if start > end), 0)
        rows_end[row] = start + width
        places.append((px, right_edge, row))
    return places


def marker_label_rows(markers: list[tuple[float, str]], xs: Scale, fr: Frame) -> int:
    """How many rows phase_markers() labels take, so a chart can keep that band clear."""
    return 1 + max((row for *_, row in _marker_rows(markers, xs, fr)), default=-1)


def phase_markers(markers: list[tuple[float, str]], xs: Scale, fr: Frame) -> list[str]:
    """Dashed vertical lines; labels step down a row instead of overlapping."""
    out = []
    for (_, label), (px, right_edge, row) in zip(markers, _marker_rows(markers, xs, fr)):
        out.append(
            f"<line x1='{px:.1f}' y1='{fr.y1}' x2='{px:.1f}' y2='{fr.y0}' stroke='#868e96'"
            " stroke-dasharray='4 3'/>"
        )
        y = fr.y1 + 11 + 12 * row
        out.append(text(px - 3 if right_edge else px + 3, y, label, 10, "end" if right_edge else "start",
                         "fill='#495057' stroke='#fff' stroke-width='3' paint-order='stroke'"))
    return out
