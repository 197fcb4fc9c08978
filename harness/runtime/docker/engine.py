"""The Docker engine the docker runtime talks to: one client per process,
its errors translated into ours with what to do about them.

Starting an engine is set-up's job (``make docker-engine``, which runs
``docker/engine.sh``), not the library's: a test run must not start daemons
as a side effect.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ...errors import SetupError

if TYPE_CHECKING:
    import docker

_lock = threading.Lock()
_client: "docker.DockerClient | None" = None

HINT = (
    "Start one with `make docker-engine` (installs Debian's docker.io if missing and starts dockerd, "
    "log in /var/log/dockerd.log), or point DOCKER_HOST at a running engine."
)


def client() -> "docker.DockerClient":
    """The process's Docker client; the API version is negotiated (never pinned)."""
    global _client
    with _lock:
        if _client is None:
            _client = connect()
        return _client


def connect(*, timeout_s: float = 120.0) -> "docker.DockerClient":
    """A new client that has answered a ping, or SetupError naming what failed."""
    import docker
    from docker.errors import DockerException

    try:
        c = docker.from_env(timeout=int(timeout_s))
        c.ping()
        return c
    except DockerException as exc:
        why = _first_line(exc)
    _collect_failed_client()
    raise SetupError(f"no Docker engine answers ({why}). {HINT}")


def _collect_failed_client() -> None:
    """The SDK leaves the socket of a failed version negotiation open; collect
    it now, quietly, rather than as a ResourceWarning somewhere later."""
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def available() -> tuple[bool, str]:
    """(True, server version) when an engine answers, else (False, why)."""
    try:
        return True, str(client().version().get("Version", "?"))
    except SetupError as exc:
        return False, str(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
