"""The detection matrix as HTML: a summary line, a legend, then one table of
every target's rows (target x fault) under its own header of variants."""

from __future__ import annotations

from collections import Counter
from html import escape

from harness.report.effects import Landing
from harness.report.matrix import Block, Cell, Matrix, MatrixRow, build_matrix
from harness.report.runfolder import Run
from harness.report.section import MATRIX_ANCHOR, describe_fault

MARKS = {"good": "✔", "bad": "✘", "unknown": "?", "none": "–"}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def _landing_counts(landings: list[Landing], cells: list[Cell] | None = None) -> tuple[str, str | None]:
    """(css, text) of faults taken together: 'landed 3 of 4 (1 not observed)'; no text when none was recorded.
    A fault not observed in a case whose verdicts were all as expected (a no-op case, which must give
    unknown) is said so, and is not marked bad."""
    states = Counter(landing.state for landing in landings)
    if states["not recorded"] == len(landings):
        return "muted", None
    expected = sum(_missed_as_expected(c) for c in cells or [])
    text = f"landed {states['landed']} of {len(landings)}"
    others = [f"{n} {state}" + (", as expected" if state == "not observed" and n == expected else
                                f", {expected} of them as expected" if state == "not observed" and expected else "")
              for state, n in states.items() if state != "landed"]
    css = ("bad" if states["not observed"] > expected else
           "ok" if states["landed"] + states["not observed"] == len(landings) else "muted")
    return css, text + (f" ({', '.join(others)})" if others else "")


def _missed_as_expected(cell: Cell) -> bool:
    return cell.landing is not None and cell.landing.state == "not observed" and cell.tone == "good"


def summary_line(matrix: Matrix) -> str:
    """N experiments, M of T verdicts as expected, K unknown, broken variants caught, faults landed."""
    lines = [line for cell in matrix.cells + matrix.unplaced for line in cell.lines]
    good = sum(line.tone == "good" for line in lines)
    unknown = sum(line.tone == "unknown" for line in lines)
    broken = [c for c in matrix.cells if c.expects_catch]
    caught = sum(c.caught for c in broken)
    landings = matrix.landings
    land_css, landed = _landing_counts(landings, matrix.cells)
    land_text = (f"faults {landed}" if landed else
                 "fault landing not recorded (no fault_effect events)" if landings else "no faults")
    stats = [
        ("", _plural(matrix.experiments, "experiment")),
        ("ok" if good == len(lines) and lines else "bad", f"{good} of {_plural(len(lines), 'verdict')} as expected"),
        ("unknown" if unknown else "", f"{unknown} unknown"),
        ("ok" if caught == len(broken) else "bad", f"{caught} of {_plural(len(broken), 'broken variant')} caught"),
        (land_css, land_text),
    ]
    return "<p class='msum'>" + " · ".join(f"<span class='{css}'>{escape(t)}</span>" for css, t in stats) + "</p>"


LEGEND = (
    "<p class='legend'><span class='sw good'></span>every verdict as expected "
    "<span class='sw bad'></span>a verdict not as expected, or the experiment did not finish "
    "<span class='sw unknown'></span>unknown: not proven either way "
    "<span class='sw none'></span>not run · "
    "<b>caught by</b> <i>check · clause</i>: what failed on the broken variant, as it must. "
    "Each cell links to its experiment's section; hover a line for the verdict's explanation.</p>"
)


def _cell_html(cells: list[Cell], show_landing: bool) -> str:
    if not cells:
        return "<td class='cell none' title='this variant was not run with this fault'>–</td>"
    tone = next((t for t in ("bad", "unknown", "good") if any(c.tone == t for c in cells)), "none")
    parts = []
    for cell in cells:
        inner = f"<div class='xname'>{escape(cell.title)}</div>" if len(cells) > 1 else ""
        for line in cell.lines:
            css = f"ln {line.tone}{' catch' if line.catch else ''}"
            inner += (f"<div class='{css}' title='{escape(line.title, quote=True)}'>"
                      f"{MARKS[line.tone]} {escape(line.text)}</div>")
        if not cell.lines:
            inner += "<div class='ln none'>no verdicts recorded</div>"
        inner += "".join(f"<div class='note'>⚠ {escape(n)}</div>" for n in cell.notes)
        if show_landing and cell.landing is not None:
            landed = cell.landing
            css = "muted" if _missed_as_expected(cell) else {"landed": "ok", "not observed": "bad"}.get(landed.state, "muted")
            inner += (f"<div class='landed {css}' title='{escape(landed.detail, quote=True)}'>"
                      f"fault {escape(landed.short())}</div>")
        parts.append(f"<a href='{escape(cell.href, quote=True)}' title='{escape(cell.title, quote=True)}: "
                     f"open its section'>{inner}</a>")
    return f"<td class='cell {tone}'>{''.join(parts)}</td>"


def _row_html(row: MatrixRow, block: Block, width: int, recorded: bool) -> str:
    """The row's label (with its faults' landing, when the run recorded any) and its cells."""
    head, _, params = describe_fault(row.fault).partition(" (") if row.fault else ("no fault", "", "")
    label = (f"<span class='tgt'>{escape(row.target)} ·</span> <b>{escape(head)}</b>"
             + (f" <span class='params'>({escape(params)}</span>" if params else ""))
    landings = row.landings()
    css, landed = _landing_counts(landings, [c for cells in row.cells.values() for c in cells])
    if landings and recorded:
        label += f"<div class='landing {css}'>{escape(f'fault {landed}' if landed else 'fault landing not recorded')}</div>"
    show = landed is not None
    cells = "".join(_cell_html(row.cells.get(v, []), show) for v, _ in block.variants)
    void = width - len(block.variants)
    return (f"<tr><th class='fault' scope='row'>{label}</th>{cells}"
            + (f"<td class='void' colspan='{void}'></td>" if void else "") + "</tr>")


def _head_html(block: Block, width: int) -> str:
    cols = "".join(
        f"<th class='variant'><span class='tag broken'>BROKEN</span> {escape(v)}</th>" if broken
        else f"<th class='variant'><span class='tag variant'>{escape(v)}</span></th>"
        for v, broken in block.variants
    )
    void = width - len(block.variants)
    return (f"<tr class='head'><th scope='rowgroup'>{escape(block.target)}</th>{cols}"
            + (f"<th class='void' colspan='{void}'></th>" if void else "") + "</tr>")


def matrix_html(matrix: Matrix) -> str:
    if not matrix.cells and not matrix.unplaced:
        return ""
    width, recorded = matrix.width, _landing_counts(matrix.landings)[1] is not None
    body = "".join(
        f"<tbody>{_head_html(b, width)}{''.join(_row_html(r, b, width, recorded) for r in b.rows)}</tbody>"
        for b in matrix.blocks
    )
    cols = "<colgroup><col class='label'>" + "<col>" * width + "</colgroup>"
    unplaced = ""
    if matrix.unplaced:
        links = ", ".join(f"<a href='{escape(c.href, quote=True)}'>{escape(c.title)}</a> "
                          f"({escape('; '.join(c.notes) or 'no header')})" for c in matrix.unplaced)
        unplaced = f"<p class='warn-line'>⚠ Not in the matrix (no target, fault or variant could be read): {links}</p>"
    return (
        f"<section class='matrix' id='{MATRIX_ANCHOR}'><h2>Detection matrix</h2>{summary_line(matrix)}{LEGEND}"
        f"<div class='mwrap'><table class='matrix'>{cols}{body}</table></div>{unplaced}</section>"
    )


def run_matrix(run: Run) -> str:
    """The matrix of a run, for the top of its page."""
    return matrix_html(build_matrix(run))
