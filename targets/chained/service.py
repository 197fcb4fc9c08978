"""One service of the chained pattern target (A -> B -> C).

Run as ``python targets/chained/service.py``; everything is configured by
environment variables (see README.md next to this file). The same program is
the entry, the middle and the leaf: a service with DOWNSTREAM_URL calls the
next hop, one without it is the leaf.

The pattern's promise: a chain answers within the caller's budget and an
error names the hop that failed. The service keeps it by propagating the
remaining budget downstream (``X-Deadline-Ms``, relative milliseconds so
clocks never have to agree) and by keeping RESERVE_MS back for itself, so the
deepest failing hop times out first and its error travels up in time.
The broken VARIANTs exist so the harness's checks can be shown to fail.

Retries: a service retries its call to the next hop RETRIES times at most
(beyond the first call), and only an unavailable answer (503: refused,
reset, EOF), never a timeout: the budget is spent. In the topology only A,
the edge, retries; retry-every-hop makes every hop retry, so retries
multiply down the chain. Every service stamps each arrival of GET / with
its X-Request-Id (passed on downstream), so what reached C is C's record.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from targetkit import envconfig
from targetkit.envconfig import ConfigError
from targetkit.program import run
from targetkit.serving import JsonHandler, serve

VARIANTS = ("correct", "no-timeouts", "fixed-timeouts", "sticky-failure", "retry-every-hop")
DEADLINE_HEADER = "X-Deadline-Ms"
CALLER_HEADER = "X-Caller"
REQUEST_ID_HEADER = "X-Request-Id"
CONNECTIONS = ("pooled", "per-call")


@dataclass(frozen=True)
class Config:
    port: int
    name: str
    downstream_url: str | None
    downstream_name: str | None
    budget_ms: int
    hop_timeout_ms: int
    reserve_ms: int
    variant: str
    fixed_timeout_ms: int
    work_ms: int
    retries: int = 0
    connections: str = "pooled"
    arrivals_kept: int = 200000

    @property
    def hop(self) -> str:
        """The name of this service's outgoing link, e.g. "b->c"."""
        return f"{self.name}->{self.downstream_name}"


def load_config(env: Mapping[str, str]) -> Config:
    """Read and validate the env contract, so a typo fails at start, not under load."""
    name = envconfig.text(env, "SERVICE_NAME", hint="a, b or c")
    variant = envconfig.variant(env, VARIANTS)
    downstream_name = env.get("DOWNSTREAM_NAME", "").strip() or None
    if env.get("DOWNSTREAM_URL", "").strip().rstrip("/") and not downstream_name:
        raise ConfigError("DOWNSTREAM_NAME is required when DOWNSTREAM_URL is set")
    downstream_url = envconfig.url(env, "DOWNSTREAM_URL", "", schemes=("http", "https"),
                                   shape="an http(s) URL") or None
    return Config(
        port=envconfig.integer(env, "PORT", None, minimum=1),
        name=name,
        downstream_url=downstream_url,
        downstream_name=downstream_name if downstream_url else None,
        budget_ms=envconfig.integer(env, "BUDGET_MS", 800, minimum=1),
        hop_timeout_ms=envconfig.integer(env, "HOP_TIMEOUT_MS", 2000, minimum=1),
        reserve_ms=envconfig.integer(env, "RESERVE_MS", 100, minimum=0),
        variant=variant,
        fixed_timeout_ms=envconfig.integer(env, "FIXED_TIMEOUT_MS", 100, minimum=1),
        work_ms=envconfig.integer(env, "WORK_MS", 0, minimum=0),
        retries=envconfig.integer(env, "RETRIES", 0, minimum=0),
        connections=envconfig.choice(env, "DOWNSTREAM_CONNECTIONS", CONNECTIONS, "pooled"),
        arrivals_kept=envconfig.integer(env, "ARRIVALS_KEPT", 200000, minimum=1),
    )


class State:
    """Counters for /admin/state: a cross-check for the harness, never its only evidence."""

    def __init__(self, variant: str) -> None:
        self._lock = threading.Lock()
        self.variant = variant
        self.requests = self.ok = self.errors = self.timeouts = 0
        self.in_flight = self.downstream_calls = self.retries = 0
        self.downstream_dead = False

    def begin(self) -> None:
        with self._lock:
            self.requests += 1
            self.in_flight += 1

    def end(self, status: int, own_timeout: bool) -> None:
        with self._lock:
            self.in_flight -= 1
            if 200 <= status < 300:
                self.ok += 1
            else:
                self.errors += 1
            if own_timeout:
                self.timeouts += 1

    def count_call(self, *, retry: bool = False) -> None:
        with self._lock:
            self.downstream_calls += 1
            self.retries += retry

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": self.requests, "ok": self.ok, "errors": self.errors,
                    "timeouts": self.timeouts, "in_flight": self.in_flight,
                    "downstream_calls": self.downstream_calls, "retries": self.retries, "variant": self.variant,
                    "downstream_dead": self.downstream_dead}


class Arrivals:
    """Every GET / that reached this service, with the request id it carried.

    The stamp is taken under the lock that appends it, so records are in
    order and a reader asking "since t" never misses one. The total never
    drops what the bounded record trimmed."""

    def __init__(self, kept: int) -> None:
        self._lock = threading.Lock()
        self._records: deque[dict[str, Any]] = deque(maxlen=kept)
        self.count = 0

    def add(self, request_id: str | None) -> None:
        with self._lock:
            self.count += 1
            self._records.append({"t_ns": time.time_ns(), "request_id": request_id})

    def since(self, since_ns: int) -> dict[str, Any]:
        with self._lock:
            return {"count": self.count, "arrivals": [r for r in self._records if r["t_ns"] > since_ns]}


def run_bounded(fn: Callable[[], Any], timeout_s: float | None) -> Any:
    """Run fn in a daemon thread and wait at most timeout_s for it.

    This bounds the whole call (connect, send, a slowly dripping body), which
    httpx's per-operation timeouts alone do not. A daemon thread rather than a
    ThreadPoolExecutor: executor workers are joined at exit, so a hung call
    would hold up a SIGTERM shutdown.
    """
    future: Future[Any] = Future()

    def target() -> None:
        try:
            future.set_result(fn())
        except BaseException as exc:  # handed to the waiting caller
            future.set_exception(exc)

    threading.Thread(target=target, daemon=True).start()
    return future.result(timeout=timeout_s)


def fetch(client: httpx.Client, url: str, headers: dict[str, str],
          timeout_s: float | None) -> tuple[int, bytes]:
    """GET url and read the whole body, giving up once timeout_s has passed.

    The deadline is also checked between body chunks so that a call the
    caller already abandoned ends instead of draining a drip forever.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    with client.stream("GET", url, headers=headers, timeout=timeout_s) as resp:
        body = bytearray()
        for chunk in resp.iter_bytes():
            body += chunk
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("body not complete before the deadline")
        return resp.status_code, bytes(body)


class Service:
    """The chain logic: answers GET / with (status, body, timed-out-here)."""

    def __init__(self, config: Config, client: httpx.Client) -> None:
        self.config = config
        self.client = client
        self.state = State(config.variant)
        self.arrivals = Arrivals(config.arrivals_kept)

    def chain(self, headers: dict[str, str]) -> tuple[int, dict[str, Any], bool]:
        """Answer GET /; headers has lower-cased names."""
        cfg = self.config
        start = time.monotonic()
        propagate = cfg.variant in ("correct", "sticky-failure", "retry-every-hop")
        budget_ms: float = cfg.budget_ms
        raw_deadline = headers.get(DEADLINE_HEADER.lower())
        if propagate and raw_deadline is not None:
            try:
                budget_ms = float(raw_deadline)
            except ValueError:
                budget_ms = math.nan
            if not math.isfinite(budget_ms):
                return 400, {"error": "bad deadline", "service": cfg.name,
                             "detail": f"{DEADLINE_HEADER} must be a number"}, False
            if budget_ms <= 0:
                caller = headers.get(CALLER_HEADER.lower()) or "client"
                return 504, {"error": "timeout", "hop": f"{caller}->{cfg.name}",
                             "service": cfg.name, "after_ms": 0,
                             "detail": "deadline expired on arrival"}, True
        if cfg.downstream_url and self.state.downstream_dead:
            return 503, {"error": "marked dead", "hop": cfg.hop, "service": cfg.name}, False
        if cfg.work_ms:
            time.sleep(cfg.work_ms / 1000)
        if not cfg.downstream_url:
            return 200, {"service": cfg.name, "path": [cfg.name]}, False
        status, body, own_timeout = self._attempts(budget_ms, start, propagate,
                                                   headers.get(REQUEST_ID_HEADER.lower()))
        if (cfg.variant == "sticky-failure" and status >= 500
                and body.get("hop") == cfg.hop):
            self.state.downstream_dead = True
        return status, body, own_timeout

    def _timeout_ms(self, remaining_ms: float) -> float | None:
        cfg = self.config
        if cfg.variant == "no-timeouts":
            return None
        if cfg.variant == "fixed-timeouts":
            return cfg.fixed_timeout_ms
        return min(cfg.hop_timeout_ms, remaining_ms - cfg.reserve_ms)

    def _attempts(self, budget_ms: float, start: float, propagate: bool,
                  request_id: str | None) -> tuple[int, dict[str, Any], bool]:
        """The call to the next hop, retried at most RETRIES times while it is
        unavailable (503). A timeout is never retried, and a retry gets only
        what is left of the budget, so once it is spent the retries stop."""
        for attempt in range(self.config.retries + 1):
            remaining_ms = budget_ms - (time.monotonic() - start) * 1000
            result = self._call(remaining_ms, propagate, request_id, retry=attempt > 0)
            if result[0] != 503:
                break
        return result

    def _call(self, remaining_ms: float, propagate: bool, request_id: str | None = None,
              *, retry: bool = False) -> tuple[int, dict[str, Any], bool]:
        """Call the next hop and turn every outcome into (status, body, timed-out-here)."""
        cfg = self.config
        timeout_ms = self._timeout_ms(remaining_ms)
        if timeout_ms is not None and timeout_ms < 1:  # would send a 0 ms deadline
            return 504, {"error": "timeout", "hop": cfg.hop, "service": cfg.name,
                         "after_ms": 0, "detail": "no budget left to call"}, True
        headers = {CALLER_HEADER: cfg.name}
        if propagate and timeout_ms is not None:
            headers[DEADLINE_HEADER] = str(int(timeout_ms))
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        if cfg.connections == "per-call":  # Toxiproxy draws toxicity per connection: one per call
            headers["Connection"] = "close"
        timeout_s = None if timeout_ms is None else timeout_ms / 1000
        url = f"{cfg.downstream_url}/"
        self.state.count_call(retry=retry)
        started = time.monotonic()
        try:
            status, raw = run_bounded(lambda: fetch(self.client, url, headers, timeout_s),
                                      timeout_s)
        except (TimeoutError, httpx.TimeoutException):
            after_ms = round((time.monotonic() - started) * 1000)
            return 504, {"error": "timeout", "hop": cfg.hop, "service": cfg.name,
                         "after_ms": after_ms}, True
        except (httpx.HTTPError, OSError) as exc:
            detail = f"{type(exc).__name__}: {exc}"[:200]
            return 503, {"error": "unavailable", "hop": cfg.hop, "service": cfg.name,
                         "detail": detail}, False
        return self._judge(status, raw)

    def _judge(self, status: int, raw: bytes) -> tuple[int, dict[str, Any], bool]:
        """Map the next hop's answer to ours, keeping the failing hop's name."""
        cfg = self.config
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if 200 <= status < 300:
            if isinstance(body, dict) and isinstance(body.get("path"), list):
                return 200, {"service": cfg.name, "path": [cfg.name, *body["path"]]}, False
            return 502, {"error": "bad body", "hop": cfg.hop, "service": cfg.name,
                         "status": status}, False
        if status >= 500 and isinstance(body, dict) and isinstance(body.get("hop"), str):
            passed = dict(body)
            passed["origin"] = body.get("service")
            passed["service"] = cfg.name
            return status, passed, False
        return 502, {"error": "bad status", "hop": cfg.hop, "service": cfg.name,
                     "status": status}, False


class Handler(JsonHandler):
    """GET /, /health and /admin/state, answered by the Service set on the class by start()."""

    server_version = "chained-service"
    service: Service

    def do_GET(self) -> None:
        if not self.drain_body():
            return
        url = urlsplit(self.path)
        path = url.path
        svc = self.service
        if path == "/health":
            self.send_json(200, {"ok": True, "service": svc.config.name})
        elif path == "/admin/state":
            self.send_json(200, {"service": svc.config.name, **svc.state.snapshot()})
        elif path == "/admin/arrivals":
            since_ns = self.since_ns(url.query)
            if since_ns is not None:
                self.send_json(200, {"service": svc.config.name, **svc.arrivals.since(since_ns)})
        elif path == "/":
            svc.arrivals.add(self.headers.get(REQUEST_ID_HEADER))
            svc.state.begin()
            status, own_timeout = 500, False
            try:
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, body, own_timeout = svc.chain(headers)
            except Exception as exc:  # a bug here must still answer JSON
                self.log_error("chain failed: %r", exc)
                body = {"error": "internal", "service": svc.config.name,
                        "detail": f"{type(exc).__name__}: {exc}"[:200]}
            finally:
                svc.state.end(status, own_timeout)
            self.send_json(status, body)
        else:
            self.not_found(path)


def start(config: Config) -> int:
    # trust_env=False: a proxy from the environment must never carry 127.0.0.1 calls.
    client = httpx.Client(trust_env=False, timeout=None,
                          limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
    Handler.service_name = config.name
    Handler.service = Service(config, client)
    role = f"-> {config.downstream_url} ({config.hop})" if config.downstream_url else "(leaf)"
    return serve(Handler, config.port, lambda at: f"chained service {config.name} [{config.variant}] on {at} {role}",
                 name=f"chained service {config.name}", on_stop=client.close)


if __name__ == "__main__":
    sys.exit(run("chained service", load_config, start))
