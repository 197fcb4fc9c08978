"""A small thread-safe circuit breaker: closed -> open -> half-open -> closed.

Why our own and not a library: the maintained Python breakers do not offer
the spec this target promises. pybreaker counts *consecutive* failures (a
success resets the counter), has no time window, lets a single trial call
through when half-open, and holds its lock for the whole guarded call, which
would serialise every request of a threaded server. circuitbreaker (the
decorator package) also counts consecutive failures, and once its recovery
timeout is over lets *every* call through, without a lock. We need "N failures within a sliding window of W seconds", a configurable number
of half-open trial calls, outcomes of calls admitted in an older state
dropped rather than counted against the new one, and a transition log with
wall-clock stamps the harness can line up with its timeline. That is ~150
lines, so it lives here.

Rules, in the words of the spec (README.md has the table):

- closed: every call goes through. A failure is stamped; when
  ``threshold`` stamps lie within the last ``window_s`` it opens. Successes do
  *not* reset the count: with a reset, a dependency failing every other call
  would never open the breaker, and "N failures within W seconds" would not
  be a promise a check could verify from the client's timeline.
- open: every call is refused at once, until ``open_s`` has passed.
- half_open: ``probes`` trial calls are let through, the rest refused. All of
  them succeeding closes it (and clears the failure window); any one failing
  opens it again for ``open_s``.

Each transition bumps a generation number. A call carries the generation it
was admitted in, and its outcome is dropped if the breaker has moved on:
a slow call admitted while closed must not count as a failed half-open probe.

The broken variants of front.py break one rule each, as engineers really
do: ``forgets=False`` never drops a failure from the window (a count
since start, gobreaker's ``Interval`` 0); ``limits_trials=False`` lets every
call through when half-open and reopens only after ``threshold`` of them
failed, counted afresh (a timer that merely resets the count: no limit on
the permitted calls, Resilience4j's ``permittedNumberOfCallsInHalfOpenState``);
opening on the first failure is ``threshold=1`` from the caller.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STATE_CODES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}  # numeric, so a probe can plot it
TRANSITIONS_KEPT = 500


@dataclass(frozen=True)
class Permit:
    """The answer to "may I call?": allowed, or refused with how long to wait."""

    allowed: bool
    generation: int
    state: str
    retry_after_s: float = 0.0


class Breaker:
    """The state machine; every method takes the lock, so handler threads may share one.

    ``opens=False`` (variant no-breaker) counts failures but never opens;
    ``half_opens=False`` (variant never-closes) stays open for good once open;
    ``forgets`` and ``limits_trials`` as in the module's docstring.
    ``clock`` is monotonic seconds (for durations), ``wall_ns`` stamps the log.
    """

    def __init__(self, *, threshold: int, window_s: float, open_s: float, probes: int,
                 opens: bool = True, half_opens: bool = True, forgets: bool = True, limits_trials: bool = True,
                 clock: Callable[[], float] = time.monotonic,
                 wall_ns: Callable[[], int] = time.time_ns) -> None:
        self.threshold, self.window_s, self.open_s, self.probes = threshold, window_s, open_s, probes
        self.opens, self.half_opens, self.forgets, self.limits_trials = opens, half_opens, forgets, limits_trials
        self._clock, self._wall_ns = clock, wall_ns
        self._lock = threading.Lock()
        self._state = CLOSED
        self._generation = 0
        self._failures: deque[float] = deque()
        self._opened_at = 0.0           # monotonic time of the last opening
        self._opened_wall_ns = 0
        self._probes_started = 0
        self._probes_passed = 0
        self._transitions: deque[dict[str, Any]] = deque(maxlen=TRANSITIONS_KEPT)
        self.opened = 0

    def acquire(self) -> Permit:
        """Decide whether a call may go out now; a half-open yes is one of the trial calls."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            if self._state == CLOSED:
                return Permit(True, self._generation, CLOSED)
            if self._state == HALF_OPEN and (self._probes_started < self.probes or not self.limits_trials):
                self._probes_started += 1
                return Permit(True, self._generation, HALF_OPEN)
            return Permit(False, self._generation, self._state, self._retry_after_s(now))

    def record(self, permit: Permit, *, ok: bool) -> None:
        """Count the outcome of a call admitted by ``permit``; stale outcomes are dropped."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            if permit.generation != self._generation:
                return
            if self._state == CLOSED and not ok:
                self._failures.append(now)
                self._prune(now)
                if self.opens and len(self._failures) >= self.threshold:
                    self._open(now, f"{len(self._failures)} failures within {self.window_s:g} s")
            elif self._state == HALF_OPEN:
                if not ok:
                    self._half_open_failed(now)
                else:
                    self._probes_passed += 1
                    if self._probes_passed >= self.probes:
                        self._failures.clear()
                        self._move(CLOSED, self._wall_ns(), f"{self._probes_passed} probe(s) succeeded")

    def _half_open_failed(self, now: float) -> None:
        if self.limits_trials:
            self._open(now, "a half-open probe failed")
            return
        self._failures.append(now)  # the flood: counted as when closed
        self._prune(now)
        if len(self._failures) >= self.threshold:
            self._open(now, f"{len(self._failures)} half-open calls failed")

    def snapshot(self) -> dict[str, Any]:
        """The figures of /admin/state; also moves open -> half_open if its time has come."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            self._prune(now)
            return {"state": self._state, "state_code": STATE_CODES[self._state],
                    "failures_in_window": len(self._failures), "opened": self.opened,
                    "retry_after_s": self._retry_after_s(now),
                    "transitions": list(self._transitions)}

    def _advance(self, now: float) -> None:
        """Open -> half_open once open_s has passed (unless the variant never half-opens).

        The transition is stamped with the moment open_s ran out, not the
        moment a request happened to notice it, so the log keeps the rule's time.
        """
        if self._state == OPEN and self.half_opens and now - self._opened_at >= self.open_s:
            self._probes_started = self._probes_passed = 0
            if not self.limits_trials:
                self._failures.clear()  # counted afresh from here
            due_ns = self._opened_wall_ns + round(self.open_s * 1e9)
            self._move(HALF_OPEN, due_ns, f"open for {self.open_s:g} s")

    def _open(self, now: float, reason: str) -> None:
        self._opened_at = now
        self._opened_wall_ns = self._wall_ns()
        self.opened += 1
        self._move(OPEN, self._opened_wall_ns, reason)

    def _move(self, to: str, t_ns: int, reason: str) -> None:
        self._transitions.append({"t_ns": t_ns, "from": self._state, "to": to, "reason": reason})
        self._state = to
        self._generation += 1

    def _prune(self, now: float) -> None:
        while self.forgets and self._failures and now - self._failures[0] > self.window_s:
            self._failures.popleft()

    def _retry_after_s(self, now: float) -> float:
        if self._state != OPEN:
            return 0.0
        return round(max(0.0, self.open_s - (now - self._opened_at)), 3)
