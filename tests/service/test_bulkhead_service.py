"""The bulkhead target, run for real: PostgreSQL (via postgres.py) and the app as subprocesses.

No Toxiproxy: CRITICAL_ADDR and REPORTS_ADDR point straight at postgres.
Saturation comes from slow report queries (``/report?slow_ms=N``), faults
from signals to the database's process tree. One cluster serves the module
(a cold start costs ~1.5 s); the tests that kill it start their own.
"""

from __future__ import annotations

import importlib.util
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest

from harness.runtime.ports import free_port

from .launcher import TARGETS, Launcher, Proc, live_in_group, wait_for

TARGET = TARGETS / "bulkhead"
POOL_WAIT_MS = 100
SLACK_MS = 150  # scheduling, Python, the HTTP round trip
T = TypeVar("T")


def poll(what: str, check: Callable[[], T | None], *, within_s: float) -> T:
    """Call check until it returns something truthy; fail naming what never happened."""
    return wait_for(what, check, within_s=within_s, retry=(OSError, httpx.TransportError, psycopg.Error),
                    interval_s=0.01)


class Bulkhead:
    """PostgreSQL and apps on a launcher, and what the tests ask of them."""

    def __init__(self, launcher: Launcher) -> None:
        self.launcher, self.http, self.tmp = launcher, launcher.http, launcher.folder

    def start(self, name: str, script: str, port: int | None = None, **env: Any) -> Proc:
        return self.launcher.program("bulkhead", script, name, port=port, **env)

    def postgres(self, data_dir: Path | None = None, port: int | None = None) -> Proc:
        data_dir = data_dir or self.tmp / f"db-{len(self.launcher.procs)}.data"
        data_dir.mkdir(parents=True, exist_ok=True)
        return self.start("db", "postgres.py", port=port, DATA_DIR=data_dir)

    def db_ready(self, db: Proc, *, within_s: float = 15.0) -> None:
        """Poll until the server answers a query (it listens before it accepts them)."""
        def answers() -> bool:
            if db.exited() is not None:
                pytest.fail(f"postgres exited {db.exited()}: {db.log_text()}")
            with psycopg.connect(host="127.0.0.1", port=db.port, user="postgres",
                                 dbname="postgres", connect_timeout=2) as conn:
                return conn.execute("SELECT 1").fetchone() == (1,)
        poll(f"postgres on {db.addr}", answers, within_s=within_s)

    def app(self, db_addr: str, *, wait_ready: bool = True, **env: Any) -> Proc:
        settings = {"CRITICAL_ADDR": db_addr, "REPORTS_ADDR": db_addr,
                    "POOL_WAIT_MS": POOL_WAIT_MS, **env}
        app = self.start("app", "service.py", **settings)
        if wait_ready:
            self.healthy(app)
        return app

    def healthy(self, app: Proc, *, within_s: float = 15.0) -> None:
        self.launcher.healthy(app, within_s=within_s)

    def get(self, proc: Proc, path: str) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        resp = self.http.get(f"{proc.url}{path}")
        return resp, (time.monotonic() - started) * 1000

    def pools(self, app: Proc) -> dict[str, dict[str, Any]]:
        return self.get(app, "/admin/state")[0].json()["pools"]

    def stop(self, proc: Proc) -> int:
        return self.launcher.stop(proc)


@contextmanager
def bulkhead_in(folder: Path) -> Iterator[Bulkhead]:
    """A Bulkhead whose processes all end when it closes; then the clusters placed outside
    folder (postgres.py's fallback for root, behind a pgdata symlink) are removed too."""
    launcher = Launcher(folder)
    try:
        with launcher:
            yield Bulkhead(launcher)
    finally:
        for proc in launcher.procs:
            link = Path(proc.env["DATA_DIR"]) / "pgdata" if "DATA_DIR" in proc.env else None
            if link is not None and link.is_symlink():
                shutil.rmtree(link.resolve().parent, ignore_errors=True)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Bulkhead, Proc]]:
    """One cluster for the tests that do not kill it."""
    with bulkhead_in(tmp_path_factory.mktemp("bulkhead-db")) as bulkhead:
        db = bulkhead.postgres()
        bulkhead.db_ready(db)
        yield bulkhead, db


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Bulkhead]:
    with bulkhead_in(tmp_path) as bulkhead:
        yield bulkhead


@pytest.fixture
def db(shared: tuple[Bulkhead, Proc]) -> Proc:
    return shared[1]


def test_checkout_and_report_answer_and_are_counted(launch: Bulkhead, db: Proc) -> None:
    app = launch.app(db.addr)
    first, _ = launch.get(app, "/checkout")
    second, _ = launch.get(app, "/checkout")
    assert first.status_code == second.status_code == 200, first.text
    assert first.json()["pool"] == "critical"
    assert second.json()["order_id"] > first.json()["order_id"]
    report, elapsed_ms = launch.get(app, "/report")
    assert report.status_code == 200, report.text
    assert report.json() | {"pool": "reports", "slept_ms": 20} == report.json()
    assert report.json()["orders"] >= 2
    assert elapsed_ms >= 20
    state = launch.get(app, "/admin/state")[0].json()
    assert state["variant"] == "correct"
    assert state["pools"]["critical"] | {"size": 4, "in_use": 0, "served": 2, "rejected": 0} \
        == state["pools"]["critical"]
    assert state["pools"]["reports"]["served"] == 1
    assert launch.get(app, "/report?slow_ms=soon")[0].status_code == 400
    assert launch.stop(app) == 0


@pytest.mark.parametrize("variant", ["correct", "shared-pool", "shared-limit"])
def test_saturated_reports_are_rejected_fast_and_checkout_is_isolated(
        launch: Bulkhead, db: Proc, variant: str) -> None:
    app = launch.app(db.addr, VARIANT=variant, CRITICAL_POOL_SIZE=2, REPORTS_POOL_SIZE=2)
    full = 2 if variant == "correct" else 4  # the shared pool, or the shared cap, has both sizes together
    with ThreadPoolExecutor(max_workers=16) as pool:
        slow = [pool.submit(launch.get, app, "/report?slow_ms=1500") for _ in range(4)]
        poll("reports pool full", lambda: launch.pools(app)["reports"]["in_use"] == full,
             within_s=1.0)
        overflow = [pool.submit(launch.get, app, "/report?slow_ms=1500") for _ in range(3)]
        # 8 in a row: even rejected after 100 ms each, all fall inside the 1.5 s saturation
        checkouts = [launch.get(app, "/checkout") for _ in range(8)]
        rejected = [f.result() for f in overflow]
        slow_statuses = sorted(f.result()[0].status_code for f in slow)
    pool_name = "shared" if variant == "shared-pool" else "reports"
    for resp, elapsed_ms in rejected:
        assert resp.status_code == 503, resp.text
        assert resp.json() | {"error": "pool exhausted", "pool": pool_name} == resp.json()
        assert elapsed_ms < POOL_WAIT_MS + SLACK_MS
    statuses = {r.status_code for r, _ in checkouts}
    latencies_ms = sorted(ms for _, ms in checkouts)
    state = launch.pools(app)
    if variant == "correct":
        assert slow_statuses == [200, 200, 503, 503]
        assert statuses == {200}
        # baseline p99 is ~5 ms; the bounds leave room for a busy 2-core machine
        assert latencies_ms[len(latencies_ms) // 2] < 50 and latencies_ms[-1] < 250, latencies_ms
        assert (state["critical"]["rejected"], state["reports"]["rejected"]) == (0, 2 + 3)
    elif variant == "shared-limit":  # two pools, but the reports hold the whole cap
        assert slow_statuses == [200] * 4
        assert statuses == {503}, "checkout was not starved by the shared cap"
        assert {r.json()["pool"] for r, _ in checkouts} == {"critical"}
        assert (state["critical"]["rejected"], state["reports"]["rejected"]) == (8, 3)
    else:
        assert slow_statuses == [200] * 4
        assert statuses == {503}, "checkout was not starved by the shared pool"
        assert {r.json()["pool"] for r, _ in checkouts} == {"shared"}
        assert state["critical"] == state["reports"]
        assert state["critical"]["rejected"] == 3 + 8


def test_admin_state_shows_in_use_and_waiting(launch: Bulkhead, db: Proc) -> None:
    app = launch.app(db.addr, REPORTS_POOL_SIZE=1, POOL_WAIT_MS=3000)
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(launch.get, app, "/report?slow_ms=600")
        poll("one report in use", lambda: launch.pools(app)["reports"]["in_use"] == 1, within_s=1)
        second = pool.submit(launch.get, app, "/report")
        state = poll("one report waiting",
                     lambda: (s := launch.pools(app))["reports"]["waiting"] == 1 and s, within_s=1)
        assert state["reports"] | {"in_use": 1, "size": 1} == state["reports"]
        assert state["critical"] | {"in_use": 0, "waiting": 0} == state["critical"]
        resp, elapsed_ms = second.result()
    assert resp.status_code == 200, resp.text  # it waited, within POOL_WAIT_MS, and was served
    assert elapsed_ms > 200  # it did wait for the first one
    assert first.result()[0].status_code == 200
    assert launch.pools(app)["reports"] | {"in_use": 0, "waiting": 0, "served": 2, "rejected": 0} \
        == launch.pools(app)["reports"]


def test_slow_query_times_out_naming_the_pool(launch: Bulkhead, db: Proc) -> None:
    app = launch.app(db.addr, QUERY_TIMEOUT_MS=300)
    resp, elapsed_ms = launch.get(app, "/report?slow_ms=2000")
    assert resp.status_code == 504, resp.text
    assert resp.json() | {"error": "query timeout", "pool": "reports"} == resp.json()
    assert 300 <= elapsed_ms < 300 + SLACK_MS
    assert launch.get(app, "/report")[0].status_code == 200
    reports = launch.pools(app)["reports"]
    assert (reports["errors"], reports["idle_connections"]) == (1, 4)  # the cancelled one was kept


def test_paused_database_costs_at_most_the_query_timeout(launch: Bulkhead, db: Proc) -> None:
    app = launch.app(db.addr, QUERY_TIMEOUT_MS=400, CRITICAL_POOL_SIZE=2)
    db.signal(signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            calls = [pool.submit(launch.get, app, "/checkout") for _ in range(4)]
            answers = sorted(((r.status_code, r.json()["pool"], ms) for r, ms in
                              (f.result(timeout=5) for f in calls)), key=lambda a: a[0])
    finally:
        db.signal(signal.SIGCONT)
    assert [a[:2] for a in answers] == [(503, "critical")] * 2 + [(504, "critical")] * 2
    assert all(ms < POOL_WAIT_MS + SLACK_MS for status, _, ms in answers if status == 503)
    assert all(ms < 400 + 250 + SLACK_MS for status, _, ms in answers if status == 504)
    poll("checkout after resume", lambda: launch.get(app, "/checkout")[0].status_code == 200,
         within_s=3)


def test_health_waits_for_the_database_and_a_killed_one_recovers(launch: Bulkhead) -> None:
    port = free_port()
    app = launch.app(f"127.0.0.1:{port}", wait_ready=False)
    health = poll("app up, database not yet", lambda: launch.get(app, "/health")[0], within_s=10)
    assert health.status_code == 503 and "detail" in health.json()
    data_dir = launch.tmp / "db.data"
    db = launch.postgres(port=port, data_dir=data_dir)
    launch.healthy(app)
    assert launch.get(app, "/checkout")[0].status_code == 200
    db.signal(signal.SIGKILL)
    db.popen.wait()
    poll("every postgres process gone", lambda: not live_in_group(db.popen.pid), within_s=5)
    resp, elapsed_ms = launch.get(app, "/checkout")
    assert resp.status_code == 503, resp.text
    assert resp.json() | {"error": "database unavailable", "pool": "critical"} == resp.json()
    assert elapsed_ms < 300
    restarted = launch.postgres(port=port, data_dir=data_dir)
    poll("checkout after restart", lambda: launch.get(app, "/checkout")[0].status_code == 200,
         within_s=10)
    assert launch.get(app, "/report")[0].json()["orders"] >= 2  # the data survived
    started = time.monotonic()
    assert launch.stop(restarted) == 0  # SIGTERM reaches the sessions too: no grace run-out
    assert time.monotonic() - started < 3


def load_wrapper(monkeypatch: pytest.MonkeyPatch) -> Any:
    """postgres.py as a module (targets/ is not a package); dataclasses need it in sys.modules,
    and it imports the target kit from targets/."""
    monkeypatch.syspath_prepend(str(TARGETS))
    spec = importlib.util.spec_from_file_location("bulkhead_postgres", TARGET / "postgres.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_postgres_wrapper_names_what_is_missing(launch: Bulkhead, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    wrapper = load_wrapper(monkeypatch)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(wrapper.SetupError, match="apt-get install postgresql"):
        wrapper.find_bindir({"PATH": str(empty)}, lib_root=empty)

    @dataclass
    class Ran:
        returncode: int
        stderr: str

    def run(**env: str) -> Ran:
        proc = launch.start("db", "postgres.py", **{"DATA_DIR": "", "PG_BINDIR": "", **env})
        return Ran(proc.popen.wait(timeout=20), proc.log_text())

    missing = run(PORT="5999", DATA_DIR=str(tmp_path / "d"), PG_BINDIR=str(empty))
    assert missing.returncode == 1
    assert "PG_BINDIR" in missing.stderr and "apt-get install postgresql" in missing.stderr
    bad_port = run(PORT="many", DATA_DIR=str(tmp_path / "d"))
    assert bad_port.returncode == 2 and "PORT must be an integer" in bad_port.stderr
    no_dir = run(PORT="5999")
    assert no_dir.returncode == 2 and "DATA_DIR is required" in no_dir.stderr

    bad_bind = run(PORT="5999", DATA_DIR=str(tmp_path / "d"), BIND_HOST="example.org")
    assert bad_bind.returncode == 2 and "BIND_HOST must be an IP address" in bad_bind.stderr


def test_postgres_wrapper_lets_the_network_in_only_off_loopback(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """In a container (BIND_HOST=0.0.0.0) the run's Toxiproxy connects from the network;
    on loopback pg_hba.conf stays exactly as initdb wrote it."""
    wrapper = load_wrapper(monkeypatch)
    pgdata = tmp_path / "pgdata"
    pgdata.mkdir()
    initdb = "local all all trust\nhost all all 127.0.0.1/32 trust\n"
    (pgdata / "pg_hba.conf").write_text(initdb)

    def start(bind_host: str | None) -> str:
        env = {"PORT": "5999", "DATA_DIR": str(tmp_path), **({"BIND_HOST": bind_host} if bind_host else {})}
        config = wrapper.load_config(env)
        wrapper.write_hba(pgdata, config)
        assert f"listen_addresses={config.bind_host}" in wrapper.postgres_argv(Path("/bin"), config, pgdata, tmp_path)
        return (pgdata / "pg_hba.conf").read_text()

    assert start(None) == initdb
    in_container = start("0.0.0.0")
    assert in_container.startswith(initdb) and in_container.count("samenet") == 1
    assert start("0.0.0.0") == in_container  # a restart does not add it twice
    assert start("127.0.0.1") == initdb


@pytest.mark.parametrize(("env", "named"), [
    ({"CRITICAL_POOL_SIZE": "0"}, "CRITICAL_POOL_SIZE must be >= 1"),
    ({"REPORTS_ADDR": ""}, "REPORTS_ADDR is required"),
    ({"CRITICAL_ADDR": "127.0.0.1"}, "CRITICAL_ADDR must be host:port"),
    ({"VARIANT": "bogus"}, "unknown VARIANT"),
])
def test_app_bad_env_exits_2_naming_the_variable(launch: Bulkhead, env: dict[str, str],
                                                 named: str) -> None:
    settings = {"CRITICAL_ADDR": "127.0.0.1:1", "REPORTS_ADDR": "127.0.0.1:1", **env}
    proc = launch.start("app", "service.py", **settings)
    assert proc.popen.wait(timeout=10) == 2
    assert named in proc.log_text()
