"""The local runtime against real processes (Python's own http.server)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from harness.errors import ReadinessTimeout, ServiceError
from harness.runtime.labels import OWNER_ENV, RUN_ENV
from harness.runtime.local import LocalRuntime
from harness.runtime.processes import sweep_dead_runs
from harness.runtime.readiness import probe_once
from harness.topology import Link, Service, Topology

from .conftest import labelled_pids

WEB = ("{python}", "-m", "http.server", "{port}", "--bind", "127.0.0.1")


def pair(**web: object) -> Topology:
    web = {"health": "/", **web}
    return Topology(
        name="pair",
        services={"web": Service("web", command=WEB, **web), "db": Service("db", command=WEB, health="tcp")},
        links=(Link("web", "db"),),
        entry="web",
    )


def runtime(topo, run_id, toxiproxy, tmp_path) -> LocalRuntime:
    return LocalRuntime(topology=topo, run_id=run_id, toxiproxy=toxiproxy, log_dir=tmp_path / "logs")


def test_up_wires_links_through_proxies_and_down_leaves_nothing(run_id, toxiproxy, tmp_path):
    with runtime(pair(), run_id, toxiproxy, tmp_path) as rt:
        assert httpx.get(rt.entry_url()).status_code == 200
        (proxy,) = rt.link_proxies("web->db")
        assert httpx.get(f"http://{proxy.listen}/").status_code == 200  # db through its proxy
        env = Path(f"/proc/{rt.instances['web'][0].process.pid}/environ").read_bytes()
        assert f"DB_URL=http://{proxy.listen}".encode() in env
        assert len(labelled_pids(run_id)) >= 3  # web, db, toxiproxy
    assert toxiproxy.proxies() == {}
    assert len(labelled_pids(run_id)) == 1  # only toxiproxy is left, until its fixture ends


def test_pause_resume_kill_start(run_id, toxiproxy, tmp_path):
    with runtime(pair(), run_id, toxiproxy, tmp_path) as rt:
        port = rt.instances["web"][0].port
        rt.pause("web")
        assert probe_once("127.0.0.1", port, "/")[0] is False  # accepted by the kernel, never answered
        rt.resume("web")
        assert probe_once("127.0.0.1", port, "/")[0] is True
        rt.kill("web")
        assert not rt.is_running("web")
        rt.start("web")
        assert rt.instances["web"][0].port == port and probe_once("127.0.0.1", port, "/")[0]


def test_scale_out_and_in_adds_and_removes_proxies(run_id, toxiproxy, tmp_path):
    with runtime(pair(), run_id, toxiproxy, tmp_path) as rt:
        rt.scale("db", 3)
        assert [p.instance for p in rt.link_proxies("web->db")] == [0, 1, 2]
        assert len(toxiproxy.proxies()) == 3
        rt.scale("db", 1)
        assert len(toxiproxy.proxies()) == 1 and len(rt.instances["db"]) == 1
        with pytest.raises(ServiceError, match="keep at least 1"):
            rt.scale("db", 0)


def test_never_healthy_names_service_address_and_log(run_id, toxiproxy, tmp_path):
    topo = pair(health="/nope", ready_timeout_s=1.0)
    with pytest.raises(ReadinessTimeout) as err:
        runtime(topo, run_id, toxiproxy, tmp_path).up()
    text = str(err.value)
    assert "service web[0] not healthy on 127.0.0.1:" in text and "404" in text and "Log tail" in text
    assert toxiproxy.proxies() == {}  # a failed up cleans up after itself


def test_missing_command_and_early_exit_are_named(run_id, toxiproxy, tmp_path):
    missing = Topology(name="m", services={"x": Service("x", command=("/no/such/binary",))}, entry="x")
    with pytest.raises(ServiceError, match=r"service x: cannot run '/no/such/binary'"):
        runtime(missing, run_id, toxiproxy, tmp_path).up()
    exits = Topology(name="e", services={"x": Service("x", command=("{python}", "-c", "import sys; print('boom'); sys.exit(3)"))}, entry="x")
    with pytest.raises(ServiceError, match=r"(?s)exited with code 3.*boom"):
        runtime(exits, run_id, toxiproxy, tmp_path).up()


def test_sweep_kills_processes_of_dead_runs_only(run_id):
    dead_owner = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_owner.wait()
    env = {**os.environ, RUN_ENV: "dead-run", OWNER_ENV: str(dead_owner.pid)}
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env, start_new_session=True)
    live_env = {**os.environ, RUN_ENV: run_id, OWNER_ENV: str(os.getpid())}
    mine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=live_env, start_new_session=True)
    try:
        deadline = time.monotonic() + 5
        while not labelled_pids("dead-run") and time.monotonic() < deadline:
            time.sleep(0.02)  # poll: the child's environ is readable once it runs
        killed = sweep_dead_runs()
        assert orphan.pid in killed and mine.pid not in killed
        assert orphan.wait(timeout=5) == -signal.SIGKILL
        assert mine.poll() is None
    finally:
        for p in (orphan, mine):
            p.kill()
            p.wait()


def test_labelled_links_get_their_own_proxies_and_variables(run_id, toxiproxy, tmp_path):
    topo = Topology(
        name="pools",
        services={"web": Service("web", command=WEB, health="/"), "db": Service("db", command=WEB, health="tcp")},
        links=(Link("web", "db", label="critical"), Link("web", "db", label="reports")),
        entry="web",
    )
    with runtime(topo, run_id, toxiproxy, tmp_path) as rt:
        (critical,) = rt.link_proxies("web->db:critical")
        (reports,) = rt.link_proxies("web->db:reports")
        assert critical.listen != reports.listen and critical.upstream == reports.upstream
        inst = rt.instances["web"][0]
        env = Path(f"/proc/{inst.process.pid}/environ").read_bytes()
        assert f"CRITICAL_ADDR={critical.listen}".encode() in env
        assert f"REPORTS_ADDR={reports.listen}".encode() in env
        assert f"DATA_DIR={inst.data_dir}".encode() in env and inst.data_dir.is_dir()


# A server whose worker leaves the process group, as PostgreSQL's backends do (setsid).
ESCAPER = (
    "import os, subprocess, sys, http.server\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import os, time\\nos.setsid()\\nwhile True: time.sleep(0.05)'])\n"
    "open(os.environ['DATA_DIR'] + '/child.pid', 'w').write(str(child.pid))\n"
    "http.server.ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])), http.server.SimpleHTTPRequestHandler).serve_forever()\n"
)


def _state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2]


def test_pause_and_kill_reach_children_that_left_the_group(run_id, toxiproxy, tmp_path):
    script = tmp_path / "escaper.py"
    script.write_text(ESCAPER)
    topo = Topology(name="escape", services={"web": Service("web", command=("{python}", str(script)), health="/")},
                    entry="web")
    with runtime(topo, run_id, toxiproxy, tmp_path) as rt:
        inst = rt.instances["web"][0]
        child = int((inst.data_dir / "child.pid").read_text())
        _until(lambda: os.getpgid(child) != inst.process.pid, "the child never left the group")  # it runs setsid itself
        rt.pause("web")
        _until(lambda: _state(child) == "T", "the child was not stopped")  # signals land asynchronously
        rt.resume("web")
        _until(lambda: _state(child) != "T", "the child was not resumed")
        rt.kill("web")
        _until(lambda: not Path(f"/proc/{child}").exists() or _state(child) == "Z", "the child outlived a kill")


def _until(predicate, message: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, message
        time.sleep(0.01)  # poll
