"""Fixtures of the harness's own tests: a real Toxiproxy server and a
run id whose processes must all be gone when a test ends."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from harness.runtime.labels import new_run_id
from harness.toxiproxy import ToxiproxyClient, ToxiproxyServer


def labelled_pids(run_id: str) -> list[int]:
    from harness.runtime.labels import process_labels

    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            labels = process_labels(int(entry.name))
            if labels and labels.get("HARNESS_RUN") == run_id:
                pids.append(int(entry.name))
    return pids


@pytest.fixture
def run_id() -> Iterator[str]:
    rid = new_run_id()
    yield rid
    assert labelled_pids(rid) == [], "processes of the test's run are still alive"


@pytest.fixture
def toxiproxy(tmp_path: Path, run_id: str) -> Iterator[ToxiproxyClient]:
    with ToxiproxyServer(run_id=run_id, log_path=tmp_path / "toxiproxy.log") as client:
        yield client
