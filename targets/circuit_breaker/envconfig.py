"""The env contract of front and dep, read and validated at start.

A typo in topology.toml (``FAILURE_THRESHOLD = "five"``) must stop the
service at once with a message naming the variable, not surface as a
breaker that never opens under load. Both services exit 2 on a ConfigError.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

FRONT_VARIANTS = ("correct", "no-breaker", "never-closes")


class ConfigError(Exception):
    """A bad environment: reported on stderr, exit status 2."""


def int_env(env: Mapping[str, str], key: str, default: int | None, *,
            minimum: int, maximum: int | None = None) -> int:
    """An integer variable; absent means default (None: required)."""
    raw = env.get(key, "").strip()
    if not raw:
        if default is None:
            raise ConfigError(f"{key} is required")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be an integer, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(f"{key} must be {bound}, got {value}")
    return value


def seconds_env(env: Mapping[str, str], key: str, default: float) -> float:
    """A positive, finite number of seconds."""
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a number of seconds, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{key} must be a positive number of seconds, got {raw!r}")
    return value


def name_env(env: Mapping[str, str], key: str, default: str | None = None) -> str:
    raw = env.get(key, "").strip() or default
    if not raw:
        raise ConfigError(f"{key} is required")
    return raw


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
    variant = env.get("VARIANT", "").strip() or "correct"
    if variant not in FRONT_VARIANTS:
        raise ConfigError(f"unknown VARIANT {variant!r}; expected one of {', '.join(FRONT_VARIANTS)}")
    dep_url = name_env(env, "DEP_URL").rstrip("/")
    if not dep_url.startswith("http://"):
        raise ConfigError(f"DEP_URL must be an http:// URL, got {dep_url!r}")
    return FrontConfig(
        port=int_env(env, "PORT", None, minimum=1, maximum=65535),
        name=name_env(env, "SERVICE_NAME"),
        dep_url=dep_url,
        dep_name=name_env(env, "DEP_NAME", "dep"),
        variant=variant,
        failure_threshold=int_env(env, "FAILURE_THRESHOLD", 5, minimum=1),
        window_s=seconds_env(env, "WINDOW_S", 10.0),
        open_s=seconds_env(env, "OPEN_S", 2.0),
        half_open_probes=int_env(env, "HALF_OPEN_PROBES", 2, minimum=1),
        fast_fail_status=int_env(env, "FAST_FAIL_STATUS", 503, minimum=400, maximum=599),
        call_timeout_ms=int_env(env, "CALL_TIMEOUT_MS", 300, minimum=1),
    )


def load_dep(env: Mapping[str, str]) -> DepConfig:
    """Dep's contract: where to listen, and how many arrival stamps to keep."""
    return DepConfig(
        port=int_env(env, "PORT", None, minimum=1, maximum=65535),
        name=name_env(env, "SERVICE_NAME", "dep"),
        arrivals_kept=int_env(env, "ARRIVALS_KEPT", 200_000, minimum=1),
    )
