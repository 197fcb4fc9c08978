"""The stop and scale_out faults, and combined(): the order of what they ask
of the runtime, against a fake runtime that records every call (these are
unit tests of ordering and bookkeeping; tests/service/test_faults.py runs faults
against real processes)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from harness.errors import FaultError, ServiceError
from harness.events import FaultDescription
from harness.faults import combined, injected, kinds, make_fault


class FakeRuntime:
    """The runtime methods the process faults use, recording each call.
    ``fail`` maps a method name to the exception its next call raises."""

    def __init__(self, **counts: int) -> None:
        counts = counts or {"web": 2, "registry": 1}
        self.topology = SimpleNamespace(name="fake", services={name: object() for name in counts})
        self.counts = dict(counts)
        self.down: set[tuple[str, int]] = set()
        self.calls: list[tuple[Any, ...]] = []
        self.fail: dict[str, BaseException] = {}

    def _call(self, *call: Any) -> None:
        self.calls.append(call)
        if call[0] in self.fail:
            raise self.fail.pop(call[0])

    def addresses(self) -> dict[str, list[str]]:
        self._call("addresses")
        return {s: [f"127.0.0.1:{9000 + i}" for i in range(n)] for s, n in self.counts.items()}

    def scale(self, service: str, count: int) -> None:
        self._call("scale", service, count)
        self.counts[service] = count

    def stop(self, service: str, instance: int = 0) -> None:
        self._call("stop", service, instance)
        self.down.add((service, instance))

    def kill(self, service: str, instance: int = 0) -> None:
        self._call("kill", service, instance)
        self.down.add((service, instance))

    def start(self, service: str, instance: int = 0) -> None:
        self._call("start", service, instance)
        self.down.discard((service, instance))

    def is_running(self, service: str, instance: int = 0) -> bool:
        self._call("is_running", service, instance)
        return (service, instance) not in self.down

    def changes(self) -> list[tuple[Any, ...]]:
        """The calls that change something (not the reads)."""
        return [c for c in self.calls if c[0] not in ("addresses", "is_running")]


def test_stop_and_scale_out_are_registered_kinds():
    assert {"stop", "scale_out"} <= set(kinds())


# -- stop ----------------------------------------------------------------------------------------


def test_stop_stops_the_instance_and_revert_starts_it_again():
    rt = FakeRuntime()
    fault = make_fault("stop", "web[1]")
    fault.apply(rt)
    assert rt.calls == [("stop", "web", 1)]
    fault.revert(rt)
    assert rt.calls[1:] == [("is_running", "web", 1), ("start", "web", 1)]
    assert str(fault) == "stop(web[1])" and fault.describe() == FaultDescription("stop", "web[1]", {})


def test_stop_revert_leaves_a_running_instance_alone_and_the_default_instance_is_0():
    rt = FakeRuntime()
    fault = make_fault("stop", "web")
    fault.revert(rt)   # e.g. the apply never happened
    assert rt.calls == [("is_running", "web", 0)]
    with injected(fault, rt):
        assert rt.changes() == [("stop", "web", 0)]
    assert rt.changes() == [("stop", "web", 0), ("start", "web", 0)]


def test_stop_of_an_unknown_service_is_named():
    with pytest.raises(FaultError, match=r"stop: 'cache' is not a service of target fake \(services: web, registry"):
        make_fault("stop", "cache").apply(FakeRuntime())


# -- scale_out -----------------------------------------------------------------------------------


def test_scale_out_adds_one_instance_and_revert_takes_it_away():
    rt = FakeRuntime()
    fault = make_fault("scale_out", "web")
    fault.apply(rt)
    assert rt.calls == [("addresses",), ("scale", "web", 3)]
    fault.revert(rt)
    assert rt.changes() == [("scale", "web", 3), ("scale", "web", 2)] and rt.counts["web"] == 2


def test_scale_out_by_count_and_on_an_instance_name():
    rt = FakeRuntime(web=3)
    fault = make_fault("scale_out", "web[1]", count=2)   # the index names the service only
    with injected(fault, rt):
        assert rt.counts["web"] == 5
    assert rt.changes() == [("scale", "web", 5), ("scale", "web", 3)]


def test_scale_out_with_keep_leaves_the_new_instances_running():
    rt = FakeRuntime()
    fault = make_fault("scale_out", "web", keep=True)
    with injected(fault, rt):
        pass
    assert rt.changes() == [("scale", "web", 3)] and rt.counts["web"] == 3
    assert fault.describe() == FaultDescription("scale_out", "web", {"count": 1, "keep": True})
    assert str(fault) == "scale_out(web, count=1, keep=True)"


def test_scale_out_revert_does_nothing_unless_it_grew_the_service():
    rt = FakeRuntime()
    make_fault("scale_out", "web").revert(rt)   # never applied: nothing to take back
    assert rt.calls == []
    rt.fail["scale"] = ServiceError("web[2] never got healthy")
    fault = make_fault("scale_out", "web")
    with pytest.raises(ServiceError, match="never got healthy"):
        with injected(fault, rt):
            pass
    # the failed scale added nothing here, so revert only looked
    assert rt.calls == [("addresses",), ("scale", "web", 3), ("addresses",)] and rt.counts["web"] == 2


def test_scale_out_revert_takes_back_what_a_failed_apply_half_added():
    class HalfScale(FakeRuntime):
        def scale(self, service: str, count: int) -> None:
            if count > self.counts[service] + 1:   # the first new instance starts, the second fails
                self.calls.append(("scale", service, count))
                self.counts[service] += 1
                raise ServiceError(f"{service}[{self.counts[service]}] never got healthy")
            super().scale(service, count)

    rt = HalfScale()
    with pytest.raises(ServiceError):
        with injected(make_fault("scale_out", "web", count=2), rt):
            pass
    assert rt.changes() == [("scale", "web", 4), ("scale", "web", 2)] and rt.counts["web"] == 2


def test_scale_out_counts_again_on_each_apply():
    """Experiments keep one fault object for several runs: each run's revert goes back to that run's count."""
    fault = make_fault("scale_out", "web")
    first, second = FakeRuntime(web=2), FakeRuntime(web=4)
    with injected(fault, first):
        pass
    with injected(fault, second):
        pass
    assert first.changes() == [("scale", "web", 3), ("scale", "web", 2)]
    assert second.changes() == [("scale", "web", 5), ("scale", "web", 4)]


def test_scale_out_count_below_one_is_refused_on_apply_and_reverts_nothing():
    rt = FakeRuntime()
    with pytest.raises(FaultError, match="scale_out on web: count must be at least 1, got 0"):
        with injected(make_fault("scale_out", "web", count=0), rt):
            pass
    assert rt.changes() == []


def test_make_fault_names_unknown_parameters_of_the_new_kinds():
    with pytest.raises(FaultError, match=r"fault scale_out: unknown parameter\(s\) \['replicas'\]; "
                                         r"it takes \['count', 'keep'\]"):
        make_fault("scale_out", "web", replicas=2)
    with pytest.raises(FaultError, match=r"fault stop: unknown parameter\(s\) \['grace_s'\]; it takes none"):
        make_fault("stop", "web[0]", grace_s=1)


# -- combined ------------------------------------------------------------------------------------


class Part:
    """A fault that logs its apply and revert into a shared list, and fails either on demand."""

    kind = "part"

    def __init__(self, on: str, log: list[str], *, fail_apply: BaseException | None = None,
                 fail_revert: BaseException | None = None, params: dict[str, Any] | None = None) -> None:
        self.on, self.log, self.fail_apply, self.fail_revert = on, log, fail_apply, fail_revert
        self._params = params or {}

    def apply(self, runtime: Any) -> None:
        self.log.append(f"apply {self.on}")
        if self.fail_apply:
            raise self.fail_apply

    def revert(self, runtime: Any) -> None:
        self.log.append(f"revert {self.on}")
        if self.fail_revert:
            raise self.fail_revert

    def describe(self) -> FaultDescription:
        return FaultDescription(self.kind, self.on, self._params)

    def __str__(self) -> str:
        return f"part({self.on})"


def test_combined_needs_two_faults_or_more():
    with pytest.raises(FaultError, match="combined: give two faults or more, got 1"):
        combined(make_fault("crash", "registry"))
    with pytest.raises(FaultError, match="got 0"):
        combined()


def test_combined_applies_in_order_and_reverts_in_reverse():
    log: list[str] = []
    fault = combined(Part("a", log), Part("b", log), Part("c", log))
    edges: list[tuple[str, str, str | None]] = []
    with injected(fault, FakeRuntime(), listener=lambda d, edge, err: edges.append((d.kind, edge, err))):
        assert log == ["apply a", "apply b", "apply c"]
    assert log[3:] == ["revert c", "revert b", "revert a"]
    assert edges == [("part+part+part", "start", None), ("part+part+part", "end", None)]


def test_combined_reverts_only_the_parts_applied_when_a_later_apply_fails():
    """The part that failed may have half-happened, so it is reverted too; the ones after it are not."""
    log: list[str] = []
    fault = combined(Part("a", log), Part("b", log, fail_apply=RuntimeError("b broke")), Part("c", log))
    with pytest.raises(RuntimeError, match="b broke"):
        with injected(fault, FakeRuntime()):
            pytest.fail("the block must not run when the apply failed")
    assert log == ["apply a", "apply b", "revert b", "revert a"]


def test_combined_attempts_every_revert_and_raises_the_first_failure():
    log: list[str] = []
    fault = combined(Part("a", log, fail_revert=RuntimeError("a stuck")), Part("b", log),
                     Part("c", log, fail_revert=RuntimeError("c stuck")))
    errors: list[str | None] = []
    with pytest.raises(RuntimeError, match="c stuck"):
        with injected(fault, FakeRuntime(), listener=lambda d, edge, err: errors.append(err)):
            pass
    assert log == ["apply a", "apply b", "apply c", "revert c", "revert b", "revert a"]
    assert errors == [None, "revert failed: RuntimeError: c stuck"]


def test_combined_keeps_reverting_past_an_interrupt():
    log: list[str] = []
    fault = combined(Part("a", log), Part("b", log, fail_revert=KeyboardInterrupt()))
    fault.apply(FakeRuntime())
    with pytest.raises(KeyboardInterrupt):
        fault.revert(FakeRuntime())
    assert log == ["apply a", "apply b", "revert b", "revert a"]


def test_combined_reverts_all_parts_when_reused_after_a_failed_apply():
    log: list[str] = []
    flaky = Part("b", log, fail_apply=RuntimeError("once"))
    fault = combined(Part("a", log), flaky, Part("c", log))
    with pytest.raises(RuntimeError):
        with injected(fault, FakeRuntime()):
            pass
    flaky.fail_apply = None
    log.clear()
    with injected(fault, FakeRuntime()):
        pass
    assert log == ["apply a", "apply b", "apply c", "revert c", "revert b", "revert a"]


def test_combined_real_faults_drive_the_runtime_in_order():
    """A registry outage with a new instance started during it (the discovery experiment's fault)."""
    rt = FakeRuntime()
    fault = combined(make_fault("crash", "registry"), make_fault("scale_out", "web", keep=True))
    with injected(fault, rt):
        assert rt.changes() == [("kill", "registry", 0), ("scale", "web", 3)]
    # scale_out with keep takes nothing back; the crash is reverted by a fresh start
    assert rt.changes()[2:] == [("kill", "registry", 0), ("start", "registry", 0)]
    assert rt.counts["web"] == 3


def test_combined_describe_joins_kinds_and_targets_and_keeps_each_parts_params():
    fault = combined(make_fault("crash", "registry"), make_fault("scale_out", "web", keep=True))
    assert fault.on == "registry+web"
    assert fault.describe() == FaultDescription("crash+scale_out", "registry+web",
                                                {"scale_out on web": {"count": 1, "keep": True}})
    assert str(fault) == "crash(registry) + scale_out(web, count=1, keep=True)"
    log: list[str] = []
    parts = combined(Part("x", log, params={"n": 1}), Part("y", log), Part("z", log, params={"n": 3}))
    assert parts.describe() == FaultDescription("part+part+part", "x+y+z",
                                                {"part on x": {"n": 1}, "part on z": {"n": 3}})
