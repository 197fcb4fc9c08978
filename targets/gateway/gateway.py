"""The API gateway: one entry point that authenticates, aggregates and caches.

Run as ``python targets/gateway/gateway.py`` (env: README.md). Routes:
``/api/profile`` composes every backend; ``/api/<backend>`` one of them.
Every /api route checks the Bearer token first: a refused token is answered
401 here and nothing is sent to any backend. The broken VARIANTs exist so
the harness's checks can be shown to fail: ``auth-bypass`` forwards one
route unchecked, ``sequential-no-timeout`` calls backends one after the
other without timeouts, ``no-cache`` caches nothing, ``never-readmits``
stops calling a backend for good after one failure, ``shared-cache`` keys
its cache by route (one user's data served to another) and
``trusts-client-identity`` lets a client's X-User-Id override the token.
"""

from __future__ import annotations

import re
import sys
import threading
import time
import uuid
from typing import Any

from targetkit.program import run
from targetkit.serving import serve

from aggregate import Aggregator
from config import Backend, GatewayConfig, load_gateway
from fanout import CallHeaders
from handler import Handler
from tokens import SUBJECT, Policy, TokenError, bearer, unverified_subject, verify

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
CLIENT_IDENTITY_HEADER = "X-User-Id"  # read by the trusts-client-identity variant only; ignored otherwise


class Gateway:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.policy = Policy(config.jwt_key, config.jwt_issuer, config.jwt_audience, config.jwt_leeway_s)
        self.aggregator = Aggregator(config)
        self.routes: dict[str, tuple[Backend, ...]] = {"/api/profile": config.backends}
        self.routes.update({f"/api/{b.name}": (b,) for b in config.backends})
        self._lock = threading.Lock()
        self.counts = {"requests": 0, "unauthorized": 0, "answered_2xx": 0, "answered_5xx": 0}
        self.refusals: dict[str, int] = {}

    def subject(self, route: str, authorization: list[str], claimed: str | None = None) -> str:
        """Who asks, from a verified token; TokenError otherwise. The auth-bypass
        variant reads its unchecked route's token without verifying it; the
        trusts-client-identity variant, once the token is good, believes the
        identity the client claims in X-User-Id (a header meant for a proxy)."""
        if route == self.config.bypass_route:
            return unverified_subject(authorization[0].partition(" ")[2].strip()) if authorization else "anonymous"
        subject = str(verify(bearer(authorization), self.policy, now_s=time.time())["sub"])
        if self.config.variant == "trusts-client-identity" and claimed and SUBJECT.match(claimed):
            return claimed
        return subject

    def answer(self, route: str, authorization: list[str], request_id: str,
               claimed: str | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
        """The route's answer for the token's subject; `claimed` is the client's
        X-User-Id, which only the trusts-client-identity variant believes."""
        self._count("requests")
        try:
            subject = self.subject(route, authorization, claimed)
        except TokenError as exc:
            return self._refuse(exc, request_id)
        headers = CallHeaders(subject, request_id, self.config.gateway_key.decode())
        cache_key = route if self.config.variant == "shared-cache" else None  # the mistake: no Vary on who asks
        status, body = self.aggregator.compose(self.routes[route], headers, cache_key)
        self._count("answered_2xx" if status < 300 else "answered_5xx")
        return status, body, {}

    def _refuse(self, exc: TokenError, request_id: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        """RFC 6750: no token gets a bare challenge; a bad one error="invalid_token"."""
        self._count("unauthorized")
        with self._lock:
            self.refusals[exc.reason] = self.refusals.get(exc.reason, 0) + 1
        challenge = 'Bearer realm="gateway"'
        if exc.reason != "missing":
            challenge += f', error="invalid_token", error_description="{exc.reason}"'
        body = {"error": "missing token" if exc.reason == "missing" else "invalid token",
                "detail": str(exc), "service": self.config.name, "request_id": request_id}
        return 401, body, {"WWW-Authenticate": challenge}

    def state(self) -> dict[str, Any]:
        with self._lock:
            counts, refusals = dict(self.counts), dict(self.refusals)
        served = self.aggregator.served.snapshot()
        return {"service": self.config.name, "variant": self.config.variant, **counts,
                "refusals": refusals, "cache": self.aggregator.cache.snapshot(), "served": served,
                "stale_served": sum(s["stale"] for s in served.values()),
                "missing_served": sum(s["missing"] for s in served.values()),
                "ejected": sorted(self.aggregator.ejected)}

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1


class GatewayHandler(Handler):
    gateway: Gateway  # set by start()

    def do_GET(self) -> None:
        if not self.drain_body():
            return
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self.send_json(200, {"ok": True, "service": self.service_name})
        elif path == "/admin/state":
            self.send_json(200, self.gateway.state())
        elif path in self.gateway.routes:
            self._api(path)
        else:
            self.not_found(path)

    def _api(self, route: str) -> None:
        given = self.headers.get("X-Request-Id", "")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        try:
            status, body, headers = self.gateway.answer(route, self.headers.get_all("Authorization") or [], request_id,
                                                        self.headers.get(CLIENT_IDENTITY_HEADER))
        except Exception as exc:  # a bug must still answer JSON
            self.log_error("answer failed: %r", exc)
            status, headers = 500, {}
            body = {"error": "internal", "service": self.service_name, "detail": f"{type(exc).__name__}"}
        self.send_json(status, body, {**headers, "X-Request-Id": request_id})

    def do_POST(self) -> None:
        if self.drain_body():
            self.send_json(405, {"error": "method not allowed", "service": self.service_name}, {"Allow": "GET"})

    do_PUT = do_DELETE = do_PATCH = do_POST


def start(config: GatewayConfig) -> int:
    GatewayHandler.service_name = config.name
    GatewayHandler.gateway = Gateway(config)
    parts = ", ".join(f"{b.name}{'?' if b.optional else ''} {b.timeout_ms} ms ttl {b.ttl_s:g} s"
                      for b in config.backends)
    return serve(GatewayHandler, config.port, f"gateway [{config.variant}] -> {parts}", says_stopped=False)


if __name__ == "__main__":
    sys.exit(run("gateway", load_gateway, start))
