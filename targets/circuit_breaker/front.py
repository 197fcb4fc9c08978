"""The entry service of the circuit-breaker target: calls dep through a breaker.

Run as ``python targets/circuit_breaker/front.py`` (env: README.md). The
promise under test: once the dependency fails FAILURE_THRESHOLD times within
WINDOW_S, front stops calling it and answers FAST_FAIL_STATUS at once; after
OPEN_S it lets HALF_OPEN_PROBES trial calls through and closes again when
they succeed. The broken VARIANTs exist so the harness's checks can be shown
to fail: ``no-breaker`` calls dep every time, ``never-closes`` never half-opens,
``opens-early`` opens on the first failure, ``no-window`` never forgets a
failure, ``half-open-flood`` lets every call through when half-open.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from concurrent.futures import Future
from typing import Any

import httpx

from targetkit.program import run
from targetkit.serving import JsonHandler, serve

from breaker import Breaker, Permit
from config import FrontConfig, load_front

Answer = tuple[int, dict[str, Any] | bytes, bool]  # (status, body, counts as a failure)


def get_bounded(client: httpx.Client, url: str, *, timeout_s: float) -> tuple[int, bytes]:
    """GET url and read the whole body; raise TimeoutError once timeout_s has passed.

    httpx's timeouts bound each operation (connect, each read), not the call:
    a body dripping one byte per 200 ms would never trip a 300 ms read
    timeout. So the call runs in a daemon thread that this caller waits on for
    at most timeout_s, and the thread stops reading at the same deadline so an
    abandoned call does not drain a drip forever. A daemon thread, not an
    executor: executor workers are joined at exit and would hold up SIGTERM.
    """
    deadline = time.monotonic() + timeout_s
    outcome: Future[tuple[int, bytes]] = Future()

    def call() -> None:
        try:
            with client.stream("GET", url, timeout=timeout_s) as resp:
                body = bytearray()
                for chunk in resp.iter_bytes():
                    body += chunk
                    if time.monotonic() > deadline:
                        raise TimeoutError("body not complete before the deadline")
                outcome.set_result((resp.status_code, bytes(body)))
        except BaseException as exc:  # handed to the waiting caller
            outcome.set_exception(exc)

    threading.Thread(target=call, daemon=True, name="dep-call").start()
    return outcome.result(timeout=timeout_s)


class Front:
    """Breaker, dependency calls and the counters of /admin/state."""

    def __init__(self, config: FrontConfig, client: httpx.Client) -> None:
        self.config, self.client = config, client
        variant = config.variant
        self.breaker = Breaker(threshold=1 if variant == "opens-early" else config.failure_threshold,
                               window_s=config.window_s, open_s=config.open_s, probes=config.half_open_probes,
                               opens=variant != "no-breaker", half_opens=variant != "never-closes",
                               forgets=variant != "no-window", limits_trials=variant != "half-open-flood")
        self._lock = threading.Lock()
        self.counts = {"requests": 0, "calls": 0, "call_failures": 0, "fast_failed": 0}

    def answer(self) -> tuple[int, dict[str, Any] | bytes, dict[str, str]]:
        """GET /: fast-fail if the breaker says so, else call dep and report the outcome."""
        self._count("requests")
        permit = self.breaker.acquire()
        if not permit.allowed:
            self._count("fast_failed")
            return self._fast_fail(permit)
        self._count("calls")
        failed = True
        try:
            status, body, failed = self._call()
        finally:
            # Always report back, also when _call raises: an unreported
            # half-open probe would hold its slot, and the breaker, forever.
            if failed:
                self._count("call_failures")
            self.breaker.record(permit, ok=not failed)
        return status, body, {}

    def state(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self.counts)
        return {"service": self.config.name, "hop": self.config.hop, "variant": self.config.variant,
                **self.breaker.snapshot(), **counts}

    def _fast_fail(self, permit: Permit) -> tuple[int, dict[str, Any], dict[str, str]]:
        cfg = self.config
        body = {"error": "circuit open", "hop": cfg.hop, "service": cfg.name,
                "state": permit.state, "retry_after_s": permit.retry_after_s}
        return cfg.fast_fail_status, body, {"Retry-After": str(math.ceil(permit.retry_after_s))}

    def _call(self) -> Answer:
        """One call to dep, every outcome turned into (status, body, failed)."""
        cfg = self.config
        started = time.monotonic()
        try:
            status, raw = get_bounded(self.client, f"{cfg.dep_url}/",
                                      timeout_s=cfg.call_timeout_ms / 1000)
        except (TimeoutError, httpx.TimeoutException):
            return 504, {"error": "timeout", "hop": cfg.hop, "service": cfg.name,
                         "after_ms": round((time.monotonic() - started) * 1000)}, True
        except (httpx.HTTPError, OSError) as exc:
            return 502, {"error": "unavailable", "hop": cfg.hop, "service": cfg.name,
                         "detail": f"{type(exc).__name__}: {exc}"[:200]}, True
        if 200 <= status < 300:
            return 200, raw, False
        # A 4xx means dep is up and refused *our* request: a bug on our side,
        # which must not open the breaker. Only 5xx says the dependency failed.
        return 502, {"error": "bad status", "hop": cfg.hop, "service": cfg.name,
                     "status": status}, status >= 500

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1


class FrontHandler(JsonHandler):
    front: Front  # set by start()

    def do_GET(self) -> None:
        if not self.drain_body():
            return
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self.send_json(200, {"ok": True, "service": self.service_name})
        elif path == "/admin/state":
            self.send_json(200, self.front.state())
        elif path == "/":
            try:
                status, body, headers = self.front.answer()
            except Exception as exc:  # a bug here must still answer JSON
                self.log_error("answer failed: %r", exc)
                status, headers = 500, {}
                body = {"error": "internal", "service": self.service_name,
                        "detail": f"{type(exc).__name__}: {exc}"[:200]}
            self.send_json(status, body, headers)
        else:
            self.not_found(path)


def start(config: FrontConfig) -> int:
    # trust_env=False: a proxy from the environment must never carry 127.0.0.1 calls.
    client = httpx.Client(trust_env=False, timeout=None,
                          limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
    FrontHandler.service_name = config.name
    FrontHandler.front = Front(config, client)
    banner = (f"circuit_breaker front {config.name} [{config.variant}] -> {config.dep_url} "
              f"({config.hop}; {config.failure_threshold} failures in {config.window_s:g} s, "
              f"open {config.open_s:g} s, {config.half_open_probes} probe(s), "
              f"timeout {config.call_timeout_ms} ms)")
    return serve(FrontHandler, config.port, banner, on_stop=client.close)


if __name__ == "__main__":
    sys.exit(run("circuit_breaker front", load_front, start))
