"""The topology drawn as an SVG graph, with the faulted link or service in red.

Layered left to right by the longest path from the entry service, so a call
chain reads like a sentence and the fault's place in it is obvious.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

from harness.report.layout import BOX_H, MARGIN, ROW_GAP, Box, assign_layers, blocked, boxes_of, place_boxes, subtitle

FONT = "font-family='system-ui, sans-serif'"
RED, GREY = "#e03131", "#495057"


def _service_target(on: str, boxes: dict[str, Box]) -> str | None:
    if on in boxes:
        return on
    base = re.split(r"[#\[/:]", on, maxsplit=1)[0]
    return base if base in boxes else None


def _edge(lk: dict[str, Any], boxes: dict[str, Box], kind: str | None) -> list[str]:
    a, b = boxes[lk["client"]], boxes[lk["server"]]
    color, width = (RED, 3.5) if kind else (GREY, 1.5)
    marker = "arrow-red" if kind else "arrow"
    ay, by = a.y + BOX_H / 2, b.y + BOX_H / 2
    if b.layer > a.layer + 1 and blocked(a, b, boxes):  # skips layers: bow under the boxes in between
        x1, x2 = a.x + a.w, b.x
        low = max(a.y, b.y) + BOX_H + ROW_GAP
        ctrl = max(ay, by) + (low - max(ay, by)) / 0.75  # a cubic reaches 3/4 of its control points
        path = f"M{x1:.1f},{ay:.1f} C{x1 + 20:.1f},{ctrl:.1f} {x2 - 20:.1f},{ctrl:.1f} {x2 - 2:.1f},{by:.1f}"
        mx, my = (x1 + x2) / 2, low + 20
    elif b.layer > a.layer:
        x1, x2 = a.x + a.w, b.x
        mx, my = (x1 + x2) / 2, (ay + by) / 2
        path = f"M{x1:.1f},{ay:.1f} C{mx:.1f},{ay:.1f} {mx:.1f},{by:.1f} {x2 - 2:.1f},{by:.1f}"
    else:  # a call back to an earlier or the same layer: loop under the boxes
        x1, x2 = a.x + a.w / 2, b.x + b.w / 2 + 8
        low = max(a.y, b.y) + BOX_H + ROW_GAP * 0.8
        path = f"M{x1:.1f},{a.y + BOX_H:.1f} C{x1:.1f},{low:.1f} {x2:.1f},{low:.1f} {x2:.1f},{b.y + BOX_H + 2:.1f}"
        mx, my = (x1 + x2) / 2, low - 4
    title = escape(lk.get("name") or f"{a.name}->{b.name}")
    out = [
        f"<path d='{path}' fill='none' stroke='{color}' stroke-width='{width}' marker-end='url(#{marker})'>"
        f"<title>{title}</title></path>"
    ]
    if kind:
        out.append(
            f"<text x='{mx:.1f}' y='{my - 8:.1f}' text-anchor='middle' font-size='12' font-weight='700' fill='{RED}'"
            f" stroke='#fff' stroke-width='4' paint-order='stroke' {FONT}>{escape(kind)}</text>"
        )
    return out


def _box(b: Box, entry: bool, kind: str | None) -> list[str]:
    stroke, fill, sw = (RED, "#fff5f5", 3) if kind else ("#1c7ed6" if entry else GREY, "#f8f9fa", 2 if entry else 1.2)
    cx = b.x + b.w / 2
    out = [
        f"<rect x='{b.x:.1f}' y='{b.y:.1f}' width='{b.w:.1f}' height='{BOX_H}' rx='6' fill='{fill}'"
        f" stroke='{stroke}' stroke-width='{sw}'/>",
        f"<text x='{cx:.1f}' y='{b.y + 19:.1f}' text-anchor='middle' font-size='13' font-weight='600'"
        f" {FONT}>{escape(b.name)}</text>",
        f"<text x='{cx:.1f}' y='{b.y + 36:.1f}' text-anchor='middle' font-size='11' fill='#495057' {FONT}>"
        f"{escape(subtitle(b, entry))}</text>",
    ]
    if kind:
        out.append(
            f"<text x='{cx:.1f}' y='{b.y - 6:.1f}' text-anchor='middle' font-size='12' font-weight='700'"
            f" fill='{RED}' {FONT}>{escape(kind)}</text>"
        )
    if entry:
        y = b.y + BOX_H / 2
        out.append(
            f"<line x1='{MARGIN:.1f}' y1='{y:.1f}' x2='{b.x - 2:.1f}' y2='{y:.1f}' stroke='#1c7ed6'"
            " stroke-width='2' marker-end='url(#arrow-blue)'/>"
        )
        out.append(
            f"<text x='{MARGIN:.1f}' y='{y - 7:.1f}' font-size='11' fill='#1c7ed6' font-weight='600' {FONT}>"
            "load</text>"
        )
    return out


def _marker(ident: str, color: str, size: int = 10) -> str:
    """An arrow head of a fixed size in pixels, whatever the line's width."""
    return (
        f"<marker id='{ident}' viewBox='0 0 10 10' refX='9' refY='5' markerUnits='userSpaceOnUse'"
        f" markerWidth='{size}' markerHeight='{size}' orient='auto-start-reverse'>"
        f"<path d='M0,0 L10,5 L0,10 z' fill='{color}'/></marker>"
    )


def topology_svg(topology: dict[str, Any], faults: list[tuple[str, str]]) -> str:
    """Services as boxes, links as arrows; faults are (on, kind) pairs to paint red."""
    boxes, links, entry = boxes_of(topology or {})
    if not boxes:
        return "<p class='muted'>No topology recorded.</p>"
    assign_layers(boxes, links, entry)
    width, height = place_boxes(boxes, links, entry)
    link_kind: dict[str, str] = {}
    box_kind: dict[str, str] = {}
    link_names = {lk.get("name") or f"{lk['client']}->{lk['server']}" for lk in links}
    for on, kind in faults:
        if on in link_names:
            link_kind[on] = ", ".join(filter(None, [link_kind.get(on), kind]))
        elif (name := _service_target(on, boxes)) is not None:
            label = kind if on == name else f"{kind} ({on})"
            box_kind[name] = ", ".join(filter(None, [box_kind.get(name), label]))
    has_loop = any(
        (b := boxes[lk["server"]]).layer <= (a := boxes[lk["client"]]).layer
        or (b.layer > a.layer + 1 and blocked(a, b, boxes))
        for lk in links
    )
    height += ROW_GAP if has_loop else 0
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' class='topology' viewBox='0 0 {width:.0f} {height:.0f}'"
        f" width='{width:.0f}' height='{height:.0f}' role='img' aria-label='topology'>",
        f"<defs>{_marker('arrow', GREY)}{_marker('arrow-red', RED, 14)}{_marker('arrow-blue', '#1c7ed6')}</defs>",
    ]
    for lk in links:
        out += _edge(lk, boxes, link_kind.get(lk.get("name") or f"{lk['client']}->{lk['server']}"))
    for b in boxes.values():
        out += _box(b, b.name == entry, box_kind.get(b.name))
    out.append("</svg>")
    return "\n".join(out)
