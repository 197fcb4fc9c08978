"""The membership chart: who was in per view (registry, balancer, clients), from frames built by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from harness.report.membership import clients_bucket_s, has_membership, intervals, membership_chart, views
from harness.report.runfolder import Experiment
from harness.report.section import charts
from harness.timeline import OBSERVED_COLUMNS, REQUEST_COLUMNS, Frames

SPAN = (0.0, 10.0)
TITLE = "Membership: registry, balancer and clients"


def frames(observed: list[dict[str, Any]], requests: list[dict[str, Any]] | None = None) -> Frames:
    """A 10 s experiment with a fault from 3 s to 6 s and the given events and requests."""
    req = pd.DataFrame(requests or [{"t_s": 0.0, "latency_ms": 5.0, "ok": True}])
    req["end_s"] = req["t_s"] + req["latency_ms"] / 1000
    for col in REQUEST_COLUMNS:
        if col not in req:
            req[col] = None
    return Frames(
        meta={"name": "discovery-crash-correct", "target": "discovery", "variant": "correct"},
        t0_ns=0,
        requests=req,
        phases=pd.DataFrame([("baseline", 0.0, 3.0), ("fault", 3.0, 6.0), ("recovery", 6.0, 10.0)],
                            columns=["phase", "start_s", "end_s"]),
        faults=pd.DataFrame([("crash", "web[0]", {}, 3.0, 6.0, None)],
                            columns=["fault", "on", "params", "start_s", "end_s", "error"]),
        lifecycle=pd.DataFrame(columns=["t_s", "service", "instance", "action", "detail"]),
        probes=pd.DataFrame(columns=["t_s", "probe", "value"]),
        observed=pd.DataFrame(observed) if observed else pd.DataFrame(columns=OBSERVED_COLUMNS),
        complete=True,
    )


def seen(t: float, source: str, event: str, member: str) -> dict[str, Any]:
    return {"t_s": t, "source": source, "event": event, "member": member}


def served(t: float, instance: str | None, ok: bool = True) -> dict[str, Any]:
    return {"t_s": t, "latency_ms": 10.0, "ok": ok, "instance": instance}


DISCOVERY = [
    seen(0.1, "registry", "joined", "web-0"), seen(0.1, "registry", "joined", "web-1"),
    seen(0.2, "balancer", "joined", "web-0"), seen(0.2, "balancer", "joined", "web-1"),
    seen(4.0, "registry", "left", "web-0"), seen(4.1, "balancer", "left", "web-0"),
    seen(7.0, "registry", "joined", "web-0"), seen(7.2, "balancer", "joined", "web-0"),
]


def test_joined_and_left_replay_into_intervals_and_a_rejoin_opens_a_new_one() -> None:
    lanes = intervals(frames(DISCOVERY), SPAN)
    assert list(lanes) == ["web-0", "web-1"]
    assert lanes["web-0"] == {"registry": [(0.1, 4.0), (7.0, 10.0)], "balancer": [(0.2, 4.1), (7.2, 10.0)]}
    assert lanes["web-1"] == {"registry": [(0.1, 10.0)], "balancer": [(0.2, 10.0)]}


def test_views_in_order_of_first_appearance_and_stray_events_ignored() -> None:
    rows = [seen(0.5, "balancer", "joined", "web-1"), seen(1.0, "registry", "left", "web-1"),
            seen(2.0, "registry", "joined", "web-1"), seen(3.0, "registry", "joined", "web-1"),
            {"t_s": 1.0, "source": "dep", "event": "arrival"}]
    f = frames(rows)
    assert views(f) == ["balancer", "registry"]  # "dep" has no joined/left: not a view
    # a left before any joined is ignored; a second joined keeps the interval going
    assert intervals(f, SPAN) == {"web-1": {"balancer": [(0.5, 10.0)], "registry": [(2.0, 10.0)]}}


def test_members_sort_naturally() -> None:
    rows = [seen(0.1, "registry", "joined", m) for m in ("web-10", "web-2", "web-1")]
    assert list(intervals(frames(rows), SPAN)) == ["web-1", "web-2", "web-10"]


def test_clients_view_from_ok_requests_per_bucket() -> None:
    size = clients_bucket_s(SPAN)
    assert size == 0.25
    requests = [served(t, "web-0") for t in (1.0, 1.1, 1.3, 1.6, 3.05)]  # buckets 4, 5, 6 and 12
    requests += [served(2.0, "web-0", ok=False), served(2.0, None)]  # a failure, or no name: not seen
    requests += [served(5.0, "web-2")]  # known to the clients only
    f = frames(DISCOVERY, requests)
    assert views(f) == ["registry", "balancer", "clients"]
    lanes = intervals(f, SPAN)
    assert lanes["web-0"]["clients"] == [(1.0, 1.75), (3.0, 3.25)]
    assert lanes["web-1"]["clients"] == []
    assert lanes["web-2"] == {"registry": [], "balancer": [], "clients": [(5.0, 5.25)]}


def test_no_instance_column_means_no_clients_lane() -> None:
    f = frames(DISCOVERY, [{"t_s": 1.0, "latency_ms": 10.0, "ok": True}])
    assert "instance" not in f.requests
    assert views(f) == ["registry", "balancer"]
    assert all("clients" not in per_view for per_view in intervals(f, SPAN).values())
    assert "clients" not in membership_chart(f, SPAN)


def experiment(f: Frames) -> Experiment:
    return Experiment(ident="discovery-crash-correct", folder=Path("discovery-crash-correct"), frames=f)


def test_section_draws_the_chart_with_one_label_per_member() -> None:
    f = frames(DISCOVERY + [seen(5.0, "registry", "joined", "web-2")],
               [served(t / 10, f"web-{t % 2}") for t in range(100)])
    assert has_membership(f)
    html = charts(experiment(f))
    assert TITLE in html
    chart = html[html.index(f"aria-label='{TITLE}'"):]
    chart = chart[: chart.index("</svg>")]
    for member in ("web-0", "web-1", "web-2"):
        assert chart.count(f">{member}</text>") == 1
    assert "crash web[0]" in chart and ">fault</text>" in chart  # the fault window and the phase markers


def test_frames_without_membership_events_have_no_membership_chart() -> None:
    f = frames([{"t_s": 1.0, "source": "dep", "event": "arrival"}], [served(1.0, "web-0")])
    assert not has_membership(f)
    assert "Membership" not in charts(experiment(f))
    assert "Membership" not in charts(experiment(frames([])))
