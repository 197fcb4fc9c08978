"""The dependency of the circuit-breaker target: answers, and remembers every arrival.

Run as ``python targets/circuit_breaker/dep.py`` (env: README.md). It stays
simple on purpose: faults come from Toxiproxy and the runtime (latency,
resets, SIGSTOP, SIGKILL), not from switches in here.

Its arrival log is the black-box evidence of the breaker: "while the breaker
was open, nothing reached the dependency" is judged from these stamps, not
from front's own account. A stamp is taken when the request line has been
read, before any work, with the same clock as the harness's timeline
(``time.time_ns()`` on this host).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from targetkit.program import run
from targetkit.serving import JsonHandler, serve

from config import DepConfig, load_dep


class Arrivals:
    """Arrival stamps of GET /, with a total that never drops what was trimmed."""

    def __init__(self, kept: int) -> None:
        self._lock = threading.Lock()
        self._stamps: deque[int] = deque(maxlen=kept)
        self.count = 0

    def add(self, t_ns: int) -> int:
        """Record one arrival; returns its number, 1 for the first."""
        with self._lock:
            self._stamps.append(t_ns)
            self.count += 1
            return self.count

    def since(self, since_ns: int) -> dict[str, Any]:
        with self._lock:
            return {"count": self.count, "arrivals": [t for t in self._stamps if t > since_ns]}


class DepHandler(JsonHandler):
    arrivals: Arrivals  # set by start()

    def do_GET(self) -> None:
        arrived_ns = time.time_ns()
        if not self.drain_body():
            return
        url = urlsplit(self.path)
        if url.path == "/health":
            self.send_json(200, {"ok": True, "service": self.service_name})
        elif url.path == "/admin/arrivals":
            since_ns = self.since_ns(url.query)
            if since_ns is not None:
                self.send_json(200, {"service": self.service_name, **self.arrivals.since(since_ns)})
        elif url.path == "/":
            n = self.arrivals.add(arrived_ns)
            self.send_json(200, {"service": self.service_name, "n": n})
        else:
            self.not_found(url.path)


def start(config: DepConfig) -> int:
    DepHandler.service_name = config.name
    DepHandler.arrivals = Arrivals(config.arrivals_kept)
    return serve(DepHandler, config.port, f"circuit_breaker dep {config.name}")


if __name__ == "__main__":
    sys.exit(run("circuit_breaker dep", load_dep, start))
