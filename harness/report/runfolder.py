"""Reading a run folder: its experiments, their frames and their verdicts.

verdicts.json (written at the end of a run) is preferred; a run that was
killed before writing it still has the verdict events in each timeline.
A folder that cannot be loaded becomes an error entry, never an exception.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.timeline import TIMELINE_FILE, Frames, load_frames, read_jsonl

EXPERIMENTS_DIR = "experiments"
VERDICTS_FILE = "verdicts.json"


def as_expected(row: dict[str, Any]) -> bool:
    """A check behaved as expected when its status is what was expected; unknown never is."""
    return row.get("status") in ("pass", "fail") and row.get("status") == row.get("expected")


def normalise(row: dict[str, Any], variant: str | None = None) -> dict[str, Any]:
    """A verdict row with every field the report shows, whatever wrote it."""
    status = row.get("status")
    if not status:
        passed = row.get("passed")
        status = "pass" if passed is True else "fail" if passed is False else "unknown"
    expected = row.get("expected") or ("fail" if str(variant or "").startswith("broken") else "pass")
    out = {
        "check": str(row.get("check") or "?"),
        "status": status,
        "expected": expected,
        "figures": row.get("figures") if isinstance(row.get("figures"), dict) else {},
        "explanation": str(row.get("explanation") or ""),
    }
    out["as_expected"] = as_expected(out)
    return out


@dataclass
class Experiment:
    """One experiment folder: loaded frames, or the error that stopped loading."""

    ident: str
    folder: Path
    frames: Frames | None = None
    error: str | None = None
    verdicts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def meta(self) -> dict[str, Any]:
        return self.frames.meta if self.frames else {}

    @property
    def title(self) -> str:
        return str(self.meta.get("name") or self.ident)


@dataclass
class Run:
    run_id: str
    folder: Path
    experiments: list[Experiment]
    orphans: list[dict[str, Any]] = field(default_factory=list)
    verdicts_error: str | None = None

    def all_verdicts(self) -> list[dict[str, Any]]:
        return [v for e in self.experiments for v in e.verdicts] + self.orphans

    def totals(self) -> tuple[int, int, int]:
        """(as expected, not as expected, of which unknown)."""
        rows = self.all_verdicts()
        good = sum(v["as_expected"] for v in rows)
        unknown = sum(v["status"] not in ("pass", "fail") for v in rows)
        return good, len(rows) - good, unknown


def read_verdicts_file(run_dir: Path) -> tuple[list[dict[str, Any]] | None, str | None]:
    """The rows of verdicts.json, None when absent, and an error text when unreadable."""
    path = Path(run_dir) / VERDICTS_FILE
    if not path.exists():
        return None, None
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(rows, list):
            raise ValueError("expected a JSON list of verdict rows")
        return [r for r in rows if isinstance(r, dict)], None
    except (OSError, ValueError) as exc:
        return None, f"{VERDICTS_FILE} could not be read ({exc}); showing the verdicts recorded in the timelines"


def experiment_dirs(run_dir: Path) -> list[Path]:
    root = Path(run_dir) / EXPERIMENTS_DIR
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _load(folder: Path) -> Experiment:
    exp = Experiment(ident=folder.name, folder=folder)
    try:
        exp.frames = load_frames(folder)
    except Exception as exc:  # any broken folder becomes an error card
        exp.error = f"{type(exc).__name__}: {exc}"
    return exp


def _sort_key(exp: Experiment) -> tuple[float, str]:
    return (exp.frames.t0_ns if exp.frames else math.inf, exp.ident)


def load_run(run_dir: Path) -> Run:
    """Every experiment of a run (sorted by first event), with its verdict rows."""
    run_dir = Path(run_dir)
    experiments = sorted((_load(d) for d in experiment_dirs(run_dir)), key=_sort_key)
    rows, error = read_verdicts_file(run_dir)
    claimed: set[int] = set()
    for exp in experiments:
        variant = exp.meta.get("variant")
        mine = []
        if rows is not None:
            names = {exp.ident, exp.meta.get("name")} - {None}
            mine = [(i, r) for i, r in enumerate(rows) if r.get("experiment") in names]
            claimed.update(i for i, _ in mine)
        if mine:
            exp.verdicts = [normalise(r, variant) for _, r in mine]
        elif exp.frames is not None:
            exp.verdicts = [normalise(v, variant) for v in exp.frames.verdicts]
    orphans = [] if rows is None else [
        dict(normalise(r, r.get("variant")), experiment=str(r.get("experiment") or "?"))
        for i, r in enumerate(rows) if i not in claimed
    ]
    return Run(run_id=run_dir.name, folder=run_dir, experiments=experiments, orphans=orphans, verdicts_error=error)


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
    rows, _ = read_verdicts_file(run_dir)
    if rows is not None:
        verdicts = [normalise(r, r.get("variant")) for r in rows]
    else:
        verdicts = []
        for d in dirs:
            events = [e for e in read_jsonl(d / TIMELINE_FILE) if isinstance(e, dict)]
            meta = next((e for e in events if e.get("kind") == "experiment"), {})
            verdicts += [normalise(e, meta.get("variant")) for e in events if e.get("kind") == "verdict"]
    good = sum(v["as_expected"] for v in verdicts)
    unfinished = sum(not _finished(d) for d in dirs)
    return RunSummary(
        run_dir.name, run_dir, min(starts) if starts else None, len(dirs), good, len(verdicts) - good, unfinished
    )
