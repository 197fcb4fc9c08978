"""One experiment's section of the run page: what was done, what was seen, what was judged."""

from __future__ import annotations

import re
from html import escape
from typing import Any

from harness.events import DrainEvent, FaultDescription
from harness.report import series as ser
from harness.report.axes import wants_log
from harness.report.effects import Landing
from harness.report.graph import topology_svg
from harness.report.membership import has_membership, membership_chart
from harness.report.runfolder import Experiment
from harness.report.svg import Axis, Series, Window, empty_chart, line_chart
from harness.report.tables import errors_table, format_value, variant_tag, verdicts_table
from harness.timeline import Frames

PALETTE = ["#1c7ed6", "#f08c00", "#7048e8", "#2f9e44", "#d6336c", "#0c8599", "#5c940d", "#495057"]


def clean(value: Any) -> str:
    """Text of a frame cell; a missing cell (None or NaN) is empty, never 'nan'."""
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


MATRIX_ANCHOR = "matrix"  # the detection matrix at the top of the page (matrix_html.py)


def anchor(exp: Experiment) -> str:
    return "exp-" + re.sub(r"[^A-Za-z0-9_-]", "-", exp.ident)


def describe_fault(fault: FaultDescription | None) -> str:
    """'latency on b->c (latency_ms=200, jitter_ms=0)' or 'none'."""
    if fault is None:
        return "none"
    text = f"{fault.kind} on {fault.on or '?'}"
    if fault.params:
        text += " (" + ", ".join(f"{k}={format_value(v)}" for k, v in fault.params.items()) + ")"
    return text


def describe_drain(drain: DrainEvent) -> str:
    """How the drain phase ended; one that never settled says why (its polls' last error)."""
    polls = f"{drain.polls} poll{'s' * (drain.polls != 1)}"
    if drain.settled is None:
        return f"waited {drain.waited_s:.1f} s (nothing to poll)"
    if drain.settled:
        return f"settled after {drain.waited_s:.1f} s ({polls})"
    why = f"last error: {drain.last_error}" if drain.last_error else "every poll answered not settled"
    return f"did not settle in {drain.waited_s:.1f} s ({polls}); {why}"


def _windows(frames: Frames) -> list[Window]:
    return [
        Window(float(f["start_s"]), float(f["end_s"]), f"{clean(f['fault'])} {clean(f['on'])}".strip())
        for f in frames.faults.to_dict("records")
        if f["start_s"] is not None and f["end_s"] is not None
    ]


def _markers(frames: Frames, span: tuple[float, float]) -> list[tuple[float, str]]:
    """A labelled line where each phase starts, and where one ends with no phase after it."""
    rows = sorted(frames.phases.to_dict("records"), key=lambda p: p["start_s"])
    marks = [(float(p["start_s"]), str(p["phase"])) for p in rows]
    near = (span[1] - span[0]) / 100
    for p in rows:
        end = float(p["end_s"])
        if all(abs(end - x) > near for x, _ in marks):
            marks.append((end, f"{p['phase']} end"))
    return sorted(marks)


def charts(exp: Experiment) -> str:
    frames = exp.frames
    assert frames is not None
    span = ser.x_range(frames)
    windows, markers = _windows(frames), _markers(frames, span)
    ident = anchor(exp)
    out = []
    lat = ser.latency_series(frames, span)
    if any(v is not None for pts in lat.values() for _, v in pts):
        values = [v for pts in lat.values() for _, v in pts if v is not None]
        colours = {"p50": "#1c7ed6", "p95": "#f08c00", "p99": "#7048e8"}
        lines = [Series(k, pts, colours[k]) for k, pts in lat.items()]
        out.append(line_chart(f"{ident}-lat", "Request latency (all requests, by start time)", lines, span,
                              Axis("latency ms", log=wants_log(values)), windows=windows, markers=markers))
    else:
        out.append(empty_chart("Request latency", "no requests were recorded"))
    errors, rate = ser.error_throughput_series(frames, span)
    if rate:
        err_values = [v for _, v in errors if v is not None] + [10.0]
        lines = [Series("error rate %", errors, "#e03131"), Series("throughput req/s", rate, "#1c7ed6", "right", "5 3")]
        reasons = ser.reason_series(frames, span)
        if len(reasons) > 1:
            lines += [Series(f"% {reason}", pts, PALETTE[(i + 1) % len(PALETTE)], dash="2 2")
                      for i, (reason, pts) in enumerate(reasons.items())]
        out.append(line_chart(f"{ident}-err", "Errors and throughput", lines, span,
                              Axis("errors %", values=err_values), Axis("req/s"), windows, markers))
    if has_membership(frames):  # discovery experiments: who was in, per view, beside the traffic
        out.append(membership_chart(frames, span, windows, markers))
    observed = ser.observed_series(frames, span)
    if observed:
        lines = [Series(name, pts, PALETTE[i % len(PALETTE)]) for i, (name, pts) in enumerate(observed.items())]
        out.append(line_chart(f"{ident}-obs", "Seen by the services (events per second)", lines, span,
                              Axis("events/s"), windows=windows, markers=markers))
    probes = ser.probe_series(frames)
    groups: dict[str, dict[str, ser.Points]] = {}
    for name, pts in probes.items():  # one chart per probe, so each gets its own scale
        groups.setdefault(name.split(".", 1)[0], {})[name] = pts
    for group, members in groups.items():
        shown = dict(list(members.items())[: len(PALETTE)])
        values = [v for pts in shown.values() for _, v in pts if v is not None]
        lines = [Series(name, pts, PALETTE[i]) for i, (name, pts) in enumerate(shown.items())]
        out.append(line_chart(f"{ident}-probe-{_slug(group)}", f"Probe: {group}", lines, span,
                              Axis("value", log=wants_log(values, 3)), windows=windows, markers=markers))
        if len(members) > len(shown):
            left = ", ".join(list(members)[len(shown):])
            out.append(f"<p class='muted'>Not drawn ({len(members) - len(shown)} more fields): {escape(left)}</p>")
    return "\n".join(out)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "probe"


def _fault_keys(exp: Experiment) -> list[tuple[str, str]]:
    frames, header = exp.frames, exp.header
    assert frames is not None and header is not None
    keys = []
    if header.fault is not None and header.fault.on:
        keys.append((header.fault.on, header.fault.kind))
    for f in frames.faults.to_dict("records"):
        key = (clean(f.get("on")), clean(f.get("fault")) or "fault")
        if key[0] and key not in keys:
            keys.append(key)
    return keys


def _meta_list(exp: Experiment) -> str:
    frames, header = exp.frames, exp.header
    assert frames is not None and header is not None
    items = [("target", escape(header.target)), ("variant", variant_tag(header.variant, broken=header.broken))]
    items.append(("fault", escape(describe_fault(header.fault))))
    for f in frames.faults.to_dict("records"):
        text = f"{clean(f['fault'])} on {clean(f['on']) or '?'}: {f['start_s']:.1f} s – {f['end_s']:.1f} s"
        err = clean(f.get("error"))
        extra = f" <span class='tag fail'>revert failed: {escape(err)}</span>" if err else ""
        items.append(("fault window", escape(text) + extra))
    if header.fault is not None:
        items.append(("fault landed", _landing_html(Landing.of(frames))))
    phases = ", ".join(
        f"{clean(p['phase'])} {p['start_s']:.1f}–{p['end_s']:.1f} s" for p in frames.phases.to_dict("records")
    )
    items.append(("phases", escape(phases or "none recorded")))
    if frames.drain is not None:
        items.append(("drain", escape(describe_drain(frames.drain))))
    items.append(("requests", str(len(frames.requests))))
    items.append(("folder", f"<code>{escape(exp.folder.name)}</code>"))
    return "<dl class='meta'>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def _landing_html(landing: Landing) -> str:
    """One line per fault window the harness watched: landed, not observed (why), not verified."""
    css = {"landed": "pass", "not observed": "fail", "not verified": "unknown"}.get(landing.state, "")
    lines = "<br>".join(escape(line) for line in landing.detail.splitlines())
    return f"<span class='tag {css}'>{escape(landing.state)}</span> {lines}"


def _state(exp: Experiment) -> tuple[str, str]:
    """(css class, short tag html) for the experiment's own outcome."""
    bad = exp.unexpected
    if exp.error:
        return "error", "<span class='tag bad'>could not be loaded</span>"
    if bad:
        n = len(exp.verdicts) + len(exp.unreadable)
        return "bad", f"<span class='tag bad'>{bad} of {n} checks not as expected</span>"
    if not exp.verdicts:
        return "none", "<span class='tag'>no checks</span>"
    n = len(exp.verdicts)
    return "good", f"<span class='tag good'>{'the check' if n == 1 else f'all {n} checks'} as expected</span>"


def error_card(exp: Experiment) -> str:
    return (
        f"<section class='exp error' id='{anchor(exp)}'><h2>{escape(exp.ident)} {_state(exp)[1]}</h2>"
        f"<p>This experiment folder could not be loaded, so it has no charts.</p><pre>{escape(exp.error or '')}</pre>"
        + (f"<h3>Verdicts</h3>{verdicts_table(exp.verdicts, exp.unreadable)}" if exp.verdicts or exp.unreadable else "")
        + "</section>"
    )


def experiment_section(exp: Experiment) -> str:
    """The full section, or an error card when the folder did not load."""
    if exp.frames is None or exp.header is None:
        return error_card(exp)
    frames, header = exp.frames, exp.header
    css, tag = _state(exp)
    incomplete = "" if frames.complete else "<span class='tag incomplete'>INCOMPLETE</span>"
    banner = "" if frames.complete else (
        "<div class='banner'>Incomplete: this timeline has no end event — the run was killed or crashed. "
        "Everything below is what was recorded up to that point.</div>"
    )
    if frames.skipped:
        banner += ("<div class='banner'>Left out of this timeline, as unreadable: "
                   + "; ".join(escape(line) for line in frames.skipped[:5])
                   + (f"; and {len(frames.skipped) - 5} more" if len(frames.skipped) > 5 else "") + "</div>")
    rows, failed, kinds = ser.error_breakdown(frames)
    return (
        f"<section class='exp {css}' id='{anchor(exp)}'>"
        f"<h2>{escape(exp.title)} {variant_tag(header.variant, broken=header.broken)} {tag} {incomplete}"
        f"<a class='up' href='#{MATRIX_ANCHOR}'>↑ matrix</a></h2>"
        f"{banner}{_meta_list(exp)}"
        f"<h3>Topology</h3>{topology_svg(header.topology, _fault_keys(exp))}"
        f"<h3>Timeline</h3>{charts(exp)}"
        f"<h3>Verdicts</h3>{verdicts_table(exp.verdicts, exp.unreadable)}"
        f"<h3>Failed requests</h3>{errors_table(rows, failed, kinds, len(frames.requests))}"
        "</section>"
    )
