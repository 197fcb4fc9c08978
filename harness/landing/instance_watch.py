"""Evidence for faults on instances, from the kernel, the engine and the harness's own probes.

- pause: every process of the instance is stopped (``/proc/<pid>/stat``
  state T on the local runtime, ``State.Paused`` on docker). A server that
  left the instance's process group and kept running is a pause that did
  not land.
- crash, stop: nothing of the instance runs, and its port no longer answers
  (refused, or closed by docker's port proxy).
- restart: it runs again as a new start (another pid or start time) and answers health.
- scale_out: every new instance answers its health probe.
- partition: the engine says it is off the network, and a canary from the
  run's network (through Toxiproxy, which sits on it) cannot reach it.
"""

from __future__ import annotations

import threading

from ..events import FaultDescription
from ..faults.base import parse_instance
from ..runtime.backend import HOST, InstanceState
from ..runtime.base import Runtime
from ..runtime.health import probe_once
from .canary import send_canary
from .watches import Finding, Watch

LIMIT_S = 5.0  # how long an instance may take to show a fault that acts at once


def _target(on: str) -> tuple[str, int]:
    parsed = parse_instance(on)
    if parsed is None:
        raise ValueError(f"{on!r} is not a service instance ('name' or 'name[i]')")
    return parsed


class InstanceWatch(Watch):
    def __init__(self, description: FaultDescription, runtime: Runtime) -> None:
        super().__init__(description, runtime)
        self.service, self.index = _target(description.on)
        self.before_state: InstanceState | None = None
        self.last: InstanceState | None = None

    def prepare(self) -> None:
        self.before_state = self.runtime.instance_state(self.service, self.index)

    def state(self) -> InstanceState:
        self.last = self.runtime.instance_state(self.service, self.index)
        return self.last

    def _port_address(self) -> str:
        return f"{HOST}:{self.runtime.url(self.service, self.index).rsplit(':', 1)[1]}"

    def port_answers(self) -> tuple[bool, str]:
        """Whether the instance's port (as the harness reaches it) still answers, in words."""
        address = self._port_address()
        result = send_canary(address, self.protocol(), stall_s=0.3)
        return result.outcome in ("reply", "stalled"), f"port {address.rsplit(':', 1)[1]}: {result.outcome}"

    def protocol(self) -> str:
        topo = self.runtime.topology
        served = [l.protocol for l in topo.links if l.server == self.service]
        return served[0] if served else ("tcp" if topo.service(self.service).health == "tcp" else "http")

    def figures(self) -> dict[str, object]:
        return {"state_before": self.before_state.to_json() if self.before_state else None,
                "state": self.last.to_json() if self.last else None}


class PauseWatch(InstanceWatch):
    """Every process stopped, and the port silent: a server that left the instance's
    process tree would keep answering, and the pause would be a no-op."""

    def observe(self, stop: threading.Event) -> Finding:
        heard = [""]

        def look() -> bool:
            s = self.state()
            if not (s.alive > 0 and s.stopped == s.alive):
                return False
            result = send_canary(self._port_address(), self.protocol(), stall_s=0.3)
            heard[0] = f"port {self._port_address().rsplit(':', 1)[1]}: {result.outcome}"
            return result.outcome == "stalled"

        if self.poll(stop, look, limit_s=LIMIT_S):
            s = self.last
            return Finding(True, None, [f"{self.description.on}: {s.stopped} of {s.alive} processes stopped ({s.source}); "
                                        f"{heard[0]} (accepted, never answered)"], self.figures())
        s = self.last
        said = f"{s.stopped} of {s.alive} processes stopped ({s.source})" if s else "its state could not be read"
        return Finding(False, f"{self.description.on} was not stopped: {said}"
                              f"{f'; {heard[0]}, so something still answers' if heard[0] else ''}", [], self.figures())


class EndWatch(InstanceWatch):
    """crash and stop: the instance ended and its port went quiet."""

    def observe(self, stop: threading.Event) -> Finding:
        heard = [""]

        def look() -> bool:
            if self.state().alive:
                return False
            answers, heard[0] = self.port_answers()
            return not answers

        if self.poll(stop, look, limit_s=LIMIT_S):
            return Finding(True, None, [f"{self.description.on} ended ({self.last.source}); {heard[0]}"], self.figures())
        s = self.last
        why = f"{s.alive} process(es) still run ({s.source})" if s and s.alive else f"its port still answers ({heard[0]})"
        return Finding(False, f"{self.description.on} did not end: {why}", [], self.figures())


class RestartWatch(InstanceWatch):
    def observe(self, stop: threading.Event) -> Finding:
        old = self.before_state.ident if self.before_state else ""
        health = self.runtime.topology.service(self.service).health
        port = int(self.runtime.url(self.service, self.index).rsplit(":", 1)[1])

        def look() -> bool:
            s = self.state()
            return bool(s.alive and s.ident and s.ident != old and probe_once(HOST, port, health)[0])

        if self.poll(stop, look, limit_s=LIMIT_S):
            return Finding(True, None, [f"{self.description.on} runs as a new start ({old} -> {self.last.ident}) "
                                        "and answers health"], self.figures())
        return Finding(False, f"{self.description.on} did not come back as a new start", [], self.figures())


class ScaleOutWatch(Watch):
    def __init__(self, description: FaultDescription, runtime: Runtime) -> None:
        super().__init__(description, runtime)
        self.service, _ = _target(description.on)
        self.count = int(description.params.get("count", 1))
        self.count_before = 0

    def prepare(self) -> None:
        self.count_before = len(self.runtime.addresses()[self.service])

    def observe(self, stop: threading.Event) -> Finding:
        health = self.runtime.topology.service(self.service).health
        answered: dict[int, str] = {}

        def look() -> bool:
            now = len(self.runtime.addresses()[self.service])
            for i in range(self.count_before, min(now, self.count_before + self.count)):
                if i not in answered:
                    port = int(self.runtime.url(self.service, i).rsplit(":", 1)[1])
                    ok, said = probe_once(HOST, port, health)
                    if ok:
                        answered[i] = said
            return len(answered) >= self.count

        figures = {"instances_before": self.count_before, "new_answered": sorted(answered)}
        if self.poll(stop, look, limit_s=LIMIT_S):
            figures["new_answered"] = sorted(answered)
            return Finding(True, None, [f"{self.service}[{i}] answers health ({said})" for i, said in sorted(answered.items())],
                           figures)
        return Finding(False, f"{self.count - len(answered)} of {self.count} new {self.service} instance(s) never "
                              "answered health", [], figures)


class PartitionWatch(InstanceWatch):
    def observe(self, stop: threading.Event) -> Finding:
        proxies = [p for l in self.runtime.topology.links if l.server == self.service
                   for p in self.runtime.link_proxies(l.name) if p.instance == self.index]
        heard = [""]

        def look() -> bool:
            if self.state().network:  # still has an address on the run's network
                return False
            if not proxies:
                answers, heard[0] = self.port_answers()
                heard[0] = f"from the host, {heard[0]} (no proxy of the run's network dials it)"
                return not answers
            result = send_canary(self.runtime.toxiproxy.canary_address(proxies[0].listen), self.protocol(), stall_s=0.5)
            heard[0] = f"a canary from the run's network through {proxies[0].proxy}: {result.outcome}"
            return result.outcome not in ("reply",)

        if self.poll(stop, look, limit_s=LIMIT_S):
            return Finding(True, None, [f"{self.description.on} is off the network ({self.last.source}); {heard[0]}"],
                           self.figures())
        return Finding(False, f"{self.description.on} is still reachable: {heard[0] or 'the engine gives it an address'}",
                       [], self.figures())
