"""The detection matrix at the top of the run page: rows target x fault, columns
variants (correct first), each cell its experiment's verdicts against what was
expected, with the clause that caught a broken variant and whether the fault landed."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import pytest

from harness.checks.verdict import Verdict, judged, unknown
from harness.events import ExperimentStarted, FaultDescription, FaultEffect, FaultEvent
from harness.judgement import Judgement, append_rows
from harness.report import render_run
from harness.report.matrix import judge_line
from harness.timeline import Recorder

S = 1_000_000_000
T0 = 1_700_000_000 * S
LATENCY = FaultDescription("latency", "b->c", {"latency_ms": 300})
PAUSE = FaultDescription("pause", "c", {})
BUDGET = "answers-within-budget"


def experiment(run: Path, name: str, fault: FaultDescription, variant: str, rows: list[tuple[Verdict, str, str | None]],
               *, at_s: int, landed: tuple[bool | None, str | None, float | None] | None = None) -> None:
    """One experiment folder: its first event, a fault window (with the harness's
    fault_effect event when `landed` is given), its end, and its verdict rows."""
    folder, t0 = run / "experiments" / name, T0 + at_s * S
    with Recorder(folder) as rec:
        rec.write(ExperimentStarted(name=name, target="chained", variant=variant, broken=variant != "correct",
                                    runtime="local", fault=fault, t_ns=t0))
        rec.write(FaultEvent(fault, "start", t_ns=t0 + S))
        if landed is not None:
            ok, reason, seen = landed
            rec.write(FaultEffect(fault, ok, reason, ("canary through b->c",),
                                  {"seen_after_ms": seen} if seen is not None else {}, t_ns=t0 + 2 * S))
        rec.write(FaultEvent(fault, "end", t_ns=t0 + 3 * S))
        rec.record("end", t_ns=t0 + 4 * S)
    append_rows(folder, [Judgement(name, "chained", variant, variant != "correct", fault, v, expected, clause)  # type: ignore[arg-type]
                         for v, expected, clause in rows])


def passing(check: str) -> Verdict:
    return judged(check, {"held": True}, f"{check} held")


@pytest.fixture
def page(tmp_path: Path) -> str:
    run = tmp_path / "reports" / "run-m"
    # the broken variant runs first: the correct column must still come first
    experiment(run, "lat-no-timeouts", LATENCY, "no-timeouts",
               [(judged(BUDGET, {"p99_within_budget": False, "no_hangs": True}, "p99 9000 ms"), "fail", "p99_within_budget")],
               at_s=0, landed=(True, None, 90.0))
    experiment(run, "lat-correct", LATENCY, "correct", [(passing(BUDGET), "pass", None), (passing("recovers"), "pass", None)],
               at_s=10, landed=(True, None, 85.0))
    experiment(run, "lat-sticky", LATENCY, "sticky-failure",
               [(judged("recovers", {"recovered_in_time": True, "errors_stop": False}, "errors went on"), "fail",
                 "recovered_in_time")], at_s=20)
    experiment(run, "pause-correct", PAUSE, "correct",
               [(unknown(BUDGET, "fault not observed: c was never stopped"), "pass", None)],
               at_s=30, landed=(False, "c was never stopped", None))
    experiment(run, "pause-no-timeouts", PAUSE, "no-timeouts", [(passing(BUDGET), "fail", "p99_within_budget")],
               at_s=40, landed=(None, "no way to see inside c", None))
    old = Verdict("recovers", "fail", "judged before clauses", {"took_s": 9.0})  # no clauses, no expected clause
    experiment(run, "pause-sticky", PAUSE, "sticky-failure", [(old, "fail", None)], at_s=50)
    return render_run(run).read_text(encoding="utf-8")


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def matrix(page: str) -> str:
    found = re.search(r"<section class='matrix' id='matrix'>.*?</section>", page, re.S)
    assert found, "no matrix on the page"
    return found.group(0)


def cells(page: str) -> dict[str, list[tuple[str, str, list[str]]]]:
    """Row label -> its cells as (tone, text, links), in column order."""
    out = {}
    for row in re.findall(r"<tr>(.*?)</tr>", matrix(page), re.S):
        label = re.search(r"<th class='fault' scope='row'>(.*?)</th>", row, re.S)
        assert label
        found = re.findall(r"<td class='cell (\w+)'[^>]*>(.*?)</td>", row, re.S)
        out[_text(label.group(1))] = [(tone, _text(inner), re.findall(r"href='([^']+)'", inner)) for tone, inner in found]
    return out


def test_the_page_opens_with_the_matrix(page: str) -> None:
    assert page.index("</header>") < page.index("<section class='matrix'") < page.index("<details class='toc'")
    assert page.index("<section class='matrix'") < page.index("<section class='exp")


def test_columns_are_correct_first_then_the_broken_variants_marked(page: str) -> None:
    head = re.search(r"<tr class='head'>(.*?)</tr>", matrix(page), re.S)
    assert head
    columns = [_text(c) for c in re.findall(r"<th class='variant'>(.*?)</th>", head.group(1), re.S)]
    assert columns == ["correct", "BROKEN no-timeouts", "BROKEN sticky-failure"]
    assert "<span class='tag broken'>BROKEN</span> no-timeouts" in head.group(1)


def test_rows_are_target_and_fault_with_its_parameters(page: str) -> None:
    labels = list(cells(page))
    assert labels[0].startswith("chained · latency on b->c (latency_ms=300)")
    assert labels[1].startswith("chained · pause on c")


def test_cells_are_coloured_by_whether_every_verdict_was_as_expected(page: str) -> None:
    latency, pause = cells(page).values()
    assert [tone for tone, _, _ in latency] == ["good", "good", "bad"]
    assert [tone for tone, _, _ in pause] == ["unknown", "bad", "good"]


def test_a_broken_variant_names_the_clause_that_caught_it(page: str) -> None:
    latency, pause = cells(page).values()
    assert "✔ caught by answers-within-budget · p99_within_budget" in latency[1][1]
    assert "✘ recovers failed on errors_stop, not recovered_in_time" in latency[2][1]  # failed for another reason
    assert "✘ answers-within-budget passed: not caught" in pause[1][1]
    assert "✔ caught by recovers" in pause[2][1]  # an old row: the check's name stands in for its clause
    assert "<div class='ln good catch'" in matrix(page)


def test_a_correct_cell_names_its_checks(page: str) -> None:
    correct = next(iter(cells(page).values()))[0][1]
    assert "✔ answers-within-budget" in correct and "✔ recovers" in correct and "caught" not in correct


def test_unknown_is_grey_and_says_the_fault_was_not_observed(page: str) -> None:
    tone, text, _ = list(cells(page).values())[1][0]
    assert tone == "unknown" and "? answers-within-budget: fault not observed" in text
    assert "fault not observed: c was never stopped" in text


def test_whether_the_fault_landed_per_cell_and_per_row(page: str) -> None:
    (lat_label, latency), (pause_label, pause) = cells(page).items()
    assert "fault landed +85 ms" in latency[0][1] and "fault landed +90 ms" in latency[1][1]
    assert "fault not recorded" in latency[2][1]
    assert "fault landed 2 of 3 (1 not recorded)" in lat_label
    assert "fault not verified: no way to see inside c" in pause[1][1]
    assert "fault landed 0 of 3" in pause_label and "1 not observed" in pause_label
    assert "<div class='landing bad'>" in matrix(page)


def test_cells_link_to_their_sections(page: str) -> None:
    for row in cells(page).values():
        for _, _, links in row:
            assert len(links) == 1
            assert f"id='{links[0][1:]}'" in page
    assert next(iter(cells(page).values()))[0][2] == ["#exp-lat-correct"]
    assert page.count("<a class='up' href='#matrix'>↑ matrix</a>") == 6


def test_the_summary_line_counts_what_the_run_proved(page: str) -> None:
    line = _text(re.search(r"<p class='msum'>.*?</p>", page, re.S).group(0))  # type: ignore[union-attr]
    assert line.startswith("6 experiments · 4 of 7 verdicts as expected · 1 unknown · 2 of 4 broken variants caught")
    assert "faults landed 2 of 6" in line and "1 not observed" in line and "1 not verified" in line


def test_the_section_says_whether_the_fault_landed(page: str) -> None:
    section = re.search(r"<section class='exp [a-z]+' id='exp-pause-correct'>.*?</section>", page, re.S)
    assert section and "<dt>fault landed</dt>" in section.group(0)
    assert "pause on c: not observed: c was never stopped (canary through b-&gt;c)" in section.group(0)


def test_a_variant_not_run_with_a_fault_is_an_empty_cell(tmp_path: Path) -> None:
    run = tmp_path / "reports" / "run-e"
    experiment(run, "lat-correct", LATENCY, "correct", [(passing(BUDGET), "pass", None)], at_s=0)
    experiment(run, "pause-broken", PAUSE, "no-timeouts", [(passing(BUDGET), "fail", None)], at_s=10)
    latency, pause = cells(render_run(run).read_text(encoding="utf-8")).values()
    assert [tone for tone, _, _ in latency] == ["good", "none"]
    assert [tone for tone, _, _ in pause] == ["none", "bad"]


def test_a_run_saved_before_clauses_and_landing_still_reads(tmp_path: Path) -> None:
    """No `broken`, verdicts in the timeline after its end, no fault_effect: the cell is
    still there, and the landing is said once, as not recorded, not in every row."""
    folder = tmp_path / "reports" / "run-old" / "experiments" / "pause-correct"
    with Recorder(folder) as rec:
        rec.record("experiment", t_ns=S, name="pause-correct", target="chained", variant="correct", runtime="local",
                   fault=PAUSE.to_json(), topology={}, spec={}, phases={}, load={})
        rec.record("end", t_ns=2 * S)
        rec.record("verdict", t_ns=3 * S, check="recovers", status="pass", expected="pass", figures={},
                   explanation="recovered after 0.4 s")
    page = render_run(folder.parent.parent).read_text(encoding="utf-8")
    ((label, row),) = cells(page).items()
    assert row == [("good", "✔ recovers", ["#exp-pause-correct"])]
    assert "fault landing" not in label
    assert "fault landing not recorded (no fault_effect events)" in matrix(page)


def test_unloadable_folders_and_rows_without_a_folder_are_not_lost(tmp_path: Path) -> None:
    run = tmp_path / "reports" / "run-x"
    experiment(run, "lat-correct", LATENCY, "correct", [(passing(BUDGET), "pass", None)], at_s=0)
    garbage = run / "experiments" / "garbage"
    garbage.mkdir(parents=True)
    (garbage / "timeline.jsonl").write_text("not json\n", encoding="utf-8")
    lost = Judgement("lost", "chained", "no-timeouts", True, PAUSE, passing(BUDGET), "fail")
    (run / "verdicts.json").write_text(json.dumps([lost.to_json()]), encoding="utf-8")
    page = render_run(run).read_text(encoding="utf-8")
    m = matrix(page)
    assert "Not in the matrix" in m and "href='#exp-garbage'" in m and "could not be loaded" in m
    pause = cells(page)["chained · pause on c"]
    assert pause[1][0] == "bad" and pause[1][2] == ["#orphans"] and "no experiment folder" in pause[1][1]
    assert "id='orphans'" in page


@pytest.mark.parametrize(("verdict", "expected", "clause", "tone", "text"), [
    (judged(BUDGET, {"p99": True}, "ok"), "pass", None, "good", BUDGET),
    (judged(BUDGET, {"p99": False}, "slow"), "pass", None, "bad", f"{BUDGET} failed · p99"),
    (judged(BUDGET, {"p99": False, "hung": False}, "slow"), "fail", None, "good", f"caught by {BUDGET} · p99, hung"),
    (judged(BUDGET, {"p99": False, "hung": False}, "slow"), "fail", "hung", "good", f"caught by {BUDGET} · hung"),
    (Verdict(BUDGET, "fail", "old", {}), "fail", "hung", "bad", f"{BUDGET} failed, naming no clause, not hung"),
    (unknown(BUDGET, "fault not observed: b ignores C_URL"), "unknown", None, "good", f"{BUDGET}: unknown, as expected"),
    (unknown(BUDGET, "no requests in the window"), "pass", None, "unknown", f"{BUDGET}: unknown"),
    (judged(BUDGET, {"p99": True}, "ok"), "unknown", None, "bad", f"{BUDGET}: pass, expected unknown"),
])
def test_judge_line(verdict: Verdict, expected: str, clause: str | None, tone: str, text: str) -> None:
    line = judge_line(Judgement("x", "chained", "v", True, LATENCY, verdict, expected, clause))  # type: ignore[arg-type]
    assert (line.tone, line.text) == (tone, text)
    assert line.catch == text.startswith("caught by") and verdict.explanation in line.title


def test_a_fault_a_no_op_case_must_miss_is_not_marked_bad(tmp_path: Path) -> None:
    run = tmp_path / "reports" / "run-noop"
    experiment(run, "lat-correct", LATENCY, "correct", [(passing(BUDGET), "pass", None)], at_s=0,
               landed=(True, None, 85.0))
    experiment(run, "lat-bypasses-proxy", LATENCY, "bypasses-proxy",
               [(unknown(BUDGET, "fault not observed: b ignores C_URL"), "unknown", None)], at_s=10,
               landed=(False, "b ignores C_URL", None))
    page = render_run(run).read_text(encoding="utf-8")
    line = re.search(r"<p class='msum'>.*?</p>", page, re.S).group(0)  # type: ignore[union-attr]
    assert "faults landed 1 of 2 (1 not observed, as expected)" in _text(line) and "<span class='bad'>" not in line
    [(label, row)] = cells(page).items()
    assert "(1 not observed, as expected)" in label and "<div class='landing bad'>" not in matrix(page)
    assert "<div class='landed bad'" not in matrix(page)
    # the same miss where the case expected a pass is bad
    experiment(run, "lat-fixed", LATENCY, "fixed-timeouts",
               [(unknown(BUDGET, "fault not observed: b ignores C_URL"), "pass", None)], at_s=20,
               landed=(False, "b ignores C_URL", None))
    page = render_run(run).read_text(encoding="utf-8")
    assert "2 not observed, 1 of them as expected" in _text(matrix(page)) and "<div class='landing bad'>" in matrix(page)
