"""Judging an experiment writes typed verdict rows beside its timeline, never into
it after its end, and closing the run renders them with the broken variant tagged."""

from __future__ import annotations

import json
from pathlib import Path

from harness.checks.verdict import Verdict
from harness.events import ExperimentStarted, FaultDescription
from harness.experiment import ExperimentRun
from harness.judgement import VERDICTS_LOG, Judgement
from harness.session import HarnessRun
from harness.timeline import Recorder, load_frames, read_jsonl

FAULT = FaultDescription("pause", "c", {})


def finished_experiment(folder: Path) -> ExperimentRun:
    """What run_experiment leaves: a timeline that ends with `end`, and its frames."""
    with Recorder(folder) as rec:
        rec.write(ExperimentStarted(name=folder.name, target="chained", variant="no-timeouts", broken=True,
                                    runtime="local", fault=FAULT, topology={}, spec={}, phases={}, load={}))
        rec.record("end")
    return ExperimentRun(name=folder.name, folder=folder, frames=load_frames(folder), spec={}, target="chained",
                         variant="no-timeouts", broken=True, fault=FAULT)


def test_judge_appends_rows_beside_the_timeline_and_close_writes_them_all(tmp_path: Path) -> None:
    run = HarnessRun(reports_dir=tmp_path)  # not opened: no Toxiproxy, only judging and closing
    exp = finished_experiment(run.folder / "experiments" / "pause-no-timeouts")
    verdict = Verdict("answers-within-budget", "fail", "p99 9000 ms, limit 950 ms", {"p99_ms": 9000.0})
    [judged] = run.judge(exp, [(verdict, "fail")])
    assert judged == Judgement("pause-no-timeouts", "chained", "no-timeouts", True, FAULT, verdict, "fail")
    assert read_jsonl(exp.folder / "timeline.jsonl")[-1]["kind"] == "end"  # nothing after the end
    assert [Judgement.from_json(r) for r in read_jsonl(exp.folder / VERDICTS_LOG)] == [judged]
    run.close()
    assert [Judgement.from_json(r) for r in json.loads((run.folder / "verdicts.json").read_text())] == [judged]
    page = (run.folder / "index.html").read_text(encoding="utf-8")
    assert "<span class='tag broken'>BROKEN variant: no-timeouts</span>" in page
    assert "✔ The check behaved as expected" in page
