"""Where the topology's boxes go: layers by longest path from the entry, rows by callers.

A cycle (a callback, a retry loop) is cut by a depth-first search from the
entry, so the layering always ends and the call chain still reads left to right.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BOX_H, ROW_GAP, COL_GAP, MARGIN, LOAD_W = 46, 26, 96, 16, 64


@dataclass
class Box:
    name: str
    instances: int
    layer: int = 0
    row: int = 0
    x: float = 0
    y: float = 0
    w: float = 0


def boxes_of(topology: dict[str, Any]) -> tuple[dict[str, Box], list[dict[str, Any]], str]:
    boxes = {s["name"]: Box(s["name"], int(s.get("instances") or 1)) for s in topology.get("services") or []}
    links = [lk for lk in topology.get("links") or [] if lk.get("client") and lk.get("server")]
    for lk in links:
        for end in (lk["client"], lk["server"]):
            boxes.setdefault(end, Box(end, 1))
    entry = topology.get("entry") or next(iter(boxes), "")
    return boxes, links, entry


def _forward_links(boxes: dict[str, Box], links: list[dict[str, Any]], entry: str) -> list[tuple[str, str]]:
    """The links minus those closing a cycle (found by depth-first search from the entry)."""
    out_of: dict[str, list[str]] = {n: [] for n in boxes}
    for lk in links:
        out_of[lk["client"]].append(lk["server"])
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    forward: list[tuple[str, str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        for nxt in out_of[node]:
            if state.get(nxt) == 1:
                continue  # a back edge: drawn as a loop, ignored for layering
            forward.append((node, nxt))
            if nxt not in state:
                visit(nxt)
        state[node] = 2

    for start in [entry] + list(boxes):
        if start in boxes and start not in state:
            visit(start)
    return forward


def assign_layers(boxes: dict[str, Box], links: list[dict[str, Any]], entry: str) -> None:
    """Layer = longest path from the entry (or from any source) over the acyclic links."""
    forward = _forward_links(boxes, links, entry)
    level = {n: 0 for n in boxes}
    for _ in range(len(boxes)):  # Bellman-Ford style relaxation; terminates on a DAG
        changed = False
        for c, srv in forward:
            if level[srv] < level[c] + 1:
                level[srv], changed = level[c] + 1, True
        if not changed:
            break
    for box in boxes.values():
        box.layer = level[box.name]


def subtitle(b: Box, entry: bool) -> str:
    return f"×{b.instances} instance{'s' if b.instances != 1 else ''}{' · entry' if entry else ''}"


def place_boxes(boxes: dict[str, Box], links: list[dict[str, Any]], entry: str) -> tuple[float, float]:
    """Orders each layer by the mean row of its callers, then sets coordinates."""
    layers: dict[int, list[Box]] = {}
    for box in boxes.values():
        layers.setdefault(box.layer, []).append(box)
        box.w = max(96, 7.4 * len(box.name) + 28, 6.2 * len(subtitle(box, box.name == entry)) + 20)
    col_w = max((b.w for b in boxes.values()), default=96)
    tallest = max((len(v) for v in layers.values()), default=1)
    height = tallest * BOX_H + (tallest - 1) * ROW_GAP + 2 * MARGIN + 16
    for layer in sorted(layers):
        members = layers[layer]

        def weight(b: Box) -> float:
            callers = [boxes[lk["client"]] for lk in links if lk["server"] == b.name]
            rows = [c.row for c in callers if c.layer < layer]
            return sum(rows) / len(rows) if rows else 0.0

        if layer:
            members.sort(key=weight)
        offset = (tallest - len(members)) * (BOX_H + ROW_GAP) / 2
        for i, b in enumerate(members):
            b.row = i
            b.x = MARGIN + LOAD_W + layer * (col_w + COL_GAP) + (col_w - b.w) / 2
            b.y = MARGIN + 16 + offset + i * (BOX_H + ROW_GAP)
    width = MARGIN * 2 + LOAD_W + len(layers) * col_w + max(len(layers) - 1, 0) * COL_GAP
    return width, height


def blocked(a: Box, b: Box, boxes: dict[str, Box]) -> bool:
    """Whether a box of a layer in between sits across the straight line from a to b."""
    lo, hi = sorted((a.y + BOX_H / 2, b.y + BOX_H / 2))
    return any(
        a.layer < o.layer < b.layer and o.y - 4 <= hi and o.y + BOX_H + 4 >= lo for o in boxes.values()
    )
