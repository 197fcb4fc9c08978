"""Target programs (and servers such as etcd) run for real by the service tests.

Each program runs in its own process group on a free port, with the target
kit on PYTHONPATH as the local runtime gives it, labelled with the
launcher's run id and logging to a file. Readiness is polled with a
deadline, never slept for. ``close()`` (the ``launcher`` fixture's teardown,
also after a failure) stops every program (SIGCONT and SIGTERM to the whole
tree, SIGKILL after a grace period) and checks that none of the run's
processes is left.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from harness.errors import WaitTimeout
from harness.runtime import kit
from harness.runtime.labels import RUN_ENV, label_env, new_run_id, process_labels
from harness.runtime.local.processes import signal_group
from harness.runtime.ports import free_port
from harness.wait import NotYet, wait_until

TARGETS = Path(__file__).resolve().parents[2] / "targets"
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T], ok: Callable[[T], object] = bool, *, within_s: float,
             retry: tuple[type[BaseException], ...] = (), logs: Callable[[], str] | None = None,
             interval_s: float = 0.02) -> T:
    """Poll probe until ok(its value), and return that value; fail the test at the deadline
    with the last value (and ``logs()``). Exceptions in ``retry`` mean "not yet"."""
    def attempt() -> tuple[T]:
        value = probe()
        if ok(value):
            return (value,)
        raise NotYet(repr(value)[:2000])

    try:
        return wait_until(attempt, what=what, timeout_s=within_s, interval_s=interval_s, retry=retry)[0]
    except WaitTimeout as exc:
        pytest.fail(f"{exc}{logs() if logs else ''}")


def labelled_pids(run_id: str) -> list[int]:
    """Live processes whose environment carries HARNESS_RUN=<run_id>."""
    return [int(e.name) for e in Path("/proc").iterdir()
            if e.name.isdigit() and (process_labels(int(e.name)) or {}).get(RUN_ENV) == run_id]


def live_in_group(pgid: int) -> list[str]:
    """Processes of the group that are not zombies. A killed wrapper's children (RabbitMQ's
    epmd and VM) are reparented to init and stay zombies until it reaps them: dead, not leaked."""
    left = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            left.append(text[:text.rfind(")") + 1])
    return left


@dataclass
class Proc:
    """One started program; ``env`` is what the test set, for a restart with the same settings."""

    name: str
    port: int
    popen: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]
    stop_last: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def signal(self, sig: signal.Signals) -> None:
        """To the whole tree, as the runtime does (PostgreSQL's backends leave the group)."""
        if not signal_group(self.popen, sig):
            raise ProcessLookupError(self.popen.pid)

    def kill(self) -> int:
        """SIGKILL to the whole tree, as the runtime's crash fault does; the exit status."""
        signal_group(self.popen, signal.SIGKILL)
        return self.popen.wait(timeout=10)

    def exited(self) -> int | None:
        return self.popen.poll()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Launcher:
    """Starts programs, remembers every one, and ends them all in ``close()``."""

    def __init__(self, folder: Path, *, http_timeout_s: float = 10.0) -> None:
        self.folder, self.run_id = folder, new_run_id()
        self.procs: list[Proc] = []
        self.http = httpx.Client(trust_env=False, timeout=http_timeout_s)

    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def program(self, target: str, script: str, name: str, *, port: int | None = None,
                stop_last: bool = False, **env: Any) -> Proc:
        """``python targets/<target>/<script>``, run in its folder with PORT and env set."""
        folder = TARGETS / target
        return self.command(name, [sys.executable, str(folder / script)], port=port, cwd=folder,
                            stop_last=stop_last, **env)

    def command(self, name: str, argv: Sequence[str], *, port: int | None = None, cwd: Path | None = None,
                stop_last: bool = False, **env: Any) -> Proc:
        """Any program; PORT comes before env, so env may override it."""
        port = port or free_port()
        own = {"PORT": str(port), **{k: str(v) for k, v in env.items()}}
        full = {**os.environ, **own, **label_env(self.run_id),
                "PYTHONPATH": kit.python_path(own.get("PYTHONPATH", os.environ.get("PYTHONPATH")))}
        log = self.folder / f"{name}-{port}-{len(self.procs)}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(list(argv), env=full, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=cwd, start_new_session=True)
        proc = Proc(name, port, popen, log, own, stop_last)
        self.procs.append(proc)
        return proc

    def healthy(self, *procs: Proc, within_s: float = 10.0, path: str = "/health",
                ok: Callable[[httpx.Response], object] = lambda resp: resp.status_code == 200) -> None:
        """Poll each one's health path until ok(answer), all within one deadline; fail naming
        the one that did not answer, or that exited (with its log)."""
        deadline = time.monotonic() + within_s
        for proc in procs:
            def answer(proc: Proc = proc) -> httpx.Response:
                self._fail_if_exited(proc)
                return self.http.get(f"{proc.url}{path}", timeout=1.0)
            wait_for(f"{proc.name} at {proc.url}{path}", answer, ok, retry=(httpx.TransportError,),
                     within_s=max(0.0, deadline - time.monotonic()))

    def listening(self, proc: Proc, *, within_s: float) -> float:
        """Poll until the port accepts a connection; the seconds it took."""
        started = time.monotonic()

        def accepts() -> bool:
            self._fail_if_exited(proc)
            socket.create_connection(("127.0.0.1", proc.port), timeout=0.5).close()
            return True

        wait_for(f"{proc.name} listening on {proc.addr}", accepts, retry=(OSError,), within_s=within_s,
                 interval_s=0.005, logs=lambda: "\n" + proc.log_text()[-2000:])
        return time.monotonic() - started

    def stop(self, proc: Proc, *, grace_s: float = 5.0) -> int:
        """SIGCONT and SIGTERM to the tree, SIGKILL after grace_s; its exit status, once its group is gone."""
        return self.stop_all([proc], grace_s=grace_s)[0]

    def stop_all(self, procs: Iterable[Proc], *, grace_s: float = 5.0) -> list[int]:
        """Like stop, for all at once (each drains in its own time); their exit statuses."""
        procs = list(procs)
        for proc in procs:
            if proc.exited() is None:
                signal_group(proc.popen, signal.SIGCONT)  # a paused process cannot act on SIGTERM
                signal_group(proc.popen, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        codes = []
        for proc in procs:
            try:
                proc.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            codes.append(proc.kill())  # also what is left of its tree after a clean exit
            wait_for(f"{proc.name}'s process group gone", lambda: live_in_group(proc.popen.pid),
                     lambda left: not left, within_s=5)
        return codes

    def close(self) -> None:
        """Stop everything (those marked stop_last after the rest), then check nothing of the run is left."""
        try:
            self.stop_all(p for p in self.procs if not p.stop_last)
            self.stop_all(p for p in self.procs if p.stop_last)
        finally:
            self.http.close()
        wait_for(f"every process of run {self.run_id} gone", lambda: labelled_pids(self.run_id),
                 lambda left: not left, within_s=5)

    def logs(self) -> str:
        """Every program's log tail, for a failure message."""
        return "\n" + "\n".join(
            f"--- {p.name} pid {p.popen.pid} port {p.port} exit {p.exited()} ---\n{p.log_text()[-4000:]}"
            for p in self.procs)

    @staticmethod
    def _fail_if_exited(proc: Proc) -> None:
        if proc.exited() is not None:
            pytest.fail(f"{proc.name} exited {proc.exited()}: {proc.log_text()[-2000:]}")
