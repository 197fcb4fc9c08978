"""HTML tables of the run page: verdicts, figures and the error breakdown.

A verdict row that did not behave as expected is highlighted, because that
row is the reason a person opened the report.
"""

from __future__ import annotations

import json
import math
from html import escape
from typing import Any, Sequence

from harness.judgement import Judgement, UnreadableRow

MAX_VALUE_CHARS = 80


def format_value(value: Any) -> str:
    """A figure's value in a few characters: 0.123, 1234, [1, 2, 3], true."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value.is_integer() or abs(value) >= 1e4:
            return f"{value:.0f}"
        return f"{value:.4g}"
    if isinstance(value, (list, tuple, dict)):
        text = json.dumps(value, default=str, separators=(", ", ": "))
    else:
        text = str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def figures_html(figures: dict[str, Any]) -> str:
    if not figures:
        return "<span class='muted'>–</span>"
    return " ".join(
        f"<span class='fig'><b>{escape(str(k))}</b>: {escape(format_value(v))}</span>" for k, v in figures.items()
    )


def status_tag(status: str) -> str:
    css = {"pass": "pass", "fail": "fail"}.get(status, "unknown")
    return f"<span class='tag {css}'>{escape(status)}</span>"


def variant_tag(variant: str, *, broken: bool) -> str:
    """The variant's name, tagged BROKEN when it is one that violates the pattern."""
    css, prefix = ("broken", "BROKEN variant: ") if broken else ("variant", "variant: ")
    return f"<span class='tag {css}'>{escape(prefix + variant)}</span>"


def verdicts_table(rows: Sequence[Judgement], unreadable: Sequence[UnreadableRow] = (), with_experiment: bool = False) -> str:
    """The checks of one experiment (or orphan rows, with their experiment and variant named);
    a row that could not be read is an error entry of its own."""
    if not rows and not unreadable:
        return "<p class='muted'>No verdicts were recorded for this experiment.</p>"
    head = ("<th>experiment</th>" if with_experiment else "") + (
        "<th>check</th><th>status</th><th>expected</th><th>as expected</th><th>figures</th><th>explanation</th>"
    )
    body = []
    for r in rows:
        ok, v = r.as_expected, r.verdict
        exp_cell = (f"<td>{escape(r.experiment)} {variant_tag(r.variant, broken=r.broken)}</td>"
                    if with_experiment else "")
        body.append(
            f"<tr class='{'ok' if ok else 'bad'}'>{exp_cell}"
            f"<td class='check'>{escape(v.check)}</td>"
            f"<td>{status_tag(v.status)}</td>"
            f"<td>{escape(r.expected)}</td>"
            f"<td class='asexp'>{'yes' if ok else 'NO'}</td>"
            f"<td class='figs'>{figures_html(v.figures)}</td>"
            f"<td>{escape(v.explanation)}</td></tr>"
        )
    for bad in unreadable:
        exp_cell = f"<td>{escape(bad.experiment or '?')}</td>" if with_experiment else ""
        body.append(
            f"<tr class='bad unreadable'>{exp_cell}<td class='check'>?</td><td>{status_tag('error')}</td>"
            f"<td></td><td class='asexp'>NO</td><td colspan='2'>unreadable verdict row: {escape(bad.error)}</td></tr>"
        )
    return f"<table class='verdicts'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def errors_table(rows: list[tuple[str, str, str, int]], failed: int, kinds: int, total: int) -> str:
    """Failed requests counted by (status, hop, error), most frequent first."""
    if not total:
        return "<p class='muted'>No requests were recorded.</p>"
    if not failed:
        return f"<p class='muted'>All {total} requests succeeded.</p>"
    body = "".join(
        f"<tr><td>{escape(s or '–')}</td><td>{escape(h or '–')}</td><td class='err'>{escape(e or '–')}</td>"
        f"<td class='num'>{n}</td><td class='num'>{100 * n / failed:.1f}%</td></tr>"
        for s, h, e, n in rows
    )
    caption = f"{failed} of {total} requests failed ({100 * failed / total:.1f}%)"
    if kinds > len(rows):
        caption += f"; the {len(rows)} most frequent of {kinds} kinds"
    return (
        f"<table class='errors'><caption>{escape(caption)}</caption><thead><tr><th>status</th><th>hop</th>"
        f"<th>error</th><th>count</th><th>share</th></tr></thead><tbody>{body}</tbody></table>"
    )
