"""The env contract of front and dep, read and validated at start.

A typo in topology.toml (``FAILURE_THRESHOLD = "five"``) must stop the
service at once with a message naming the variable, not surface as a
breaker that never opens under load. Both services exit 2 on a ConfigError.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from targetkit import envconfig

FRONT_VARIANTS = ("correct", "no-breaker", "never-closes", "opens-early", "no-window", "half-open-flood")


@dataclass(frozen=True)
class FrontConfig:
    port: int
    name: str
    dep_url: str
    dep_name: str
    variant: str
    failure_threshold: int
    window_s: float
    open_s: float
    half_open_probes: int
    fast_fail_status: int
    call_timeout_ms: int

    @property
    def hop(self) -> str:
        """The guarded link's name, as the harness names links: "front->dep"."""
        return f"{self.name}->{self.dep_name}"


@dataclass(frozen=True)
class DepConfig:
    port: int
    name: str
    arrivals_kept: int


def load_front(env: Mapping[str, str]) -> FrontConfig:
    """Front's contract; the defaults are the values of topology.toml's [spec]."""
    variant = envconfig.variant(env, FRONT_VARIANTS)
    dep_url = envconfig.url(env, "DEP_URL")
    return FrontConfig(
        port=envconfig.port(env),
        name=envconfig.text(env, "SERVICE_NAME"),
        dep_url=dep_url,
        dep_name=envconfig.text(env, "DEP_NAME", "dep"),
        variant=variant,
        failure_threshold=envconfig.integer(env, "FAILURE_THRESHOLD", 5, minimum=1),
        window_s=envconfig.seconds(env, "WINDOW_S", 3.0),
        open_s=envconfig.seconds(env, "OPEN_S", 2.0),
        half_open_probes=envconfig.integer(env, "HALF_OPEN_PROBES", 2, minimum=1),
        fast_fail_status=envconfig.integer(env, "FAST_FAIL_STATUS", 503, minimum=400, maximum=599),
        call_timeout_ms=envconfig.integer(env, "CALL_TIMEOUT_MS", 300, minimum=1),
    )


def load_dep(env: Mapping[str, str]) -> DepConfig:
    """Dep's contract: where to listen, and how many arrival stamps to keep."""
    return DepConfig(
        port=envconfig.port(env),
        name=envconfig.text(env, "SERVICE_NAME", "dep"),
        arrivals_kept=envconfig.integer(env, "ARRIVALS_KEPT", 200_000, minimum=1),
    )
