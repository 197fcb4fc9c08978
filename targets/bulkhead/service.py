"""The bulkhead target's app: two connection pools to one PostgreSQL.

Run as ``python targets/bulkhead/service.py``; configured by environment
variables (README.md next to this file). Critical work (``GET /checkout``)
and the rest (``GET /report``) each get their own pool, each through its own
link (its own Toxiproxy proxy), and a request that cannot get a connection
within POOL_WAIT_MS is rejected at once with 503 naming the pool.

The pattern's promise: exhausting or slowing the reports side never starves
checkout. The broken VARIANT ``shared-pool`` puts both routes on one pool of
the same total size (over the reports link), so slow reports take every
connection and checkout waits and is rejected with them. ``shared-limit``
keeps two pools on their own links, but each may take up to
CRITICAL_POOL_SIZE + REPORTS_POOL_SIZE connections from one cap of that size
they share (a process-wide limiter where each pool needs its own), so slow
reports take the whole cap and checkout is turned away all the same.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg

from targetkit import envconfig
from targetkit.program import run
from targetkit.serving import JsonHandler, Server, serve

from pools import Cap, Pool, PoolExhausted, QueryTimeout, Watchdog, connect_bounded

VARIANTS = ("correct", "shared-pool", "leaky-pool", "shared-limit")
DB_ADDRESS = "host:port of the database, via its link"
MAX_SLOW_MS = 60_000
SCHEMA = """CREATE TABLE IF NOT EXISTS orders (
    id bigserial PRIMARY KEY,
    amount_cents integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())"""
CHECKOUT_SQL = "INSERT INTO orders (amount_cents) VALUES (%s) RETURNING id"
# pg_sleep in FROM runs exactly once, before the aggregate.
REPORT_SQL = ("SELECT count(*), coalesce(sum(amount_cents), 0) "
              "FROM pg_sleep(%s) AS s, orders")


@dataclass(frozen=True)
class Config:
    port: int
    critical_addr: tuple[str, int]
    reports_addr: tuple[str, int]
    critical_pool_size: int
    reports_pool_size: int
    pool_wait_ms: int
    query_timeout_ms: int
    report_query_ms: int
    variant: str
    db_user: str
    db_name: str


def load_config(env: Mapping[str, str]) -> Config:
    """Read and validate the env contract, so a typo fails at start, not under load."""
    variant = envconfig.variant(env, VARIANTS)
    return Config(
        port=envconfig.integer(env, "PORT", None, minimum=1),
        critical_addr=envconfig.address(env, "CRITICAL_ADDR", hint=DB_ADDRESS),
        reports_addr=envconfig.address(env, "REPORTS_ADDR", hint=DB_ADDRESS),
        critical_pool_size=envconfig.integer(env, "CRITICAL_POOL_SIZE", 4, minimum=1),
        reports_pool_size=envconfig.integer(env, "REPORTS_POOL_SIZE", 4, minimum=1),
        pool_wait_ms=envconfig.integer(env, "POOL_WAIT_MS", 100, minimum=0),
        query_timeout_ms=envconfig.integer(env, "QUERY_TIMEOUT_MS", 2000, minimum=1),
        report_query_ms=envconfig.integer(env, "REPORT_QUERY_MS", 20, minimum=0),
        variant=variant,
        db_user=envconfig.text(env, "DB_USER", "postgres"),
        db_name=envconfig.text(env, "DB_NAME", "postgres"),
    )


def conninfo(config: Config, addr: tuple[str, int], pool: str) -> str:
    """libpq settings: statement_timeout is sent in the startup packet (no extra round trip).

    connect_timeout (whole seconds, at least 2) is only a backstop that ends an
    abandoned connect; the pool's own bound of QUERY_TIMEOUT_MS fires first.
    """
    connect_timeout = max(2, -(-config.query_timeout_ms // 1000)) + 1
    return (f"host={addr[0]} port={addr[1]} user={config.db_user} dbname={config.db_name} "
            f"application_name=bulkhead-{pool} connect_timeout={connect_timeout} "
            f"options='-c statement_timeout={config.query_timeout_ms}'")


def make_pools(config: Config) -> dict[str, Pool]:
    """Route name -> pool: two pools (shared-limit: both over one cap), or one shared pool (on the
    reports link) under both names."""
    watchdog = Watchdog()
    total = config.critical_pool_size + config.reports_pool_size
    cap = Cap(total) if config.variant == "shared-limit" else None

    def pool(name: str, addr: tuple[str, int], size: int) -> Pool:
        return Pool(name, size=total if cap else size, conninfo=conninfo(config, addr, name),
                    wait_ms=config.pool_wait_ms, timeout_ms=config.query_timeout_ms,
                    watchdog=watchdog, leak_failed=config.variant == "leaky-pool", cap=cap)

    if config.variant == "shared-pool":
        shared = pool("shared", config.reports_addr, total)
        return {"critical": shared, "reports": shared}
    return {"critical": pool("critical", config.critical_addr, config.critical_pool_size),
            "reports": pool("reports", config.reports_addr, config.reports_pool_size)}


class App:
    """The routes, as (status, body) pairs; HTTP lives in Handler."""

    def __init__(self, config: Config, pools: dict[str, Pool]) -> None:
        self.config = config
        self.pools = pools
        self.ready = threading.Event()
        self.last_error = "not connected yet"
        self.slow_reports_ms = 0  # set by POST /admin/slow_reports: the slow-queries fault

    def warm_up(self, stop: threading.Event) -> None:
        """Create the schema and open every connection, retrying until the database answers."""
        while not stop.is_set():
            try:
                pool = self.pools["critical"]
                conn = connect_bounded(pool.conninfo, pool.timeout_s)  # not counted as traffic
                try:
                    pool.fetch_on(conn, SCHEMA)
                except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
                    pass  # another instance created it at the same moment
                finally:
                    conn.close()
                for pool in set(self.pools.values()):
                    pool.fill()
                self.ready.set()
                return
            except (psycopg.Error, QueryTimeout, PoolExhausted) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            stop.wait(0.1)  # poll

    def route(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if path == "/health":
            if self.ready.is_set():
                return 200, {"ok": True}
            return 503, {"ok": False, "detail": self.last_error}
        if path == "/admin/state":
            return 200, self.state()
        if path == "/admin/slow_reports":
            raw = (query.get("ms") or [""])[0]
            if not (raw.isdigit() and int(raw) <= MAX_SLOW_MS):
                return 400, {"error": "bad ms", "detail": f"0..{MAX_SLOW_MS} milliseconds"}
            self.slow_reports_ms = int(raw)
            return 200, {"slow_reports_ms": self.slow_reports_ms}
        if path == "/checkout":
            return self.guarded("critical", self.checkout)
        if path == "/report":
            raw = (query.get("slow_ms") or [""])[0]
            if raw and not (raw.isdigit() and int(raw) <= MAX_SLOW_MS):
                return 400, {"error": "bad slow_ms", "detail": f"0..{MAX_SLOW_MS} milliseconds"}
            sleep_ms = int(raw) if raw else (self.slow_reports_ms or self.config.report_query_ms)
            return self.guarded("reports", lambda p: self.report(p, sleep_ms))
        return 404, {"error": "not found", "path": path}

    def checkout(self, pool: Pool) -> dict[str, Any]:
        (order_id,) = pool.fetch(CHECKOUT_SQL, (random.randint(100, 10_000),))
        return {"order_id": order_id, "pool": pool.name}

    def report(self, pool: Pool, sleep_ms: int) -> dict[str, Any]:
        count, total = pool.fetch(REPORT_SQL, (sleep_ms / 1000,))
        return {"orders": count, "total_cents": int(total), "slept_ms": sleep_ms, "pool": pool.name}

    def guarded(self, route_pool: str,
                work: Callable[[Pool], dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        """Run work on the route's pool; every failure is JSON naming the pool."""
        pool = self.pools[route_pool]
        started = time.monotonic()
        try:
            return 200, work(pool)
        except PoolExhausted as exc:
            return 503, {"error": "pool exhausted", "pool": pool.name,
                         "waited_ms": round(exc.waited_ms)}
        except QueryTimeout as exc:
            return 504, {"error": f"{exc.step} timeout", "pool": pool.name,
                         "after_ms": round(exc.after_ms)}
        except psycopg.Error as exc:
            unavailable = isinstance(exc, psycopg.OperationalError)
            return (503 if unavailable else 500), {
                "error": "database unavailable" if unavailable else "database error",
                "pool": pool.name, "after_ms": round((time.monotonic() - started) * 1000),
                "detail": f"{type(exc).__name__}: {exc}".strip()[:200]}

    def state(self) -> dict[str, Any]:
        pools = {route: {"name": p.name, **p.snapshot()} for route, p in self.pools.items()}
        return {"pools": pools, "variant": self.config.variant, "ready": self.ready.is_set()}


class Handler(JsonHandler):
    """Every route answered by the App set on the class by start(); the method does not matter
    (the fault switch /admin/slow_reports is a POST)."""

    server_version = "bulkhead-app"
    service_name = "bulkhead app"
    error_fields = ("error", "status")
    app: App

    def do_GET(self) -> None:
        if not self.drain_body():
            return
        url = urlsplit(self.path)
        try:
            status, body = self.app.route(url.path, parse_qs(url.query))
        except Exception as exc:  # a bug here must still answer JSON
            self.log_error("route failed: %r", exc)
            status, body = 500, {"error": "internal", "detail": f"{type(exc).__name__}: {exc}"[:200]}
        self.send_json(status, body)

    do_POST = do_GET


def start(config: Config) -> int:
    pools = make_pools(config)
    Handler.app = app = App(config, pools)
    stopping = threading.Event()

    def warm_up() -> None:
        threading.Thread(target=app.warm_up, args=(stopping,), name="warm-up", daemon=True).start()

    def stop(server: Server) -> None:
        stopping.set()
        server.shutdown()

    def close() -> None:
        for pool in set(pools.values()):
            pool.close()

    def banner(at: str) -> str:
        return (f"bulkhead app [{config.variant}] on {at}; critical via {config.critical_addr[0]}:"
                f"{config.critical_addr[1]}, reports via {config.reports_addr[0]}:{config.reports_addr[1]}")

    return serve(Handler, config.port, banner, on_start=warm_up, on_signal=stop, on_stop=close)


if __name__ == "__main__":
    sys.exit(run("bulkhead app", load_config, start))
