"""Runs Locust against a target as a child process, via its CLI.

Why a subprocess and not Locust's Python API: `import locust` runs gevent's
monkey.patch_all() on the whole process. Anything imported before it —
ssl, requests, docker, toxiproxy — ends in a RecursionError in ssl, and
everything after it runs on gevent's patched sockets, threads and sleeps.
A separate process also keeps the harness's clocks, threads and fault
schedule free of gevent's cooperative scheduling, and lets teardown end
the load with one signal to one process group.

The child is labelled with the run id (label_env), so the sweep finds it
if the harness dies, and only ever targets a loopback address.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from harness.errors import LoadError, SafetyError, SetupError
from harness.load.spec import LoadSpec
from harness.runtime.labels import label_env
from harness.wait import wait_until

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
SPEC_ENV = "HARNESS_LOAD_SPEC"
REQUESTS_FILE_ENV = "HARNESS_REQUESTS_FILE"
LOG_NAME = "locust.log"
STATS_PREFIX = "locust-stats"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
STOP_GRACE_S = 5.0  # beyond the in-flight requests' stop timeout
KILL_WAIT_S = 5.0
LOG_TAIL_LINES = 20


def check_host(host_url: str) -> None:
    """Refuses any target that is not this machine's loopback address."""
    parts = urlsplit(host_url)
    if parts.scheme not in ("http", "https"):
        raise SafetyError(f"load host {host_url!r} must be an http:// or https:// URL")
    if parts.hostname not in LOOPBACK_HOSTS:
        raise SafetyError(
            f"load host {host_url!r} is not a loopback address; the harness only sends load to "
            f"{', '.join(sorted(LOOPBACK_HOSTS))}"
        )


def check_locust() -> None:
    """Fails early with the fix when the venv has no Locust (without importing it)."""
    if importlib.util.find_spec("locust") is None:
        raise SetupError(f"locust is not installed for {sys.executable}: run `make setup`")


class LoadRun:
    """One Locust child process driving `spec` against `host_url`.

    Use as a context manager: entering starts it, leaving always stops it.
    Rows go to `requests_file`; Locust's output to `log_dir/locust.log` and
    its final stats to `log_dir/locust-stats.json`.

    When the load ends, requests still in flight are let finish (Locust's
    --stop-timeout, ceil(timeout_s)) so every request sent has its row; a run
    can therefore outlast spec.total_duration_s by up to that much.
    """

    def __init__(
        self,
        spec: LoadSpec,
        *,
        host_url: str,
        requests_file: Path,
        log_dir: Path,
        run_id: str,
    ) -> None:
        check_host(host_url)
        self.spec = spec
        self.host_url = host_url.rstrip("/")
        self.requests_file = Path(requests_file)
        self.log_dir = Path(log_dir)
        self.run_id = run_id
        self.log_path = self.log_dir / LOG_NAME
        self.stats_path = self.log_dir / f"{STATS_PREFIX}.json"
        self.started_ns: int | None = None
        self._rows_offset = 0  # the file may hold earlier runs' rows; ours start here
        self._proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        cmd = [
            sys.executable, "-m", "locust",
            "-f", str(LOCUSTFILE),
            "--headless",
            "-H", self.host_url,
            "--only-summary",
            "--exit-code-on-error", "0",
            "--json-file", str(self.log_dir / STATS_PREFIX),
            "--loglevel", "WARNING",
            "--stop-timeout", f"{self._stop_timeout_s()}s",
        ]  # fmt: skip
        if not self.spec.stages:
            cmd += ["-u", str(self.spec.users), "-r", str(self.spec.spawn_rate), "-t", f"{int(self.spec.duration_s)}s"]
        return cmd

    def environment(self) -> dict[str, str]:
        """os.environ minus LOCUST_* settings (they would override ours), plus labels and spec."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
        env.update(label_env(self.run_id))
        env[SPEC_ENV] = self.spec.to_json()
        env[REQUESTS_FILE_ENV] = str(self.requests_file.resolve())
        return env

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self._proc is not None:
            raise LoadError(f"load run against {self.host_url} was already started")
        check_locust()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.requests_file.parent.mkdir(parents=True, exist_ok=True)
        self.requests_file.touch()
        self._rows_offset = self.requests_file.stat().st_size
        with self.log_path.open("ab") as log:
            self.started_ns = time.time_ns()
            try:
                self._proc = subprocess.Popen(
                    self.command(),
                    env=self.environment(),
                    cwd=self.log_dir,  # no stray locust.conf / pyproject.toml settings
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as e:
                raise LoadError(f"could not start locust against {self.host_url}: {e}") from e

    def wait_first_request(self, *, timeout_s: float) -> None:
        """Returns once the first request row is on disk: the load is really flowing."""
        proc = self._require_started()

        def flowing() -> bool:
            if self._has_a_row():
                return True
            code = proc.poll()
            if code is not None and not self._has_a_row():  # a row may land just before the exit
                raise LoadError(f"locust exited with code {code} before any request to {self.host_url}; "
                                f"log {self.log_path}:\n{self.log_tail()}")
            return False

        wait_until(flowing, timeout_s=timeout_s, interval_s=0.02, error=LoadError, log_tail=self.log_tail,
                   what=f"no request to {self.host_url} recorded in {self.requests_file}",
                   hint=f"Locust's log is {self.log_path}.")

    def wait(self, *, timeout_s: float) -> int:
        """Waits for the run to end by itself (its duration plus, at most, the
        stop timeout for in-flight requests); returns Locust's exit code."""
        proc = self._require_started()
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.stop()
            raise LoadError(
                f"locust against {self.host_url} did not finish within {timeout_s:g}s "
                f"(expected about {self.spec.total_duration_s:g}s of load); killed it. "
                f"log {self.log_path}:\n{self.log_tail()}"
            ) from None

    def stop(self) -> None:
        """SIGTERM to the group (Locust lets in-flight requests finish, writes its
        stats), SIGKILL if it lingers past that. Idempotent.

        Not SIGINT: that becomes a KeyboardInterrupt in whichever greenlet runs,
        and when it lands in Locust's spawner (`except KeyboardInterrupt:
        self.quit()`) the process hangs until SIGKILL, without stats. Locust
        handles SIGTERM with a gevent signal handler that runs its normal
        shutdown, wherever the signal lands.
        """
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        self._signal_group(signal.SIGTERM)
        try:
            proc.wait(timeout=self._stop_timeout_s() + STOP_GRACE_S)
            return
        except subprocess.TimeoutExpired:
            pass
        self._signal_group(signal.SIGKILL)
        try:
            proc.wait(timeout=KILL_WAIT_S)
        except subprocess.TimeoutExpired as e:
            raise LoadError(f"locust pid {proc.pid} survived SIGKILL; log {self.log_path}") from e

    def summary(self) -> dict[str, Any]:
        """Totals from Locust's final stats: requests, failures, rps (empty before the run ends)."""
        try:
            entries = json.loads(self.stats_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        total = sum(int(e.get("num_requests", 0)) for e in entries)
        failures = sum(int(e.get("num_failures", 0)) for e in entries)
        starts = [e["start_time"] for e in entries if e.get("start_time")]
        ends = [e["last_request_timestamp"] for e in entries if e.get("last_request_timestamp")]
        span_s = max(ends) - min(starts) if starts and ends else 0.0
        return {
            "requests": total,
            "failures": failures,
            "rps": total / span_s if span_s > 0 else 0.0,
            "by_name": {f"{e.get('method')} {e.get('name')}": _entry_totals(e) for e in entries},
        }

    def log_tail(self, *, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def _stop_timeout_s(self) -> int:
        """Lets in-flight requests finish (and get their row) when the run ends;
        Locust takes whole seconds here."""
        return max(1, math.ceil(self.spec.timeout_s))

    def _has_a_row(self) -> bool:
        try:
            with self.requests_file.open("rb") as f:
                f.seek(self._rows_offset)
                return b"\n" in f.read(65536)
        except OSError:
            return False

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        try:
            os.killpg(self._proc.pid, sig)
        except ProcessLookupError:
            pass

    def _require_started(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise LoadError(f"load run against {self.host_url} was not started")
        return self._proc

    def __enter__(self) -> LoadRun:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _entry_totals(entry: Mapping[str, Any]) -> dict[str, int]:
    return {"requests": int(entry.get("num_requests", 0)), "failures": int(entry.get("num_failures", 0))}
