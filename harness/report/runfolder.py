"""Reading a run folder: its experiments, their frames and their verdict rows.

verdicts.json (written when a run closes) is preferred; a run killed before
writing it still has each experiment's verdicts.jsonl, appended as each
judgement was made. (Runs saved before verdicts.jsonl existed have their
verdicts as ``verdict`` events at the end of each timeline; those are read
too, so such a run killed before close still shows them.) A folder that
cannot be loaded becomes an error card, and a row that cannot be read an
error entry, never an exception.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.events import ExperimentStarted
from harness.judgement import VERDICTS_FILE, VERDICTS_LOG, Judgement, UnreadableRow, parse_rows, read_file, read_log
from harness.timeline import TIMELINE_FILE, Frames, load_frames, read_jsonl

EXPERIMENTS_DIR = "experiments"


@dataclass
class Experiment:
    """One experiment folder: loaded frames and first event, or the error that stopped loading."""

    ident: str
    folder: Path
    frames: Frames | None = None
    header: ExperimentStarted | None = None
    error: str | None = None
    verdicts: list[Judgement] = field(default_factory=list)
    unreadable: list[UnreadableRow] = field(default_factory=list)

    @property
    def title(self) -> str:
        return self.header.name if self.header else self.ident

    @property
    def unexpected(self) -> int:
        """Rows not as expected, an unreadable row counted as one."""
        return sum(not v.as_expected for v in self.verdicts) + len(self.unreadable)


@dataclass
class Run:
    run_id: str
    folder: Path
    experiments: list[Experiment]
    orphans: list[Judgement] = field(default_factory=list)
    unreadable: list[UnreadableRow] = field(default_factory=list)  # rows naming no experiment folder
    verdicts_error: str | None = None

    def totals(self) -> tuple[int, int, int]:
        """(as expected, not as expected, of which unknown); an unreadable row is not as expected."""
        rows = [v for e in self.experiments for v in e.verdicts] + self.orphans
        bad_rows = sum(len(e.unreadable) for e in self.experiments) + len(self.unreadable)
        good = sum(v.as_expected for v in rows)
        unknown = sum(v.verdict.status == "unknown" and not v.as_expected for v in rows)  # a no-op case may expect it
        return good, len(rows) - good + bad_rows, unknown


def experiment_dirs(run_dir: Path) -> list[Path]:
    root = Path(run_dir) / EXPERIMENTS_DIR
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _load(folder: Path) -> Experiment:
    exp = Experiment(ident=folder.name, folder=folder)
    try:
        frames = load_frames(folder)
        exp.header = ExperimentStarted.from_json(frames.meta)
        exp.frames = frames
    except Exception as exc:  # any broken folder becomes an error card
        exp.error = f"{type(exc).__name__}: {exc}"
    return exp


def _sort_key(exp: Experiment) -> tuple[float, str]:
    return (exp.frames.t0_ns if exp.frames else math.inf, exp.ident)


Rows = tuple[list[Judgement], list[UnreadableRow]]


@dataclass
class RunRows:
    """A run's verdict rows: per experiment folder, and those naming no folder."""

    per_folder: dict[str, Rows]
    orphans: Rows
    error: str | None = None


def read_verdicts(run_dir: Path, folders: list[Path]) -> RunRows:
    """Rows from verdicts.json; an experiment it names no row of (the run was
    killed before close, or the file is unreadable) has its own verdicts.jsonl."""
    error = None
    try:
        rows, bad = read_file(run_dir) or ([], [])
    except (OSError, ValueError) as exc:
        rows, bad = [], []
        error = f"{VERDICTS_FILE} could not be read ({exc}); showing each experiment's own verdicts"
    per_folder: dict[str, Rows] = {}
    for folder in folders:
        mine = ([r for r in rows if r.experiment == folder.name], [b for b in bad if b.experiment == folder.name])
        per_folder[folder.name] = mine if mine[0] or mine[1] else _own_rows(folder)
    orphans = ([r for r in rows if r.experiment not in per_folder], [b for b in bad if b.experiment not in per_folder])
    return RunRows(per_folder, orphans, error)


def _own_rows(folder: Path) -> Rows:
    """The experiment folder's verdicts.jsonl; in a run saved before it existed,
    the verdict events its timeline has after the end, with the first event's
    target, variant and fault."""
    if (folder / VERDICTS_LOG).exists():
        return read_log(folder)
    events = [e for e in read_jsonl(folder / TIMELINE_FILE) if isinstance(e, dict)]
    first = next((e for e in events if e.get("kind") == "experiment"), {})
    where = {k: first.get(k) for k in ("target", "variant", "fault")}
    return parse_rows(dict(e, experiment=folder.name, **where) for e in events if e.get("kind") == "verdict")


def load_run(run_dir: Path) -> Run:
    """Every experiment of a run (sorted by first event), with its verdict rows."""
    run_dir = Path(run_dir)
    dirs = experiment_dirs(run_dir)
    experiments = sorted((_load(d) for d in dirs), key=_sort_key)
    verdicts = read_verdicts(run_dir, dirs)
    for exp in experiments:
        exp.verdicts, exp.unreadable = verdicts.per_folder[exp.ident]
    return Run(run_id=run_dir.name, folder=run_dir, experiments=experiments, orphans=verdicts.orphans[0],
               unreadable=verdicts.orphans[1], verdicts_error=verdicts.error)


def _first_event(folder: Path) -> dict[str, Any] | None:
    try:
        with (folder / TIMELINE_FILE).open(encoding="utf-8") as f:
            return json.loads(f.readline())
    except (OSError, ValueError):
        return None


def _finished(folder: Path) -> bool:
    """Whether the timeline has its end event, looking only at its tail."""
    try:
        with (folder / TIMELINE_FILE).open("rb") as f:
            f.seek(0, 2)
            f.seek(max(f.tell() - 65536, 0))
            tail = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return False
    for line in reversed(tail):
        try:
            if json.loads(line).get("kind") == "end":
                return True
        except (ValueError, AttributeError):
            continue
    return False


@dataclass
class RunSummary:
    """What the index shows for one run, read without loading request rows."""

    run_id: str
    folder: Path
    started_ns: int | None
    experiments: int
    expected: int
    unexpected: int
    incomplete: int = 0
    note: str = ""


def summarise(run_dir: Path) -> RunSummary:
    run_dir = Path(run_dir)
    dirs = experiment_dirs(run_dir)
    firsts = [e for e in (_first_event(d) for d in dirs) if isinstance(e, dict)]
    starts = [int(e["t_ns"]) for e in firsts if isinstance(e.get("t_ns"), (int, float))]
    verdicts = read_verdicts(run_dir, dirs)
    every = [*verdicts.per_folder.values(), verdicts.orphans]
    rows = [r for mine, _ in every for r in mine]
    bad = [b for _, unreadable in every for b in unreadable]
    good = sum(v.as_expected for v in rows)
    unfinished = sum(not _finished(d) for d in dirs)
    return RunSummary(
        run_dir.name, run_dir, min(starts) if starts else None, len(dirs), good, len(rows) - good + len(bad), unfinished
    )
