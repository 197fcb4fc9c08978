"""The verdict row: a check's verdict beside what was expected of it, and where it was judged.

    HarnessRun.judge  -> experiments/<name>/verdicts.jsonl   appended as each judgement is made
    HarnessRun.close  -> verdicts.json                       every row of the run
    the report        <- both, through Judgement.from_json

Verdicts are judged after an experiment's timeline has ended, so they are
not timeline events. A run killed before ``close`` still has each
experiment's ``verdicts.jsonl``; a row that cannot be read back is an
``UnreadableRow``, which the report shows as an error entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal

from .checks.verdict import Verdict
from .events import FaultDescription
from .jsonform import field_of, json_object
from .timeline import read_jsonl

Expected = Literal["pass", "fail", "unknown"]   # unknown: a no-op case, whose fault cannot take effect
EXPECTED = ("pass", "fail", "unknown")
VERDICTS_LOG = "verdicts.jsonl"
VERDICTS_FILE = "verdicts.json"


@dataclass(frozen=True, slots=True)
class Judgement:
    """One row of verdicts.json: the verdict, what was expected (for a broken
    variant, also the clause it must break), and the experiment, target,
    variant (broken or not) and fault it was judged on."""

    experiment: str
    target: str
    variant: str
    broken: bool
    fault: FaultDescription | None
    verdict: Verdict
    expected: Expected
    expected_clause: str | None = None

    @property
    def as_expected(self) -> bool:
        """Whether the check said what was expected and, when a clause is named, failed
        on that clause: a broken variant failing for another reason is not caught."""
        if self.verdict.status != self.expected:
            return False
        return self.expected_clause is None or self.expected_clause in self.failed_clauses

    @property
    def failed_clauses(self) -> list[str]:
        """The clauses the verdict names as failed (none for verdicts judged before clauses)."""
        failed = self.verdict.figures.get("failed")
        return [str(c) for c in failed] if isinstance(failed, list) else []

    def to_json(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "target": self.target, "variant": self.variant, "broken": self.broken,
                "fault": self.fault.to_json() if self.fault else None, "expected": self.expected,
                "expected_clause": self.expected_clause, **self.verdict.to_json()}

    @classmethod
    def from_json(cls, data: Any) -> "Judgement":
        data = json_object(data, "verdict row")
        expected = field_of(data, "expected", str, "verdict row")
        if expected not in EXPECTED:
            raise ValueError(f"verdict row: expected is {expected!r}, not pass, fail or unknown")
        return cls(
            experiment=field_of(data, "experiment", str, "verdict row"),
            target=field_of(data, "target", str, "verdict row"),
            variant=field_of(data, "variant", str, "verdict row"),
            # runs saved before `broken` was recorded have none: their variants show untagged
            broken=field_of(data, "broken", bool, "verdict row", False),
            fault=_fault(field_of(data, "fault", (dict, str, type(None)), "verdict row")),
            verdict=Verdict.from_json(data),
            expected=expected,  # type: ignore[arg-type]
            # rows saved before clause-level verdicts have none
            expected_clause=field_of(data, "expected_clause", (str, type(None)), "verdict row", None),
        )


def _fault(value: dict[str, Any] | str | None) -> FaultDescription | None:
    """The row's fault; runs saved before descriptions were typed wrote its kind alone."""
    if value is None:
        return None
    if isinstance(value, str):
        return FaultDescription(kind=value, on="", params={})
    return FaultDescription.from_json(value)


@dataclass(frozen=True, slots=True)
class UnreadableRow:
    """A row of a saved run that is not a verdict row: the report shows it as an error entry."""

    experiment: str | None
    error: str


def parse_rows(items: Iterable[Any]) -> tuple[list[Judgement], list[UnreadableRow]]:
    """The rows that read back, and an UnreadableRow (naming its experiment if it can) for each other one."""
    rows: list[Judgement] = []
    bad: list[UnreadableRow] = []
    for item in items:
        try:
            rows.append(Judgement.from_json(item))
        except ValueError as exc:
            named = item.get("experiment") if isinstance(item, dict) else None
            bad.append(UnreadableRow(named if isinstance(named, str) else None, str(exc)))
    return rows, bad


def append_rows(experiment_folder: Path, rows: Iterable[Judgement]) -> None:
    """Appends rows to the experiment's verdicts.jsonl, flushed, so a killed run keeps them."""
    with (Path(experiment_folder) / VERDICTS_LOG).open("a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row.to_json(), default=str) + "\n")
            f.flush()


def read_log(experiment_folder: Path) -> tuple[list[Judgement], list[UnreadableRow]]:
    """The rows of an experiment's verdicts.jsonl (none when absent; a line cut short by a kill is skipped)."""
    return parse_rows(read_jsonl(Path(experiment_folder) / VERDICTS_LOG))


def write_file(run_folder: Path, rows: Iterable[Judgement]) -> Path:
    """Writes verdicts.json, every row of the run, replacing it whole."""
    path = Path(run_folder) / VERDICTS_FILE
    tmp = path.with_name(f".{VERDICTS_FILE}.tmp")
    tmp.write_text(json.dumps([r.to_json() for r in rows], indent=2, default=str), encoding="utf-8")
    tmp.replace(path)
    return path


def read_file(run_folder: Path) -> tuple[list[Judgement], list[UnreadableRow]] | None:
    """The rows of verdicts.json; None when there is none; a ValueError (or OSError) when it is unreadable."""
    path = Path(run_folder) / VERDICTS_FILE
    if not path.exists():
        return None
    items = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(items, list):
        raise ValueError(f"{VERDICTS_FILE}: expected a JSON list of verdict rows, got {type(items).__name__}")
    return parse_rows(items)
