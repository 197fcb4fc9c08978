"""What only the local backend does, against real processes: the sweep of
dead runs' processes, signals that reach children which left the process
group, and a command that cannot run. What both backends share is
tests/service/test_runtimes.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import ServiceError
from harness.runtime import Deployment, make_runtime
from harness.runtime.labels import OWNER_ENV, RUN_ENV
from harness.runtime.local.processes import sweep_dead_processes
from harness.topology import Link, Service, Topology
from harness.wait import wait_until

from .conftest import labelled_pids

WEB = ("{python}", "-m", "http.server", "{port}", "--bind", "127.0.0.1")


def runtime(topo, run_id, toxiproxy, tmp_path) -> Deployment:
    return make_runtime("local", topo, run_id=run_id, toxiproxy=toxiproxy, log_dir=tmp_path / "logs")


def test_a_command_that_cannot_run_is_named(run_id, toxiproxy, tmp_path):
    missing = Topology(name="m", services={"x": Service("x", command=("/no/such/binary",))}, entry="x")
    with pytest.raises(ServiceError, match=r"service x: cannot run '/no/such/binary'"):
        runtime(missing, run_id, toxiproxy, tmp_path).up()
    image_only = Topology(name="i", services={"x": Service("x", image="some/image:1")}, entry="x")
    with pytest.raises(ServiceError, match=r"service x: the local runtime needs a 'command'"):
        runtime(image_only, run_id, toxiproxy, tmp_path).up()


def test_sweep_kills_processes_of_dead_runs_only(run_id):
    dead_owner = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_owner.wait()
    env = {**os.environ, RUN_ENV: "dead-run", OWNER_ENV: str(dead_owner.pid)}
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env, start_new_session=True)
    live_env = {**os.environ, RUN_ENV: run_id, OWNER_ENV: str(os.getpid())}
    mine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=live_env, start_new_session=True)
    try:
        wait_until(lambda: labelled_pids("dead-run"), what="the orphan's labels readable", timeout_s=5)
        killed = sweep_dead_processes()
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
        env = Path(f"/proc/{inst.handle.pid}/environ").read_bytes()
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
        _until(lambda: os.getpgid(child) != inst.handle.pid, "the child never left the group")  # it runs setsid itself
        rt.pause("web")
        _until(lambda: _state(child) == "T", "the child was not stopped")  # signals land asynchronously
        rt.resume("web")
        _until(lambda: _state(child) != "T", "the child was not resumed")
        rt.kill("web")
        _until(lambda: not Path(f"/proc/{child}").exists() or _state(child) == "Z", "the child outlived a kill")


def _until(predicate, message: str, timeout_s: float = 5.0) -> None:
    wait_until(predicate, what=message, timeout_s=timeout_s, interval_s=0.01)
