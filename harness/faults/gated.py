"""A fault applied at a moment the target is in a given state.

Some faults mean something only at the right instant: a consumer that acks
before it works loses a message only if it is killed during the work, and a
kill between two messages proves nothing either way. ``when(fault, ...)``
polls a condition (e.g. a field of the service's /admin/state) and applies
the fault as soon as it holds. The condition only times the fault; it is
never evidence: what the fault did is still judged from the harness's own
record. When the condition does not hold within within_s the fault is
applied anyway and the miss is said on stderr: the case is judged as any
other, on what happened.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

import httpx

from ..errors import FaultError
from ..events import FaultDescription
from ..runtime.base import Runtime
from .base import Fault

Condition = Callable[[Runtime], bool]
POLL_S = 0.002  # the condition may hold for only ~25 ms (one message's work)


@dataclass(frozen=True)
class Gated:
    """`fault`, applied once `condition` holds (or at within_s); watched,
    reverted and described as the fault itself, with the condition among its parameters."""

    fault: Fault
    condition: Condition
    said: str
    within_s: float

    @property
    def on(self) -> str:
        return self.fault.on

    def apply(self, runtime: Runtime) -> None:
        deadline = time.monotonic() + self.within_s
        while not self._holds(runtime):
            if time.monotonic() >= deadline:
                print(f"harness: {self.said} did not hold within {self.within_s:g} s; applying {self.fault} anyway",
                      file=sys.stderr, flush=True)
                break
            time.sleep(POLL_S)  # poll with a deadline
        close = getattr(self.condition, "close", None)
        if close is not None:
            close()
        self.fault.apply(runtime)

    def revert(self, runtime: Runtime) -> None:
        self.fault.revert(runtime)

    def describe(self) -> FaultDescription:
        described = self.fault.describe()
        return replace(described, params={**described.params, "when": self.said})

    def _holds(self, runtime: Runtime) -> bool:
        try:
            return bool(self.condition(runtime))
        except Exception:  # a service not answering yet is a condition not met
            return False

    def __str__(self) -> str:
        return f"{self.fault} when {self.said}"


def when(fault: Fault, condition: Condition, *, said: str, within_s: float = 5.0) -> Gated:
    """`fault`, applied as soon as condition(runtime) is true, at the latest within_s after its turn."""
    if not 0 < within_s < float("inf"):
        raise FaultError(f"when: within_s must be a finite number of seconds > 0, got {within_s!r}")
    return Gated(fault, condition, said, float(within_s))


class FieldSet:
    """A condition: the JSON answer of GET `path` on `service` (instance 0) has a
    non-null, non-empty `field` (dotted for nested objects), e.g. a consumer's
    "in_process" in /admin/state. One client for all polls (a fresh one costs
    ~40 ms), closed once the wait is over and made again on the next."""

    def __init__(self, service: str, path: str, field: str, *, timeout_s: float = 0.2) -> None:
        self.service, self.path, self.field, self.timeout_s = service, path, field, timeout_s
        self._client: httpx.Client | None = None

    def __call__(self, runtime: Runtime) -> bool:
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout_s, trust_env=False)
        answer: Any = self._client.get(runtime.url(self.service) + self.path).json()
        for key in self.field.split("."):
            answer = answer.get(key) if isinstance(answer, dict) else None
        return answer not in (None, "", [], {})

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def field_set(service: str, path: str, field: str, *, timeout_s: float = 0.2) -> FieldSet:
    """A condition that holds while `field` of `service`'s JSON answer at `path` is set."""
    return FieldSet(service, path, field, timeout_s=timeout_s)
