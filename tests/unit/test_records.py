"""The typed records that cross modules read back from their JSON form, and
say which field is wrong when they cannot; the experiment writes them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.checks.verdict import Verdict
from harness.events import DrainEvent, ExperimentStarted, FaultDescription, FaultEvent, LifecycleEvent
from harness.experiment import _broken, _drain, _recording
from harness.judgement import Judgement, parse_rows
from harness.timeline import Recorder, load_frames
from harness.topology import load_topology

FAULT = FaultDescription("latency", "b->c", {"latency_ms": 300})


def through_json(record: Any) -> Any:
    return type(record).from_json(json.loads(json.dumps(record.to_json())))


@pytest.mark.parametrize("record", [
    FAULT,
    FaultEvent(FAULT, "end", "revert failed: boom", t_ns=5),
    LifecycleEvent("c", 1, "kill", "SIGKILL", t_ns=6),
    DrainEvent(settled=False, waited_s=2.5, polls=25, last_error="ConnectError: refused", t_ns=7),
    ExperimentStarted(name="x", target="chained", variant="no-timeouts", broken=True, runtime="local", fault=FAULT,
                      topology={"entry": "a"}, spec={"budget_ms": 800}, phases={"baseline_s": 1.0}, load={"users": 2}, t_ns=8),
    Judgement("x", "chained", "no-timeouts", True, FAULT, Verdict("recovers", "fail", "never", {"bound_s": 5}), "fail"),
    Judgement("y", "chained", "correct", False, None, Verdict("recovers", "unknown", "fault not observed"), "pass"),
    Judgement("z", "chained", "no-timeouts", True, FAULT,
              Verdict("recovers", "fail", "never", {"clauses": ["back"], "failed": ["back"]}), "fail", "back"),
    Judgement("n", "chained", "ignores-proxy", True, FAULT, Verdict("recovers", "unknown", "fault not observed"),
              "unknown"),
])
def test_each_record_reads_back_from_its_json_form(record: Any) -> None:
    assert through_json(record) == record


def test_a_fault_event_keeps_the_flat_shape_of_saved_timelines() -> None:
    assert FaultEvent(FAULT, "start", t_ns=1).to_json() == {
        "t_ns": 1, "kind": "fault", "fault": "latency", "on": "b->c", "params": {"latency_ms": 300},
        "edge": "start", "error": None}


@pytest.mark.parametrize("data, message", [
    ({"t_ns": 1, "kind": "lifecycle", "service": "c", "instance": "0", "action": "kill", "detail": ""},
     "lifecycle event: field 'instance' is str '0', not int"),
    ({"t_ns": 1, "kind": "fault", "fault": "crash", "on": "c", "params": {}, "edge": "middle"},
     "fault event: edge is 'middle', not start or end"),
    ({"t_ns": 1, "kind": "lifecycle", "service": "c", "instance": True, "action": "kill", "detail": ""},
     "lifecycle event: field 'instance' is True, not int"),
])
def test_a_malformed_event_names_its_field(data: dict[str, Any], message: str) -> None:
    kind = LifecycleEvent if data["kind"] == "lifecycle" else FaultEvent
    with pytest.raises(ValueError, match=message):
        kind.from_json(data)


def test_rows_that_do_not_read_back_are_kept_apart_with_their_reason() -> None:
    good = Judgement("x", "chained", "correct", False, None, Verdict("recovers", "pass", "ok"), "pass").to_json()
    rows, bad = parse_rows([good, dict(good, status="passed"), dict(good, expected=None), "junk"])
    assert len(rows) == 1 and rows[0].as_expected
    assert [(b.experiment, b.error) for b in bad] == [
        ("x", "verdict: status is 'passed', not pass, fail or unknown"),
        ("x", "verdict row: field 'expected' is NoneType None, not str"),
        (None, "verdict row: expected a JSON object, got str"),
    ]


def test_broken_comes_from_the_topologys_variant() -> None:
    chained = load_topology("chained")
    assert not _broken(chained)
    assert _broken(chained.with_variant("no-timeouts"))


class ListeningRuntime:
    def __init__(self) -> None:
        self.listeners: list[Any] = []

    def add_listener(self, listener: Any) -> None:
        self.listeners.append(listener)

    def remove_listener(self, listener: Any) -> None:
        self.listeners.remove(listener)


def test_lifecycle_calls_become_typed_events_and_frames(tmp_path: Any) -> None:
    runtime = ListeningRuntime()
    with Recorder(tmp_path) as rec:
        rec.write(ExperimentStarted(name="x", target="t", variant="correct", broken=False, runtime="local", fault=None))
        with _recording(runtime, rec):  # type: ignore[arg-type]
            runtime.listeners[0]("c", 0, "pause", "SIGSTOP")
        rec.record("end")
    assert runtime.listeners == []
    life = load_frames(tmp_path).lifecycle
    assert life[["service", "instance", "action", "detail"]].values.tolist() == [["c", 0, "pause", "SIGSTOP"]]


def test_a_drain_that_never_settles_says_why() -> None:
    def settled() -> bool:
        raise ConnectionError("consumer not answering")

    drain = _drain(settled, 0.3)
    assert drain.settled is False and drain.polls >= 2
    assert drain.last_error == "ConnectionError: consumer not answering"


def test_a_drain_that_settles_stops_polling() -> None:
    answers = iter([RuntimeError("still starting"), False, True])

    def settled() -> bool:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    drain = _drain(settled, 5.0)
    assert drain.settled is True and drain.polls == 3 and drain.waited_s < 1.0
    assert _drain(None, 0.05).settled is None


def test_the_report_says_why_a_drain_did_not_settle() -> None:
    from harness.report.section import describe_drain

    assert describe_drain(DrainEvent(settled=True, waited_s=0.1, polls=1)) == "settled after 0.1 s (1 poll)"
    assert describe_drain(DrainEvent(settled=False, waited_s=15.0, polls=70, last_error="ConnectError: refused")) == \
        "did not settle in 15.0 s (70 polls); last error: ConnectError: refused"
    assert describe_drain(DrainEvent(settled=False, waited_s=15.0, polls=70)).endswith("every poll answered not settled")
