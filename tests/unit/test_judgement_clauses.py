"""A broken variant counts as caught only by the clause it must break; a no-op
case may expect unknown; rows saved before clauses read back without one."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.checks.verdict import Verdict, judged, unknown
from harness.judgement import Judgement
from harness.session import HarnessRun, explain

from .test_session_verdicts import FAULT, finished_experiment

SLOW = judged("answers-within-budget", {"p99_within_budget": False, "no_request_hung": True}, "p99 9000 ms")
HUNG = judged("answers-within-budget", {"p99_within_budget": True, "no_request_hung": False}, "1 hung")


def row(verdict: Verdict, expected: str, clause: str | None = None) -> Judgement:
    return Judgement("x", "chained", "no-timeouts", True, FAULT, verdict, expected, clause)  # type: ignore[arg-type]


def test_a_fail_is_as_expected_only_on_the_clause_it_must_break() -> None:
    assert row(SLOW, "fail", "p99_within_budget").as_expected
    assert not row(HUNG, "fail", "p99_within_budget").as_expected   # failed, but for another reason
    assert row(HUNG, "fail").as_expected                            # no clause named: the status is enough
    old = Verdict("answers-within-budget", "fail", "p99 9000 ms", {"p99_ms": 9000.0})  # judged before clauses
    assert not row(old, "fail", "p99_within_budget").as_expected


def test_unknown_may_be_what_was_expected() -> None:
    blind = unknown("recovers", "fault not observed: b ignores C_URL")
    assert row(blind, "unknown").as_expected
    assert not row(blind, "pass").as_expected and not row(SLOW, "unknown").as_expected


def test_a_row_saved_before_clauses_reads_back_without_one() -> None:
    saved = row(SLOW, "fail").to_json()
    del saved["expected_clause"]
    assert Judgement.from_json(saved).expected_clause is None
    assert Judgement.from_json(row(SLOW, "fail", "p99_within_budget").to_json()).expected_clause == "p99_within_budget"


def test_judge_takes_a_clause_as_a_third_item_or_inside_a_case_tables_pair(tmp_path: Path) -> None:
    run = HarnessRun(reports_dir=tmp_path)
    exp = finished_experiment(run.folder / "experiments" / "pause-no-timeouts")
    judged_rows = run.judge(exp, [(SLOW, "fail", "p99_within_budget"), (SLOW, ("fail", "p99_within_budget")),
                                  (HUNG, "fail"), (unknown("recovers", "not observed"), "unknown")])
    assert [(j.expected, j.expected_clause) for j in judged_rows] == [
        ("fail", "p99_within_budget"), ("fail", "p99_within_budget"), ("fail", None), ("unknown", None)]
    assert all(j.as_expected for j in judged_rows)


@pytest.mark.parametrize("entry", [(SLOW, "pass", "p99_within_budget"), (SLOW, "failed"), (SLOW,),
                                   (SLOW, "fail", "a", "b")])
def test_judge_refuses_an_expectation_it_cannot_read(tmp_path: Path, entry: tuple) -> None:
    run = HarnessRun(reports_dir=tmp_path)
    exp = finished_experiment(run.folder / "experiments" / "x")
    with pytest.raises(ValueError, match="answers-within-budget"):
        run.judge(exp, [entry])  # type: ignore[list-item]


def test_expect_names_the_clause_wanted_and_the_ones_that_failed(tmp_path: Path) -> None:
    run = HarnessRun(reports_dir=tmp_path)
    exp = finished_experiment(run.folder / "experiments" / "pause-no-timeouts")
    with pytest.raises(AssertionError) as raised:
        run.expect(exp, [(HUNG, "fail", "p99_within_budget")])
    assert "BAD answers-within-budget: expected fail on p99_within_budget, got fail on no_request_hung - 1 hung" \
        in str(raised.value)
    assert explain([row(SLOW, "fail", "p99_within_budget")]).startswith(
        "ok  answers-within-budget: expected fail on p99_within_budget, got fail on p99_within_budget")
