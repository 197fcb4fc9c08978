"""Health probes of an instance, and the wait for one to pass.

An HTTP health path passes with a status below 400. A "tcp" check passes
when a connection is accepted; behind Docker's userland proxy (a port
published on 127.0.0.1) that says nothing, since the proxy accepts even
while nothing listens in the container and then closes at once: there a
connection held open (or a server speaking first) is the sign of a live
listener.
"""

from __future__ import annotations

import socket
import time
from typing import Callable

import httpx

from ..errors import ReadinessTimeout, ServiceError
from ..wait import NotYet, tail_of, wait_until

Probe = Callable[[str, int, str], tuple[bool, str]]


def probe_once(host: str, port: int, health: str) -> tuple[bool, str]:
    """One health probe: (ready, what was seen)."""
    if health == "tcp":
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True, "tcp connect ok"
        except OSError as exc:
            return False, f"tcp connect: {exc}"
    try:
        r = httpx.get(f"http://{host}:{port}{health}", timeout=1.0, trust_env=False)
    except httpx.HTTPError as exc:
        return False, f"GET {health}: {type(exc).__name__}: {exc}"
    return r.status_code < 400, f"GET {health}: {r.status_code} {r.text[:200]!r}"


def probe_published(host: str, port: int, health: str, *, settle_s: float = 0.15) -> tuple[bool, str]:
    """One health probe through a port Docker publishes: a "tcp" check waits briefly for an immediate close."""
    if health != "tcp":
        return probe_once(host, port, health)
    try:
        with socket.create_connection((host, port), timeout=1.0) as s:
            s.settimeout(settle_s)
            try:
                data = s.recv(1)
            except TimeoutError:
                return True, "tcp connect ok, connection held open"
            if data:
                return True, "tcp connect ok, server spoke first"
            return False, "tcp connect closed at once: nothing listens behind the published port"
    except OSError as exc:
        return False, f"tcp connect: {exc}"


def wait_healthy(*, service: str, host: str, port: int, health: str, timeout_s: float,
                 exited: Callable[[], int | None], log_tail: Callable[[], str],
                 probe: Probe = probe_once, hint: str = "", interval_s: float = 0.05) -> float:
    """Polls until healthy; returns seconds waited. A service that exits first,
    or never gets healthy, is an error naming it, its address, the last health
    answer and its log's tail."""
    start = time.monotonic()
    seen = {"last": "no probe yet"}

    def healthy() -> bool:
        code = exited()
        if code is not None:
            raise ServiceError(f"service {service} exited with code {code} before it was healthy on {host}:{port} "
                               f"(last health: {seen['last']}). Log tail:\n{tail_of(log_tail)}")
        ok, seen["last"] = probe(host, port, health)
        if not ok:
            raise NotYet(seen["last"])
        return True

    wait_until(healthy, what=f"service {service} not healthy on {host}:{port}", timeout_s=timeout_s,
               interval_s=interval_s, log_tail=log_tail, error=ReadinessTimeout,
               hint=hint or "Check its command and health path, or raise ready_timeout_s in the topology.")
    return time.monotonic() - start
