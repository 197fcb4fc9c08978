"""The bulkhead target, run for real: PostgreSQL (via postgres.py) and the app as subprocesses.

No Toxiproxy: CRITICAL_ADDR and REPORTS_ADDR point straight at postgres.
Saturation comes from slow report queries (``/report?slow_ms=N``), faults
from signals to the database's process tree. One cluster serves the module
(a cold start costs ~1.5 s); the tests that kill it start their own.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest

from harness.runtime.labels import label_env, new_run_id, process_labels
from harness.runtime.processes import signal_group

from .service_processes import free_port

TARGET = Path(__file__).resolve().parents[2] / "targets" / "bulkhead"
POOL_WAIT_MS = 100
SLACK_MS = 150  # scheduling, Python, the HTTP round trip
T = TypeVar("T")


def poll(what: str, check: Callable[[], T | None], *, within_s: float) -> T:
    """Call check until it returns something truthy; fail naming what never happened."""
    deadline = time.monotonic() + within_s
    last: Any = None
    while True:
        try:
            result = check()
            if result:
                return result
            last = result
        except (OSError, httpx.TransportError, psycopg.Error) as exc:
            last = exc
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {within_s} s; last: {last!r}")
        time.sleep(0.01)  # poll


@dataclass
class Proc:
    name: str
    port: int
    popen: subprocess.Popen[bytes]
    log: Path
    data_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def signal(self, sig: signal.Signals) -> None:
        """To the whole tree, as the runtime does: postgres's children leave the group."""
        if not signal_group(self.popen, sig):
            raise ProcessLookupError(self.popen.pid)

    def group_alive(self) -> bool:
        try:
            os.killpg(self.popen.pid, 0)
            return True
        except ProcessLookupError:
            return False


@dataclass
class Launcher:
    """Starts postgres and apps, remembers them all, and ends every one (and its group)."""

    tmp: Path
    run_id: str
    procs: list[Proc] = field(default_factory=list)
    http: httpx.Client = field(default_factory=lambda: httpx.Client(trust_env=False, timeout=10))

    def start(self, name: str, script: str, port: int | None = None,
              data_dir: Path | None = None, **env: Any) -> Proc:
        port = port or free_port()
        full_env = {**os.environ, "PORT": str(port), **label_env(self.run_id),
                    **{k: str(v) for k, v in env.items()}}
        if data_dir is not None:
            full_env["DATA_DIR"] = str(data_dir)
        log = self.tmp / f"{name}-{port}-{len(self.procs)}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen([sys.executable, str(TARGET / script)], env=full_env,
                                     stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                     cwd=TARGET, start_new_session=True)
        proc = Proc(name, port, popen, log, data_dir)
        self.procs.append(proc)
        return proc

    def postgres(self, data_dir: Path | None = None, port: int | None = None) -> Proc:
        data_dir = data_dir or self.tmp / f"db-{len(self.procs)}.data"
        data_dir.mkdir(parents=True, exist_ok=True)
        return self.start("db", "postgres.py", port=port, data_dir=data_dir)

    def db_ready(self, db: Proc, *, within_s: float = 15.0) -> None:
        """Poll until the server answers a query (it listens before it accepts them)."""
        def answers() -> bool:
            if db.popen.poll() is not None:
                pytest.fail(f"postgres exited {db.popen.returncode}: {db.log.read_text()}")
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
        def ok() -> bool:
            if app.popen.poll() is not None:
                pytest.fail(f"app exited {app.popen.returncode}: {app.log.read_text()}")
            return self.http.get(f"{app.url}/health", timeout=1).status_code == 200
        poll(f"app {app.url}/health", ok, within_s=within_s)

    def get(self, proc: Proc, path: str) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        resp = self.http.get(f"{proc.url}{path}")
        return resp, (time.monotonic() - started) * 1000

    def pools(self, app: Proc) -> dict[str, dict[str, Any]]:
        return self.get(app, "/admin/state")[0].json()["pools"]

    def stop(self, proc: Proc, grace_s: float = 5.0) -> int:
        """SIGCONT and SIGTERM to the group, SIGKILL after grace_s; wait until the group is gone."""
        if proc.popen.poll() is None:
            for sig in (signal.SIGCONT, signal.SIGTERM):
                try:
                    proc.signal(sig)
                except ProcessLookupError:
                    pass
            try:
                proc.popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        if proc.group_alive():
            proc.signal(signal.SIGKILL)
        code = proc.popen.wait()
        poll(f"process group of {proc.name} gone", lambda: not proc.group_alive(), within_s=5)
        return code

    def close(self) -> None:
        """End every process, remove clusters placed outside tmp, check nothing is left."""
        try:
            for proc in reversed(self.procs):
                self.stop(proc)
        finally:
            self.http.close()
            for proc in self.procs:
                link = proc.data_dir / "pgdata" if proc.data_dir else None
                if link is not None and link.is_symlink():  # the root fallback (postgres.py)
                    shutil.rmtree(link.resolve().parent, ignore_errors=True)
        left = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                if (process_labels(pid) or {}).get("HARNESS_RUN") == self.run_id]
        assert left == [], f"processes of this test are still alive: {left}"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Launcher, Proc]]:
    """One cluster for the tests that do not kill it."""
    launcher = Launcher(tmp_path_factory.mktemp("bulkhead-db"), new_run_id())
    try:
        db = launcher.postgres()
        launcher.db_ready(db)
        yield launcher, db
    finally:
        launcher.close()


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launcher]:
    launcher = Launcher(tmp_path, new_run_id())
    try:
        yield launcher
    finally:
        launcher.close()


@pytest.fixture
def db(shared: tuple[Launcher, Proc]) -> Proc:
    return shared[1]


def test_checkout_and_report_answer_and_are_counted(launch: Launcher, db: Proc) -> None:
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


@pytest.mark.parametrize("variant", ["correct", "shared-pool"])
def test_saturated_reports_are_rejected_fast_and_checkout_is_isolated(
        launch: Launcher, db: Proc, variant: str) -> None:
    app = launch.app(db.addr, VARIANT=variant, CRITICAL_POOL_SIZE=2, REPORTS_POOL_SIZE=2)
    full = 2 if variant == "correct" else 4  # the shared pool has both sizes together
    with ThreadPoolExecutor(max_workers=16) as pool:
        slow = [pool.submit(launch.get, app, "/report?slow_ms=1500") for _ in range(4)]
        poll("reports pool full", lambda: launch.pools(app)["reports"]["in_use"] == full,
             within_s=1.0)
        overflow = [pool.submit(launch.get, app, "/report?slow_ms=1500") for _ in range(3)]
        # 8 in a row: even rejected after 100 ms each, all fall inside the 1.5 s saturation
        checkouts = [launch.get(app, "/checkout") for _ in range(8)]
        rejected = [f.result() for f in overflow]
        slow_statuses = sorted(f.result()[0].status_code for f in slow)
    pool_name = "reports" if variant == "correct" else "shared"
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
    else:
        assert slow_statuses == [200] * 4
        assert statuses == {503}, "checkout was not starved by the shared pool"
        assert {r.json()["pool"] for r, _ in checkouts} == {"shared"}
        assert state["critical"] == state["reports"]
        assert state["critical"]["rejected"] == 3 + 8


def test_admin_state_shows_in_use_and_waiting(launch: Launcher, db: Proc) -> None:
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


def test_slow_query_times_out_naming_the_pool(launch: Launcher, db: Proc) -> None:
    app = launch.app(db.addr, QUERY_TIMEOUT_MS=300)
    resp, elapsed_ms = launch.get(app, "/report?slow_ms=2000")
    assert resp.status_code == 504, resp.text
    assert resp.json() | {"error": "query timeout", "pool": "reports"} == resp.json()
    assert 300 <= elapsed_ms < 300 + SLACK_MS
    assert launch.get(app, "/report")[0].status_code == 200
    reports = launch.pools(app)["reports"]
    assert (reports["errors"], reports["idle_connections"]) == (1, 4)  # the cancelled one was kept


def test_paused_database_costs_at_most_the_query_timeout(launch: Launcher, db: Proc) -> None:
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


def test_health_waits_for_the_database_and_a_killed_one_recovers(launch: Launcher) -> None:
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
    poll("every postgres process gone", lambda: not db.group_alive(), within_s=5)
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
    """postgres.py as a module (targets/ is not a package); dataclasses need it in sys.modules."""
    spec = importlib.util.spec_from_file_location("bulkhead_postgres", TARGET / "postgres.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_postgres_wrapper_names_what_is_missing(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    wrapper = load_wrapper(monkeypatch)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(wrapper.SetupError, match="apt-get install postgresql"):
        wrapper.find_bindir({"PATH": str(empty)}, lib_root=empty)

    def run(**env: str) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items() if k not in ("PORT", "DATA_DIR", "PG_BINDIR")}
        return subprocess.run([sys.executable, str(TARGET / "postgres.py")], env={**base, **env},
                              capture_output=True, text=True, timeout=20)

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
def test_app_bad_env_exits_2_naming_the_variable(launch: Launcher, env: dict[str, str],
                                                 named: str) -> None:
    settings = {"CRITICAL_ADDR": "127.0.0.1:1", "REPORTS_ADDR": "127.0.0.1:1", **env}
    proc = launch.start("app", "service.py", **settings)
    assert proc.popen.wait(timeout=10) == 2
    assert named in proc.log.read_text()
