"""Unit tests start no process: any attempt fails the test that made it."""

from __future__ import annotations

import os
import subprocess
from typing import Any, Iterator

import pytest


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a unit test started a process; it belongs in tests/service")


def _refuse_popen(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
    raise AssertionError(f"a unit test started a process ({args!r}); it belongs in tests/service")


@pytest.fixture(autouse=True)
def no_processes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse_popen)
    monkeypatch.setattr(subprocess.Popen, "__del__", lambda self: None)  # a refused Popen has nothing to reap
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system", "execv", "execve"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, _refuse)
    yield
