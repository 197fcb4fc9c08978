"""Watching one fault window for the evidence that the fault took effect.

``injected`` (faults/base.py) runs a fault's watch around it:

    before()    baselines, before the fault is applied (a canary's normal latency,
                the proxies' byte counters, the instance's pid)
    started()   the moment apply begins: evidence is timed from here
    applied()   a thread starts gathering evidence while the fault phase runs
    conclude()  before the revert: the thread stops, and the watch says what it
                saw as a ``FaultEffect`` (landed, not seen with the reason, or
                not verifiable)

A watch never raises into the experiment: a watch that breaks says the
fault was not observed, and why. The evidence comes from sources the
target cannot fake: Toxiproxy's counters, the harness's own canaries, the
kernel's and the engine's view of processes.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from ..events import FaultDescription, FaultEffect
from ..runtime.base import Runtime


@dataclass
class Finding:
    """What a watch concluded: landed (True/False/None), why not, in words, and figures."""

    landed: bool | None
    reason: str | None = None
    evidence: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)


class Watch:
    """One fault window's evidence; subclasses say how to look (``observe``) and may
    add what can only be read at the end (``finish``)."""

    poll_s = 0.05  # pace of a watch's polls: the evidence's time resolution

    def __init__(self, description: FaultDescription, runtime: Runtime) -> None:
        self.description, self.runtime = description, runtime
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._finding: Finding | None = None
        self._t_apply = time.monotonic()
        self.seen_at: float | None = None  # monotonic time the evidence was complete

    # -- what subclasses give ----------------------------------------------------------------

    def prepare(self) -> None:
        """Baselines before the fault (override)."""

    def observe(self, stop: threading.Event) -> Finding:
        """Gathers evidence until it is complete or `stop` is set (override)."""
        return Finding(None, f"the harness has no way to observe a {self.description.kind} fault")

    def finish(self, finding: Finding) -> Finding:
        """What can only be read when the window ends (override)."""
        return finding

    def seen(self) -> None:
        """Marks the evidence complete now (a subclass calls it when it is)."""
        if self.seen_at is None:
            self.seen_at = time.monotonic()

    def poll(self, stop: threading.Event, look: Callable[[], bool], *, limit_s: float) -> bool:
        """Calls look until it says True, stop is set or limit_s passes; whether it said True."""
        deadline = time.monotonic() + limit_s
        while True:
            if look():
                self.seen()
                return True
            if stop.is_set() or time.monotonic() >= deadline:
                return False
            stop.wait(self.poll_s)  # poll pace, not a wait for readiness

    # -- what injected calls -------------------------------------------------------------------

    def before(self) -> None:
        self._guard(self.prepare)

    def started(self) -> None:
        self._t_apply = time.monotonic()

    def applied(self) -> None:
        if self._finding is not None:  # the baseline broke: nothing to compare with
            return
        self._thread = threading.Thread(target=self._run, name=f"watch-{self.description.kind}", daemon=True)
        self._thread.start()

    def conclude(self, *, join_s: float = 5.0) -> FaultEffect:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(join_s)
        finding = self._finding
        if finding is None:
            finding = Finding(False, "the watch did not finish: " + (
                "it was still looking when the fault ended" if self._thread is not None else "the fault was never applied"))
        finding = self._safe_finish(finding)
        figures = dict(finding.figures)
        if finding.landed and self.seen_at is not None:
            figures["seen_after_ms"] = round((self.seen_at - self._t_apply) * 1000, 1)
        return FaultEffect(fault=self.description, landed=finding.landed, reason=finding.reason,
                           evidence=tuple(finding.evidence), figures=figures)

    # -- internals ------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._finding = self.observe(self._stop)
        except Exception as exc:
            self._finding = Finding(False, f"the watch broke: {_short(exc)}")

    def _safe_finish(self, finding: Finding) -> Finding:
        try:
            return self.finish(finding)
        except Exception as exc:
            return Finding(False, f"the watch broke at the end of the fault: {_short(exc)}",
                           finding.evidence, finding.figures)

    def _guard(self, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception as exc:
            self._finding = Finding(False, f"the watch broke before the fault: {_short(exc)}")
            self._stop.set()


def _short(exc: BaseException) -> str:
    return traceback.format_exception_only(type(exc), exc)[-1].strip()[:300]
