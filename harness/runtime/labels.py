"""Labels that mark every process a run starts, so teardown and the sweep
at start find them: two environment variables, read back from /proc."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

RUN_ENV = "HARNESS_RUN"
OWNER_ENV = "HARNESS_OWNER_PID"


def new_run_id() -> str:
    """Sortable by time, unique across concurrent runs."""
    import time

    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def label_env(run_id: str) -> dict[str, str]:
    """Environment entries that label a child process as this run's."""
    return {RUN_ENV: run_id, OWNER_ENV: str(os.getpid())}


def process_labels(pid: int) -> dict[str, str] | None:
    """The run labels of a live process, or None if it has none or is gone."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    found: dict[str, str] = {}
    for item in raw.split(b"\0"):
        key, _, value = item.partition(b"=")
        if key in (RUN_ENV.encode(), OWNER_ENV.encode()):
            found[key.decode()] = value.decode(errors="replace")
    return found if RUN_ENV in found else None
