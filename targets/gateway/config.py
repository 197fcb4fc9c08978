"""The env contract of the gateway and its backends, read and checked at start.

A typo in topology.toml (``USERS_TIMEOUT_MS = "fast"``, a 10-byte JWT key)
must stop the service at once with a message naming the variable, not show
up later as a gateway that never times out or accepts forged tokens. Both
programs exit 2 on a ConfigError.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from targetkit import envconfig
from targetkit.envconfig import ConfigError

VARIANTS = ("correct", "sequential-no-timeout", "auth-bypass", "no-cache", "never-readmits", "shared-cache",
            "trusts-client-identity")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
MIN_JWT_KEY_BYTES = 32   # RFC 7518 3.2: an HS256 key is at least as long as the hash (256 bits)
MIN_GATEWAY_KEY_BYTES = 16


def port(env: Mapping[str, str]) -> int:
    if not env.get("PORT", "").strip():
        raise ConfigError("PORT is required")
    value = int(envconfig.number(env, "PORT", 0, minimum=1, whole=True))
    if value > 65535:
        raise ConfigError(f"PORT must be <= 65535, got {value}")
    return value


def secret(env: Mapping[str, str], key: str, min_bytes: int) -> bytes:
    value = envconfig.text(env, key).encode()
    if len(value) < min_bytes:
        raise ConfigError(f"{key} must be at least {min_bytes} bytes, got {len(value)}")
    return value


@dataclass(frozen=True)
class Backend:
    """One backend as the gateway sees it: where, how long to wait, how long to cache."""

    name: str
    url: str
    timeout_ms: int
    ttl_s: float        # 0: never cached
    optional: bool

    @property
    def hop(self) -> str:
        return f"gateway->{self.name}"


@dataclass(frozen=True)
class GatewayConfig:
    port: int
    name: str
    variant: str
    backends: tuple[Backend, ...]
    stale_max_s: float
    cache_max_entries: int
    jwt_key: bytes
    jwt_issuer: str
    jwt_audience: str
    jwt_leeway_s: float
    gateway_key: bytes
    bypass_route: str | None


@dataclass(frozen=True)
class BackendConfig:
    port: int
    name: str
    gateway_key: bytes
    work_ms: int
    arrivals_kept: int


def _backend(env: Mapping[str, str], name: str, optional: bool) -> Backend:
    key = name.upper()
    url = envconfig.text(env, f"{key}_URL")
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.port is None:
        raise ConfigError(f"{key}_URL must be http://host:port, got {url!r}")
    return Backend(name=name, url=url.rstrip("/"), optional=optional,
                   timeout_ms=int(envconfig.number(env, f"{key}_TIMEOUT_MS", 300, minimum=1, whole=True)),
                   ttl_s=envconfig.number(env, f"{key}_TTL_S", 0.0, minimum=0))


def load_gateway(env: Mapping[str, str]) -> GatewayConfig:
    """The gateway's contract; the defaults are those of topology.toml."""
    names = [n.strip() for n in envconfig.text(env, "BACKENDS").split(",") if n.strip()]
    bad = [n for n in names if not NAME.match(n)]
    if not names or bad or len(set(names)) != len(names):
        raise ConfigError(f"BACKENDS must list distinct lower-case names, got {env.get('BACKENDS')!r}")
    optional = {n.strip() for n in env.get("OPTIONAL", "").split(",") if n.strip()}
    if optional - set(names):
        raise ConfigError(f"OPTIONAL names {sorted(optional - set(names))}, which are not in BACKENDS")
    variant = envconfig.text(env, "VARIANT", "correct")
    if variant not in VARIANTS:
        raise ConfigError(f"VARIANT must be one of {', '.join(VARIANTS)}, got {variant!r}")
    bypass = env.get("AUTH_BYPASS_ROUTE", "").strip() or None
    if variant == "auth-bypass" and bypass not in {f"/api/{n}" for n in names} | {"/api/profile"}:
        raise ConfigError(f"AUTH_BYPASS_ROUTE must name a route (/api/profile or /api/<backend>), got {bypass!r}")
    return GatewayConfig(
        port=port(env), name=envconfig.text(env, "SERVICE_NAME", "gateway"), variant=variant,
        backends=tuple(_backend(env, n, n in optional) for n in names),
        stale_max_s=envconfig.number(env, "STALE_MAX_S", 60.0, minimum=0),
        cache_max_entries=int(envconfig.number(env, "CACHE_MAX_ENTRIES", 10000, minimum=1, whole=True)),
        jwt_key=secret(env, "JWT_KEY", MIN_JWT_KEY_BYTES), jwt_issuer=envconfig.text(env, "JWT_ISSUER"),
        jwt_audience=envconfig.text(env, "JWT_AUDIENCE"),
        jwt_leeway_s=envconfig.number(env, "JWT_LEEWAY_S", 5.0, minimum=0),
        gateway_key=secret(env, "GATEWAY_KEY", MIN_GATEWAY_KEY_BYTES),
        bypass_route=bypass if variant == "auth-bypass" else None,
    )


def load_backend(env: Mapping[str, str]) -> BackendConfig:
    return BackendConfig(
        port=port(env), name=envconfig.text(env, "SERVICE_NAME", "backend"),
        gateway_key=secret(env, "GATEWAY_KEY", MIN_GATEWAY_KEY_BYTES),
        work_ms=int(envconfig.number(env, "WORK_MS", 20, minimum=0, whole=True)),
        arrivals_kept=int(envconfig.number(env, "ARRIVALS_KEPT", 200000, minimum=1, whole=True)),
    )
