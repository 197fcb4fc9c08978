"""The HTML report renders a run folder built with the real Recorder, offline and robustly."""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path
from typing import Any

import pytest

from harness.checks.verdict import Verdict
from harness.events import ExperimentStarted, FaultDescription, FaultEvent
from harness.judgement import Judgement, append_rows
from harness.report import render_index, render_run
from harness.report.axes import linear_ticks, log_ticks, wants_log
from harness.report.graph import topology_svg
from harness.timeline import Recorder

S = 1_000_000_000
TOPOLOGY = {
    "services": [{"name": "a", "instances": 1}, {"name": "b", "instances": 2}, {"name": "c", "instances": 1}],
    "links": [{"name": "a->b", "client": "a", "server": "b"}, {"name": "b->c", "client": "b", "server": "c"}],
    "entry": "a",
}
FAULT = FaultDescription(kind="latency", on="b->c", params={"latency_ms": 300, "jitter_ms": 20})


def make_experiment(
    folder: Path, t0: int, name: str, variant: str = "correct", complete: bool = True, seed: int = 1,
    broken: bool = False,
) -> None:
    """A 20 s chained experiment: baseline, a latency fault on b->c, recovery; ~400 requests;
    one verdict in its verdicts.jsonl, judged after the timeline's end."""
    rng = random.Random(seed)
    with Recorder(folder) as rec:
        rec.write(ExperimentStarted(name=name, target="chained", variant=variant, broken=broken, runtime="local",
                                    fault=FAULT, topology=TOPOLOGY, spec={"p99_ms": 200}, t_ns=t0))
        for phase, start, end in (("baseline", 0, 5), ("fault", 5, 15), ("recovery", 15, 20)):
            rec.record("phase", t_ns=t0 + start * S + 1, phase=phase, edge="start")
            if complete or phase != "recovery":
                rec.record("phase", t_ns=t0 + end * S, phase=phase, edge="end")
        rec.write(FaultEvent(FAULT, "start", t_ns=t0 + 5 * S + 2))
        rec.write(FaultEvent(FAULT, "end", t_ns=t0 + 15 * S))
        for i in range(40):
            rec.record("probe", t_ns=t0 + i * S // 2, probe="arrivals_c", value=rng.randint(8, 12))
            rec.record("probe", t_ns=t0 + i * S // 2, probe="breaker", value="open" if 10 < i < 30 else "closed")
        for i in range(100):  # arrivals at the dependency, 5/s
            rec.record("observed", t_ns=t0 + i * S // 5, source="dep", event="arrival")
        if complete:
            rec.record("end", t_ns=t0 + 20 * S + 5)
    verdict = Verdict("p99_under_limit", "pass", "from the experiment's own file", {"p99_ms": 41.5})
    append_rows(folder, [Judgement(folder.name, "chained", variant, broken, FAULT, verdict, "pass")])
    rows = []
    for i in range(400):
        t = i * 0.05
        in_fault = 5 <= t < 15
        latency = rng.uniform(300, 2500) if in_fault else rng.uniform(3, 30)
        failed = in_fault and rng.random() < 0.3
        rows.append({
            "t_ns": t0 + int(t * S), "name": "GET /", "method": "GET", "latency_ms": latency,
            "status": 503 if failed else 200, "ok": not failed,
            "error": "upstream c timed out" if failed else None, "hop": "b->c" if failed else None,
            "reason": (("circuit open" if t > 8 else "timeout") if failed else None),
        })
    (folder / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def verdict_row(experiment: str, check: str, status: str, expected: str, variant: str = "correct") -> dict[str, Any]:
    verdict = Verdict(check, status, f"{check} measured {status}",  # type: ignore[arg-type]
                      {"p99_ms": 512.25, "limit_ms": 200, "windows": [1, 2, 3]})
    return Judgement(experiment, "chained", variant, variant != "correct", FAULT, verdict, expected).to_json()  # type: ignore[arg-type]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "reports" / "run-2"
    t0 = 1_700_000_000 * S
    make_experiment(run / "experiments" / "exp-correct", t0, "chained latency correct")
    make_experiment(run / "experiments" / "exp-broken", t0 + 60 * S, "chained latency broken",
                    variant="no-timeouts", complete=False, seed=2, broken=True)
    broken = run / "experiments" / "exp-garbage"
    broken.mkdir(parents=True)
    (broken / "timeline.jsonl").write_text("this is not json\n", encoding="utf-8")
    rows = [
        verdict_row("exp-correct", "latency_p99_bounded", "pass", "pass"),
        verdict_row("exp-correct", "errors_contained", "unknown", "pass"),
        verdict_row("exp-broken", "latency_p99_bounded", "fail", "fail", "no-timeouts"),
        verdict_row("exp-broken", "errors_contained", "pass", "fail", "no-timeouts"),
    ]
    (run / "verdicts.json").write_text(json.dumps(rows), encoding="utf-8")
    return run


def section(page: str, ident: str) -> str:
    match = re.search(rf"<section class='exp [a-z]+' id='exp-{ident}'>.*?</section>", page, re.S)
    assert match, f"no section for {ident}"
    return match.group(0)


def test_run_page_has_every_section(run_dir: Path) -> None:
    page = render_run(run_dir).read_text(encoding="utf-8")
    assert "2 of 4 checks did not behave as expected" in page
    assert "<header class='summary bad'>" in page
    good = section(page, "exp-correct")
    for part in ("Request latency", "Errors and throughput", "Probe: arrivals_c", "Topology", "Verdicts", "Failed requests"):
        assert part in good
    assert good.count("<svg") == 5  # topology, latency, errors/throughput, observed, probes
    assert "% circuit open" in good and "% timeout" in good  # failures by reason
    assert "Seen by the services" in good and "dep arrival/s" in good
    assert "latency on b-&gt;c (latency_ms=300, jitter_ms=20)" in good
    assert "arrivals_c" in good and ">breaker<" not in good  # non-numeric probe left out
    assert "upstream c timed out" in good and "b-&gt;c" in good
    assert "<td class='check'>latency_p99_bounded</td>" in good
    assert "<b>p99_ms</b>: 512.2" in good and "<b>limit_ms</b>: 200" in good


def test_unexpected_and_unknown_rows_are_highlighted(run_dir: Path) -> None:
    page = render_run(run_dir).read_text(encoding="utf-8")
    rows = re.findall(r"<tr class='(ok|bad)'><td class='check'>(\w+)</td>.*?<td class='asexp'>(\w+)</td>", page)
    assert rows == [
        ("ok", "latency_p99_bounded", "yes"),
        ("bad", "errors_contained", "NO"),  # unknown never counts as expected
        ("ok", "latency_p99_bounded", "yes"),  # broken variant failing as expected
        ("bad", "errors_contained", "NO"),
    ]


def test_incomplete_and_broken_folders(run_dir: Path) -> None:
    page = render_run(run_dir).read_text(encoding="utf-8")
    assert "INCOMPLETE" in section(page, "exp-broken")
    assert "INCOMPLETE" not in section(page, "exp-correct")
    card = section(page, "exp-garbage")
    assert card.startswith("<section class='exp error'") and "could not be loaded" in card
    assert page.index("id='exp-exp-correct'") < page.index("id='exp-exp-broken'") < page.index("id='exp-exp-garbage'")


def test_page_is_self_contained(run_dir: Path) -> None:
    page = render_run(run_dir).read_text(encoding="utf-8")
    assert "<script" not in page and "@import" not in page and " src=" not in page
    assert re.findall(r"https?://[^'\"]+", page) == ["http://www.w3.org/2000/svg"] * page.count("<svg")


def test_broken_variant_is_tagged(run_dir: Path) -> None:
    page = render_run(run_dir).read_text(encoding="utf-8")
    broken = section(page, "exp-broken")
    assert "<span class='tag broken'>BROKEN variant: no-timeouts</span>" in broken
    good = section(page, "exp-correct")
    assert "<span class='tag variant'>variant: correct</span>" in good and "BROKEN" not in good
    overview = page[page.index("<nav>"):page.index("</nav>")]
    assert overview.count("BROKEN variant: no-timeouts") == 1


def test_a_killed_run_shows_each_experiments_own_verdicts(run_dir: Path) -> None:
    """Killed before close: no verdicts.json, but each experiment's verdicts.jsonl was written as judged."""
    (run_dir / "verdicts.json").unlink()
    page = render_run(run_dir).read_text(encoding="utf-8")
    assert page.count("<td class='check'>p99_under_limit</td>") == 2
    assert "latency_p99_bounded" not in page
    assert "2 of 3 experiments did not finish or could not be read" in page  # exp-broken has no end, exp-garbage no JSON


def test_malformed_rows_are_error_entries(run_dir: Path) -> None:
    rows = json.loads((run_dir / "verdicts.json").read_text())
    rows[1] = {"experiment": "exp-correct", "check": "errors_contained", "passed": True}  # no status, no expected
    rows.append(["not", "a", "row"])
    (run_dir / "verdicts.json").write_text(json.dumps(rows))
    page = render_run(run_dir).read_text(encoding="utf-8")
    good = section(page, "exp-correct")
    assert "unreadable verdict row: verdict row: missing field &#x27;expected&#x27;" in good
    assert "<td class='check'>errors_contained</td>" not in good  # no status invented from `passed`
    assert "Verdicts without an experiment folder" in page and "expected a JSON object, got list" in page
    assert "3 of 5 checks did not behave as expected" in page
    index = render_index(run_dir.parent).read_text(encoding="utf-8")
    row = re.search(r"<tr class='bad'><td><a href='run-2/index.html'>.*?</tr>", index).group(0)
    assert re.findall(r"<td class='num'>(\d+)</td>", row) == ["3", "2", "3"]


def test_a_row_saved_before_broken_was_recorded_still_reads(run_dir: Path) -> None:
    old = {"experiment": "exp-correct", "target": "chained", "variant": "correct", "fault": "latency",
           "check": "latency_p99_bounded", "passed": True, "status": "pass", "expected": "pass",
           "figures": {}, "explanation": "written by an older harness"}
    (run_dir / "verdicts.json").write_text(json.dumps([old]))
    page = render_run(run_dir).read_text(encoding="utf-8")
    assert "written by an older harness" in page and "unreadable" not in section(page, "exp-correct")


def test_index_lists_runs_and_points_latest(run_dir: Path, tmp_path: Path) -> None:
    root = run_dir.parent
    older = root / "run-1"
    make_experiment(older / "experiments" / "only", 1_600_000_000 * S, "old run")
    render_run(run_dir)
    os.symlink("run-1", root / "latest")  # stale link, must be replaced
    page = render_index(root).read_text(encoding="utf-8")
    assert page.index("run-2/index.html") < page.index("run-1/index.html")
    assert "(page not rendered)" in page  # run-1 has no page yet
    latest = root / "latest"
    assert latest.is_symlink() and os.readlink(latest) == "run-2"
    assert (latest / "index.html").exists()
    row = re.search(r"<tr class='bad'><td><a href='run-2/index.html'>.*?</tr>", page).group(0)
    assert re.findall(r"<td class='num'>(\d+)</td>", row) == ["3", "2", "2"]
    assert not list(root.glob(".*tmp"))


def test_topology_marks_faulted_link_and_service() -> None:
    svg = topology_svg(TOPOLOGY, [("b->c", "latency")])
    assert re.search(r"stroke='#e03131' stroke-width='3.5'[^>]*><title>b-&gt;c</title>", svg)
    assert ">latency</text>" in svg and "×2 instances" in svg and "· entry" in svg
    svg = topology_svg(TOPOLOGY, [("c", "crash")])
    assert "stroke='#e03131' stroke-width='3'" in svg and ">crash</text>" in svg


def test_ticks() -> None:
    assert linear_ticks(0, 20) == [0, 5, 10, 15, 20]
    assert log_ticks(1, 1000) == [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
    assert wants_log([3, 2500]) and not wants_log([3, 250])


def test_latency_axis_goes_log_when_values_span_decades(run_dir: Path) -> None:
    page = render_run(run_dir).read_text(encoding="utf-8")
    assert "latency ms (log)" in section(page, "exp-correct")


def test_unfinished_run_is_red_even_when_checks_agree(tmp_path: Path) -> None:
    run = tmp_path / "reports" / "run-killed"
    make_experiment(run / "experiments" / "only", 1_700_000_000 * S, "killed", complete=False)
    page = render_run(run).read_text(encoding="utf-8")
    assert "<header class='summary bad'>" in page
    assert "1 of 1 experiments did not finish or could not be read" in page
    index = render_index(run.parent).read_text(encoding="utf-8")
    assert "1 experiment unfinished or unreadable" in index


def test_verdicts_without_a_folder_are_still_shown(run_dir: Path) -> None:
    rows = json.loads((run_dir / "verdicts.json").read_text()) + [verdict_row("lost", "gone_check", "fail", "pass")]
    (run_dir / "verdicts.json").write_text(json.dumps(rows))
    page = render_run(run_dir).read_text(encoding="utf-8")
    assert "Verdicts without an experiment folder" in page and "gone_check" in page
    assert "3 of 5 checks did not behave as expected" in page


def test_index_of_an_empty_root(tmp_path: Path) -> None:
    page = render_index(tmp_path / "reports").read_text(encoding="utf-8")
    assert "No runs yet" in page and not (tmp_path / "reports" / "latest").exists()


def test_topology_survives_cycles_and_unknown_services() -> None:
    topo = {"services": [{"name": "a"}], "entry": "a",
            "links": [{"name": "a->b", "client": "a", "server": "b"}, {"name": "b->a", "client": "b", "server": "a"}]}
    svg = topology_svg(topo, [("b#0", "pause")])
    assert ">pause (b#0)</text>" in svg and svg.count("</path>") == 2
    assert "No topology recorded" in topology_svg({}, [])


def test_a_run_saved_before_verdicts_jsonl_shows_its_timeline_verdicts(tmp_path: Path) -> None:
    """Older harnesses appended verdict events to the timeline after its end (and no `broken`)."""
    folder = tmp_path / "reports" / "run-old" / "experiments" / "pause-correct"
    with Recorder(folder) as rec:
        rec.record("experiment", t_ns=S, name="pause-correct", target="chained", variant="correct", runtime="local",
                   fault=FAULT.to_json(), topology=TOPOLOGY, spec={}, phases={}, load={})
        rec.record("end", t_ns=2 * S)
        rec.record("verdict", t_ns=3 * S, check="recovers", status="pass", expected="pass", figures={"took_s": 0.4},
                   explanation="recovered after 0.4 s")
    page = render_run(folder.parent.parent).read_text(encoding="utf-8")
    assert "<td class='check'>recovers</td>" in page and "✔ The check behaved as expected" in page
    assert "<span class='tag variant'>variant: correct</span>" in page
