"""The detection matrix: what a run proved, one cell per experiment.

Rows are target x fault, columns the target's variants (correct first, the
broken ones after). A cell holds one line per verdict of its experiment,
judged against what was expected of it:

- a correct variant's check that passes, as expected, is named;
- a broken variant is caught by a check expected to fail that fails, and,
  when the row names the clause it must break (``expected_clause``), only
  when that clause is among the verdict's failed clauses
  (``figures["failed"]``); the line names the clause that caught it;
- anything else is not as expected, and an unknown verdict is unknown (not
  proven either way), unless unknown was what was expected.

A cell is good when every line is, bad when any line is bad (or the
experiment did not finish, or a row could not be read), unknown otherwise.
Rows saved before clauses or fault-landed evidence were recorded read as
they are: a check's name stands in for its clause, and the landing is
"not recorded".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

from harness.events import FaultDescription
from harness.judgement import Judgement
from harness.report.effects import Landing
from harness.report.runfolder import Experiment, Run
from harness.report.section import anchor

Tone = Literal["good", "bad", "unknown", "none"]
NOT_OBSERVED = "fault not observed"
ORPHANS_ANCHOR = "orphans"


@dataclass(frozen=True, slots=True)
class Line:
    """One verdict in a cell: its tone, its text, the full explanation, and
    whether it is the line that caught a broken variant."""

    tone: Tone
    text: str
    title: str
    catch: bool = False


def _failed_clauses(row: Judgement) -> list[str] | None:
    failed = row.verdict.figures.get("failed")
    return [str(c) for c in failed] if isinstance(failed, list) else None


def judge_line(row: Judgement) -> Line:
    """The row as a cell line: named by its check, with the clause that caught a broken variant."""
    v, check = row.verdict, row.verdict.check
    title = f"{check}: {v.status}, expected {row.expected}. {v.explanation}"
    failed, clause = _failed_clauses(row), row.expected_clause
    if v.status == "unknown":
        if row.expected == "unknown":
            return Line("good", f"{check}: unknown, as expected", title)
        why = NOT_OBSERVED if v.explanation.startswith(NOT_OBSERVED) else "unknown"
        return Line("unknown", f"{check}: {why}", title)
    if row.expected == "fail" and v.status == "fail":
        if not clause:
            return Line("good", f"caught by {check}" + (f" · {', '.join(failed)}" if failed else ""), title, True)
        if failed is not None and clause in failed:
            return Line("good", f"caught by {check} · {clause}", title, True)
        why = f"failed on {', '.join(failed) or 'no clause'}" if failed is not None else "failed, naming no clause"
        return Line("bad", f"{check} {why}, not {clause}", title)
    if row.expected == v.status:
        return Line("good", check, title)
    if row.expected == "fail":
        return Line("bad", f"{check} passed: not caught", title)
    if v.status == "fail":
        return Line("bad", f"{check} failed" + (f" · {', '.join(failed)}" if failed else ""), title)
    return Line("bad", f"{check}: {v.status}, expected {row.expected}", title)


def tone_of(lines: list[Line], *, trouble: bool) -> Tone:
    if trouble or any(line.tone == "bad" for line in lines):
        return "bad"
    if any(line.tone == "unknown" for line in lines):
        return "unknown"
    return "good" if lines else "none"


@dataclass(frozen=True, slots=True)
class Cell:
    """One experiment in the matrix: its lines, its tone, where its section is, whether its fault landed."""

    experiment: str
    title: str
    href: str
    tone: Tone
    lines: tuple[Line, ...]
    notes: tuple[str, ...] = ()
    landing: Landing | None = None  # None: no fault, or no timeline to say
    expects_catch: bool = False  # a broken variant with a check expected to catch it

    @property
    def caught(self) -> bool:
        """A broken variant expected to be caught, caught: every verdict as expected, so each check expected to fail caught it."""
        return self.expects_catch and self.tone == "good"


@dataclass(frozen=True, slots=True)
class Place:
    """Where a cell goes: its target, fault and variant."""

    target: str
    fault: FaultDescription | None
    variant: str
    broken: bool

    @property
    def row_key(self) -> tuple[str, str]:
        f = self.fault
        return self.target, json.dumps(f.to_json() if f else None, sort_keys=True, default=str)


def cell_lines(rows: list[Judgement]) -> list[Line]:
    """The rows' lines, what went wrong first, then what is unknown, then what caught a broken variant."""
    rank = {"bad": 0, "unknown": 1}
    return sorted((judge_line(r) for r in rows), key=lambda line: rank.get(line.tone, 3 - line.catch))


def experiment_cell(exp: Experiment) -> tuple[Place | None, Cell]:
    """The experiment's cell, and where it goes (None when neither its timeline nor a row says)."""
    lines = cell_lines(exp.verdicts)
    notes = []
    if exp.error:
        notes.append("could not be loaded")
    elif exp.frames is not None and not exp.frames.complete:
        notes.append("INCOMPLETE")
    if exp.unreadable:
        notes.append(f"{len(exp.unreadable)} unreadable verdict row{'s' * (len(exp.unreadable) != 1)}")
    h = exp.header
    first = exp.verdicts[0] if exp.verdicts else None
    place = (Place(h.target, h.fault, h.variant, h.broken) if h else
             Place(first.target, first.fault, first.variant, first.broken) if first else None)
    fault = place.fault if place else None
    landing = Landing.of(exp.frames) if fault is not None and exp.frames is not None else None
    cell = Cell(exp.ident, exp.title, f"#{anchor(exp)}", tone_of(lines, trouble=bool(notes)), tuple(lines),
                tuple(notes), landing, _expects_catch(place, exp.verdicts))
    return place, cell


def _expects_catch(place: Place | None, rows: list[Judgement]) -> bool:
    return bool(place and place.broken) and any(r.expected == "fail" for r in rows)


def orphan_cells(rows: list[Judgement]) -> list[tuple[Place, Cell]]:
    """Rows naming an experiment the run has no folder of, one cell per experiment named."""
    named: dict[str, list[Judgement]] = {}
    for r in rows:
        named.setdefault(r.experiment, []).append(r)
    out = []
    for name, mine in named.items():
        lines = cell_lines(mine)
        first = mine[0]
        place = Place(first.target, first.fault, first.variant, first.broken)
        cell = Cell(name, name, f"#{ORPHANS_ANCHOR}", tone_of(lines, trouble=True), tuple(lines),
                    ("no experiment folder",), None, _expects_catch(place, mine))
        out.append((place, cell))
    return out


@dataclass
class MatrixRow:
    target: str
    fault: FaultDescription | None
    cells: dict[str, list[Cell]] = field(default_factory=dict)  # variant -> its experiments

    def landings(self) -> list[Landing]:
        return [c.landing for cells in self.cells.values() for c in cells if c.landing is not None]


@dataclass
class Block:
    """One target's rows, under its own header of variants: correct, others, then the broken ones."""

    target: str
    variants: list[tuple[str, bool]] = field(default_factory=list)  # (name, broken), in column order
    rows: list[MatrixRow] = field(default_factory=list)


@dataclass
class Matrix:
    blocks: list[Block]
    cells: list[Cell]  # every placed cell, in run order
    unplaced: list[Cell]
    experiments: int

    @property
    def landings(self) -> list[Landing]:
        return [c.landing for c in self.cells if c.landing is not None]

    @property
    def width(self) -> int:
        """The number of variant columns of the widest target."""
        return max((len(b.variants) for b in self.blocks), default=1)


def _column_order(variants: dict[str, bool]) -> list[tuple[str, bool]]:
    order = list(variants.items())  # first appearance, then correct first, unmarked next, broken last
    return sorted(order, key=lambda vb: (vb[0] != "correct", vb[1]))


def build_matrix(run: Run) -> Matrix:
    """The run's experiments (and rows naming no folder) placed by target, fault and variant."""
    placed = [experiment_cell(e) for e in run.experiments] + orphan_cells(run.orphans)
    blocks: dict[str, Block] = {}
    rows: dict[tuple[str, str], MatrixRow] = {}
    variants: dict[str, dict[str, bool]] = {}
    for place, cell in placed:
        if place is None:
            continue
        block = blocks.setdefault(place.target, Block(place.target))
        seen = variants.setdefault(place.target, {})
        seen[place.variant] = seen.get(place.variant, False) or place.broken
        if place.row_key not in rows:
            rows[place.row_key] = MatrixRow(place.target, place.fault)
            block.rows.append(rows[place.row_key])
        rows[place.row_key].cells.setdefault(place.variant, []).append(cell)
    for target, block in blocks.items():
        block.variants = _column_order(variants[target])
    return Matrix(list(blocks.values()), [c for p, c in placed if p is not None],
                  [c for p, c in placed if p is None], len(run.experiments))
