"""Calls to the backends: all at once, each bounded by its own timeout.

A call runs in a daemon thread and the request waits on it until that
backend's deadline (start + its TIMEOUT_MS), so one request costs the
slowest *bounded* call, not the sum of the calls. The socket timeout is the
same figure, so an abandoned call also ends by itself instead of draining a
slow backend forever. Daemon threads, not an executor: a bounded pool fills
with abandoned calls exactly when a backend is slow, and then healthy calls
would queue behind them.

``call_sequential`` is the broken way (variant sequential-no-timeout): one
backend after the other, each waited for as long as it takes.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from config import Backend


@dataclass(frozen=True)
class Outcome:
    """What one call gave: data, or the reason it gave none."""

    backend: str
    data: Any = None
    error: str | None = None      # "timeout", "unavailable", "bad status 503", "bad answer"
    elapsed_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class CallHeaders:
    """What the gateway tells a backend: who asks (already authenticated), which request, and the proof it is us."""

    subject: str
    request_id: str
    gateway_key: str

    def as_dict(self) -> dict[str, str]:
        return {"X-User": self.subject, "X-Request-Id": self.request_id,
                "X-Gateway-Key": self.gateway_key, "Accept": "application/json"}


def fetch(backend: Backend, headers: CallHeaders, *, timeout_s: float | None) -> Outcome:
    """One GET /data, every failure turned into an Outcome."""
    started = time.monotonic()
    url = urlsplit(backend.url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=timeout_s)
    try:
        conn.request("GET", "/data", headers=headers.as_dict())
        resp = conn.getresponse()
        raw = resp.read()
        status = resp.status
    except TimeoutError:
        return Outcome(backend.name, error="timeout", elapsed_ms=_since(started))
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(backend.name, error=f"unavailable: {type(exc).__name__}", elapsed_ms=_since(started))
    finally:
        conn.close()
    if status != 200:
        return Outcome(backend.name, error=f"bad status {status}", elapsed_ms=_since(started))
    try:
        data = json.loads(raw)["data"]
    except (ValueError, KeyError, TypeError):
        return Outcome(backend.name, error="bad answer", elapsed_ms=_since(started))
    return Outcome(backend.name, data=data, elapsed_ms=_since(started))


def call_parallel(backends: list[Backend], headers: CallHeaders) -> dict[str, Outcome]:
    """All calls at once; each waited for until its own deadline, then given up."""
    started = time.monotonic()
    pending: dict[str, Future[Outcome]] = {}
    for backend in backends:
        future: Future[Outcome] = Future()
        pending[backend.name] = future
        threading.Thread(target=_run, args=(future, backend, headers), daemon=True,
                         name=f"call-{backend.name}").start()
    outcomes = {}
    for backend in backends:
        deadline = started + backend.timeout_ms / 1000
        try:
            outcomes[backend.name] = pending[backend.name].result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            outcomes[backend.name] = Outcome(backend.name, error="timeout", elapsed_ms=_since(started))
    return outcomes


def call_sequential(backends: list[Backend], headers: CallHeaders) -> dict[str, Outcome]:
    """The broken way: one after the other, no timeout at all."""
    return {b.name: fetch(b, headers, timeout_s=None) for b in backends}


def _run(future: Future[Outcome], backend: Backend, headers: CallHeaders) -> None:
    try:
        future.set_result(fetch(backend, headers, timeout_s=backend.timeout_ms / 1000))
    except BaseException as exc:  # a bug must reach the waiting request, not vanish with the thread
        future.set_exception(exc)


def _since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
