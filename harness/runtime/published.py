"""Readiness of a container through its port published on 127.0.0.1.

Docker's userland proxy accepts a connection on the published port even
while nothing listens in the container, then closes it: a plain TCP connect
says nothing. So a "tcp" probe connects and waits briefly: an immediate
close means not listening; silence (or a greeting) means a live listener.
HTTP probes need no trick: the proxy's close fails the request.
"""

from __future__ import annotations

import socket
import time
from typing import Callable

from ..errors import ReadinessTimeout, ServiceError
from .readiness import probe_once


def probe_published(host: str, port: int, health: str, *, settle_s: float = 0.15) -> tuple[bool, str]:
    """One health probe through a published port: (ready, what was seen)."""
    if health != "tcp":
        return probe_once(host, port, health)
    try:
        with socket.create_connection((host, port), timeout=1.0) as s:
            s.settimeout(settle_s)
            try:
                data = s.recv(1)
            except TimeoutError:
                return True, "tcp connect ok, connection held open"
            return (True, "tcp connect ok, server spoke first") if data else (False, "tcp connect closed at once: nothing listens behind the published port")
    except OSError as exc:
        return False, f"tcp connect: {exc}"


def wait_published(
    *, service: str, host: str, port: int, health: str, timeout_s: float,
    exited: Callable[[], int | None], log_tail: Callable[[], str], interval_s: float = 0.05,
) -> float:
    """Polls until healthy; returns seconds waited. Errors name the service,
    the address, the last health response and the container log's tail."""
    start = time.monotonic()
    deadline, last = start + timeout_s, "no probe yet"
    while True:
        code = exited()
        if code is not None:
            raise ServiceError(f"service {service} exited with code {code} before it was healthy on {host}:{port} "
                               f"(last health: {last}). Log tail:\n{log_tail()}")
        ok, last = probe_published(host, port, health)
        if ok:
            return time.monotonic() - start
        if time.monotonic() >= deadline:
            raise ReadinessTimeout(
                f"service {service} not healthy on {host}:{port} after {timeout_s:.1f}s (last health: {last}). "
                "In a container a service must listen on $BIND_HOST (0.0.0.0) and $PORT; check its command, "
                f"health path and image, or raise ready_timeout_s. Log tail:\n{log_tail()}"
            )
        time.sleep(interval_s)  # poll
