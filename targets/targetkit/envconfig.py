"""Readers of a service's environment contract, each failing with a message
that names the variable.

A typo in a topology file (``FAILURE_THRESHOLD = "five"``) must stop the
service at once, not surface later as a pattern that misbehaves under load.
Every reader takes the environment as a mapping, so a target's whole
contract can be read (and tested) from a plain dict.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from pathlib import Path

NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
NAME_SHAPE = "letters, digits, '-' or '_'"


class ConfigError(Exception):
    """A bad environment: reported on stderr, and the program exits (program.run)."""


def _required(key: str, hint: str) -> ConfigError:
    return ConfigError(f"{key} is required" + (f" ({hint})" if hint else ""))


def text(env: Mapping[str, str], key: str, default: str | None = None, *, hint: str = "",
         pattern: re.Pattern[str] | None = None, shape: str = "") -> str:
    """A stripped string; absent means default (None: required, ``hint`` says what it is).
    With ``pattern`` it must match, else "KEY must be <shape>"."""
    value = env.get(key, "").strip() or default
    if not value:
        raise _required(key, hint)
    if pattern is not None and not pattern.match(value):
        raise ConfigError(f"{key} must be {shape}, got {value!r}")
    return value


def name(env: Mapping[str, str], key: str, default: str | None = None) -> str:
    """A name of letters, digits, '-' or '_' (a stream, a queue, a service)."""
    return text(env, key, default, pattern=NAME_RE, shape=NAME_SHAPE)


def integer(env: Mapping[str, str], key: str, default: int | None, *,
            minimum: int, maximum: int | None = None) -> int:
    """An integer within bounds; absent means default (None: required)."""
    raw = env.get(key, "").strip()
    if not raw:
        if default is None:
            raise _required(key, "")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be an integer, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(f"{key} must be {bound}, got {value}")
    return value


def port(env: Mapping[str, str]) -> int:
    """PORT: required, 1 to 65535 (the runtime sets it)."""
    return integer(env, "PORT", None, minimum=1, maximum=65535)


def number(env: Mapping[str, str], key: str, default: float, *, minimum: float,
           whole: bool = False) -> float:
    """A finite number >= minimum (an integer when whole); absent means default."""
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        kind = "an integer" if whole else "a number"
        raise ConfigError(f"{key} must be {kind}, got {raw!r}") from None
    if not math.isfinite(value) or value < minimum:
        raise ConfigError(f"{key} must be >= {minimum:g}, got {raw!r}")
    return value


def seconds(env: Mapping[str, str], key: str, default: float) -> float:
    """A positive, finite number of seconds; absent means default."""
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


def choice(env: Mapping[str, str], key: str, choices: Collection[str], default: str) -> str:
    """One of choices; absent means default."""
    value = env.get(key, "").strip() or default
    if value not in choices:
        raise ConfigError(f"unknown {key} {value!r}; expected one of {', '.join(choices)}")
    return value


def variant(env: Mapping[str, str], variants: Collection[str]) -> str:
    """VARIANT, one of the target's variants; absent means "correct"."""
    return choice(env, "VARIANT", variants, "correct")


def url(env: Mapping[str, str], key: str, default: str | None = None, *,
        schemes: tuple[str, ...] = ("http",), shape: str = "an http:// URL") -> str:
    """A URL without its trailing '/', of one of schemes; absent means default (None: required)."""
    raw = env.get(key, "").strip()
    if not raw and default is None:
        raise _required(key, "")
    value = raw.rstrip("/")
    if not value and default is not None:
        return default
    if not value.startswith(tuple(f"{s}://" for s in schemes)):
        raise ConfigError(f"{key} must be {shape}, got {value!r}")
    return value


def address(env: Mapping[str, str], key: str, *, hint: str = "") -> tuple[str, int]:
    """host:port, required (``hint`` says whose), as (host, port)."""
    raw = env.get(key, "").strip()
    host, sep, port_text = raw.rpartition(":")
    if not raw:
        raise _required(key, hint)
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{key} must be host:port, got {raw!r}")
    return host, int(port_text)


def data_dir(env: Mapping[str, str]) -> Path:
    """DATA_DIR, created if missing: what must survive a crash lives there."""
    raw = env.get("DATA_DIR", "").strip()
    if not raw:
        raise _required("DATA_DIR", "the runtime sets it: a folder that outlives restarts")
    path = Path(raw)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"DATA_DIR {raw!r} cannot be created: {exc.strerror}") from None
    return path
