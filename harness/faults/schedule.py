"""Faults on a schedule: each window applies a fault at t seconds for d seconds.

The schedule runs in a thread; every window is reverted in a ``finally``,
and leaving the ``Schedule`` block (normally, on error or on Ctrl-C) stops
the thread and waits for its reverts.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from ..runtime.base import Runtime
from .base import EffectListener, Fault, FaultListener, injected


@dataclass(frozen=True)
class FaultWindow:
    fault: Fault
    at_s: float
    duration_s: float


class Schedule:
    """Runs fault windows against a runtime, timed from ``start()``."""

    def __init__(self, windows: list[FaultWindow], runtime: Runtime, *, listener: FaultListener | None = None,
                 on_effect: EffectListener | None = None) -> None:
        self.windows = sorted(windows, key=lambda w: w.at_s)
        self.runtime, self.listener, self.on_effect = runtime, listener, on_effect
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-schedule", daemon=True)
        self.errors: list[BaseException] = []
        self._t0 = 0.0

    def start(self) -> "Schedule":
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def _wait_until(self, t_s: float) -> bool:
        """Paces to t_s after start; False when stopped early."""
        return not self._stop.wait(max(0.0, self._t0 + t_s - time.monotonic()))

    def _run(self) -> None:
        for w in self.windows:
            if not self._wait_until(w.at_s):
                return
            try:
                with injected(w.fault, self.runtime, listener=self.listener, on_effect=self.on_effect):
                    self._wait_until(w.at_s + w.duration_s)
            except BaseException as exc:  # reported by join(); the revert already ran
                self.errors.append(exc)
                return

    def join(self, *, timeout_s: float) -> None:
        self._thread.join(timeout_s)
        if self.errors:
            raise self.errors[0]

    def __enter__(self) -> "Schedule":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(60)
