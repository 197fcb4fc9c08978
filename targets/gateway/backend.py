"""A backend behind the gateway (users, orders or recommendations: one
program, named by SERVICE_NAME). Run as ``python targets/gateway/backend.py``.

It trusts only the gateway: a request without the shared GATEWAY_KEY in
``X-Gateway-Key`` gets 403, however it got here, since the ``X-User`` it
carries is believable only when the gateway vouches for it.

Every request to /data is an *arrival*, recorded with its ``X-Request-Id``
before any work, refused ones too. That record is the evidence of the
auth check: a request sent with a bad token whose id shows up here got
past the gateway. Stamps are taken under the lock that appends them, so
they are in order and a reader asking "since t" never misses one.
"""

from __future__ import annotations

import hashlib
import hmac
import sys
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from targetkit.program import run
from targetkit.serving import serve

from config import BackendConfig, load_backend
from handler import Handler


class Arrivals:
    def __init__(self, kept: int) -> None:
        self._lock = threading.Lock()
        self._records: deque[dict[str, Any]] = deque(maxlen=kept)
        self.count = self.rejected = 0

    def add(self, request_id: str | None, user: str | None, trusted: bool) -> int:
        with self._lock:
            self.count += 1
            self.rejected += not trusted
            self._records.append({"t_ns": time.time_ns(), "request_id": request_id, "user": user,
                                  "trusted": trusted})
            return self.count

    def since(self, since_ns: int) -> dict[str, Any]:
        with self._lock:
            return {"count": self.count, "rejected": self.rejected,
                    "arrivals": [r for r in self._records if r["t_ns"] > since_ns]}


def data_for(service: str, user: str) -> dict[str, Any]:
    """Made-up but stable data: the same user always gets the same answer."""
    seed = hashlib.sha256(f"{service}/{user}".encode()).hexdigest()
    return {"kind": service, "user": user, "items": [f"{service}-{seed[i:i + 6]}" for i in (0, 6, 12)]}


class BackendHandler(Handler):
    config: BackendConfig  # set by start()
    arrivals: Arrivals

    def do_GET(self) -> None:
        if not self.drain_body():
            return
        url = urlsplit(self.path)
        if url.path == "/health":
            self.send_json(200, {"ok": True, "service": self.service_name})
        elif url.path == "/admin/arrivals":
            since_ns = self.since_ns(url.query)
            if since_ns is not None:
                self.send_json(200, {"service": self.service_name, **self.arrivals.since(since_ns)})
        elif url.path == "/data":
            self._data()
        else:
            self.not_found(url.path)

    def _data(self) -> None:
        key = self.headers.get("X-Gateway-Key", "").encode()
        trusted = hmac.compare_digest(key, self.config.gateway_key)
        user = self.headers.get("X-User") or None
        n = self.arrivals.add(self.headers.get("X-Request-Id"), user, trusted)
        if not trusted:
            self.send_json(403, {"error": "forbidden", "service": self.service_name,
                                 "detail": "only the gateway may call this service"})
        elif user is None:
            self.send_json(400, {"error": "no X-User", "service": self.service_name})
        else:
            if self.config.work_ms:
                time.sleep(self.config.work_ms / 1000)  # the work a real backend does (a query)
            self.send_json(200, {"service": self.service_name, "n": n, "data": data_for(self.service_name, user)})


def start(config: BackendConfig) -> int:
    BackendHandler.service_name = config.name
    BackendHandler.config = config
    BackendHandler.arrivals = Arrivals(config.arrivals_kept)
    return serve(BackendHandler, config.port, f"gateway backend {config.name} (work {config.work_ms} ms)",
                 says_stopped=False)


if __name__ == "__main__":
    sys.exit(run("gateway backend", load_backend, start))
