"""Fixtures of the harness's own tests: a real Toxiproxy server, a run id
whose processes must all be gone when a test ends, and a launcher of target
programs that ends them all."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from harness.runtime.labels import new_run_id
from harness.runtime.toxiproxy_hosts import LocalToxiproxy
from harness.toxiproxy import ToxiproxyClient

from .launcher import Launcher, labelled_pids


@pytest.fixture
def run_id() -> Iterator[str]:
    rid = new_run_id()
    yield rid
    assert labelled_pids(rid) == [], "processes of the test's run are still alive"


@pytest.fixture
def toxiproxy(tmp_path: Path, run_id: str) -> Iterator[ToxiproxyClient]:
    with LocalToxiproxy(run_id=run_id, log_path=tmp_path / "toxiproxy.log") as client:
        yield client


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    """Starts target programs; at teardown, also after a failure, every one is stopped."""
    with Launcher(tmp_path) as started:
        yield started
