"""The run page: a verdict a person can read in a second, the detection matrix
(what the run proved, matrix_html.py), then one section per experiment."""

from __future__ import annotations

from datetime import datetime
from html import escape
from pathlib import Path

from harness.judgement import Judgement
from harness.report.matrix import ORPHANS_ANCHOR
from harness.report.matrix_html import run_matrix
from harness.report.runfolder import Run, load_run
from harness.report.section import anchor, describe_fault, experiment_section
from harness.report.style import CSS
from harness.report.tables import variant_tag, verdicts_table

RUN_PAGE = "index.html"
UNREADABLE_TAG = " <span class='tag bad'>✘ unreadable verdict rows</span>"


def when(t_ns: int | None) -> str:
    if t_ns is None:
        return "?"
    return datetime.fromtimestamp(t_ns / 1e9).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def document(title: str, body: str) -> str:
    """A whole self-contained HTML document: inline CSS, no scripts, no external files."""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def summary(run: Run) -> str:
    """The big green or red box: were the checks what the suite expected?"""
    good, bad, unknown = run.totals()
    broken = [e for e in run.experiments if e.error]
    incomplete = [e for e in run.experiments if e.frames is not None and not e.frames.complete]
    total = good + bad
    if bad or broken or incomplete:
        css = "bad"
    else:
        css = "good" if total else "none"
    if bad:
        big = f"✘ {bad} of {total} checks did not behave as expected"
    elif incomplete or broken:
        missing = len(incomplete) + len(broken)
        big = f"✘ {missing} of {len(run.experiments)} experiments did not finish or could not be read"
    elif not total:
        big = "No checks were recorded"
    else:
        big = "✔ The check behaved as expected" if total == 1 else f"✔ All {total} checks behaved as expected"
    counts = (
        f"{len(run.experiments)} experiment{'s' * (len(run.experiments) != 1)} · "
        f"{good} check{'s' * (good != 1)} as expected · {bad} not as expected"
        + (f" (of which {unknown} unknown)" if unknown else "")
    )
    warns = []
    if incomplete:
        warns.append(f"{len(incomplete)} experiment{'s' * (len(incomplete) != 1)} INCOMPLETE (run killed)")
    if broken:
        warns.append(f"{len(broken)} experiment folder{'s' * (len(broken) != 1)} could not be loaded")
    if run.verdicts_error:
        warns.append(run.verdicts_error)
    started = min((e.frames.t0_ns for e in run.experiments if e.frames), default=None)
    return (
        f"<header class='summary {css}'><div><a href='../index.html'>← all runs</a></div>"
        f"<h1>Run {escape(run.run_id)}</h1><div>started {escape(when(started))}</div>"
        f"<div class='big'>{escape(big)}</div><div class='counts'>{escape(counts)}</div>"
        + "".join(f"<div class='warn'>⚠ {escape(w)}</div> " for w in warns)
        + "</header>"
    )


def overview(run: Run) -> str:
    """A table of contents: one line per experiment with its outcome."""
    rows = []
    for e in run.experiments:
        n = len(e.verdicts) + len(e.unreadable)
        good = n - e.unexpected
        state = "could not be loaded" if e.error else ("INCOMPLETE" if e.frames and not e.frames.complete else "")
        css = "bad" if e.error or good < n or state else "ok"
        h = e.header
        rows.append(
            f"<tr class='{css}'><td><a href='#{anchor(e)}'>{escape(e.title)}</a></td>"
            f"<td>{escape(h.target) if h else ''}</td>"
            f"<td>{variant_tag(h.variant, broken=h.broken) if h else ''}</td>"
            f"<td>{escape(describe_fault(h.fault)) if h else ''}</td>"
            f"<td>{_verdict_tags(e.verdicts)}{UNREADABLE_TAG if e.unreadable else ''}</td>"
            f"<td class='num'>{good} / {n}</td><td>{escape(state)}</td></tr>"
        )
    if not rows:
        return "<p class='muted'>This run has no experiment folders.</p>"
    return (
        f"<details class='toc'><summary>Every experiment, one line each ({len(rows)})</summary>"
        "<nav><table><thead><tr><th>experiment</th><th>target</th><th>variant</th><th>fault</th>"
        "<th>verdicts (expected)</th><th>as expected</th><th>state</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></nav></details>"
    )


def _verdict_tags(rows: list[Judgement]) -> str:
    """One tag per check: its outcome, coloured by whether that was expected
    (a broken variant's check that fails is green: it was caught)."""
    tags = []
    for r in rows:
        css, mark = ("good", "✔") if r.as_expected else ("bad", "✘")
        v = r.verdict
        tags.append(
            f"<span class='tag {css}' title='{escape(v.explanation, quote=True)}'>"
            f"{mark} {escape(v.check)}: {escape(v.status)} ({escape(r.expected)})</span>"
        )
    return " ".join(tags)


def run_page(run: Run) -> str:
    parts = [summary(run), run_matrix(run), overview(run)]
    parts += [experiment_section(e) for e in run.experiments]
    if run.orphans or run.unreadable:
        parts.append(
            f"<section class='exp bad' id='{ORPHANS_ANCHOR}'><h2>Verdicts without an experiment folder</h2>"
            "<p>verdicts.json names these experiments, but the run has no timeline for them.</p>"
            f"{verdicts_table(run.orphans, run.unreadable, with_experiment=True)}</section>"
        )
    generated = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    parts.append(f"<footer>Generated {escape(generated)} from {escape(str(run.folder))}.</footer>")
    return document(f"Run {run.run_id}", "\n".join(parts))


def render_run(run_dir: Path) -> Path:
    """Writes run_dir/index.html from the run's experiment folders and verdicts."""
    run_dir = Path(run_dir)
    out = run_dir / RUN_PAGE
    tmp = out.with_name(f".{RUN_PAGE}.tmp")
    tmp.write_text(run_page(load_run(run_dir)), encoding="utf-8")
    tmp.replace(out)
    return out
