"""The env contract of broker, producer and consumer, read and validated at start.

A typo in topology.toml (``PUBLISH_TIMEOUT_MS = "half a second"``) must stop
the service at once with a message naming the variable, not show up later as
a producer that blocks its clients. Every service exits 2 on a ConfigError.
Defaults equal the values topology.toml sets (and repeats in ``[spec]``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# Variants are set for every service; each service acts on the ones that concern it.
VARIANTS = ("correct", "fire-and-forget", "no-outbox", "ack-before-process", "no-dedup")
BROKER_KINDS = ("nats", "rabbitmq")
HOST_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
ADDR_RE = re.compile(r"^[A-Za-z0-9.\-]+:\d{1,5}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
SUBJECT_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


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


def text_env(env: Mapping[str, str], key: str, default: str | None = None, *,
             pattern: re.Pattern[str] = NAME_RE, shape: str = "letters, digits, '-' or '_'") -> str:
    raw = env.get(key, "").strip() or default
    if not raw:
        raise ConfigError(f"{key} is required")
    if not pattern.match(raw):
        raise ConfigError(f"{key} must be {shape}, got {raw!r}")
    return raw


def data_dir_env(env: Mapping[str, str]) -> Path:
    """DATA_DIR: created if missing; what must survive a crash lives here."""
    raw = env.get("DATA_DIR", "").strip()
    if not raw:
        raise ConfigError("DATA_DIR is required (the runtime sets it: a folder that outlives restarts)")
    path = Path(raw)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"DATA_DIR {raw!r} cannot be created: {exc.strerror}") from None
    return path


def variant_env(env: Mapping[str, str]) -> str:
    variant = env.get("VARIANT", "").strip() or "correct"
    if variant not in VARIANTS:
        raise ConfigError(f"unknown VARIANT {variant!r}; expected one of {', '.join(VARIANTS)}")
    return variant


@dataclass(frozen=True)
class Link:
    """What producer and consumer share: where the broker is, and the stream (RabbitMQ: queue) they both may create."""

    kind: str  # BROKER_KIND: nats or rabbitmq
    broker_addr: str
    broker_name: str
    stream: str
    subject: str
    duplicate_window_s: float
    reconnect_wait_ms: int
    ping_interval_s: float

    @property
    def url(self) -> str:
        if self.kind == "rabbitmq":
            # The heartbeat is the AMQP side of PING_INTERVAL_S: whole seconds, at least 1.
            heartbeat = max(1, round(self.ping_interval_s))
            return f"amqp://guest:guest@{self.broker_addr}/?heartbeat={heartbeat}"
        return f"nats://{self.broker_addr}"


def load_link(env: Mapping[str, str]) -> Link:
    addr = text_env(env, "BROKER_ADDR", pattern=ADDR_RE, shape="host:port (the runtime sets it per link)")
    kind = env.get("BROKER_KIND", "").strip() or "nats"
    if kind not in BROKER_KINDS:
        raise ConfigError(f"unknown BROKER_KIND {kind!r}; expected one of {', '.join(BROKER_KINDS)}")
    return Link(
        kind=kind,
        broker_addr=addr,
        broker_name=text_env(env, "BROKER_NAME", "broker"),
        stream=text_env(env, "STREAM", "ORDERS"),
        subject=text_env(env, "SUBJECT", "orders.created", pattern=SUBJECT_RE,
                         shape="a NATS subject of dot-separated tokens"),
        duplicate_window_s=seconds_env(env, "DUPLICATE_WINDOW_S", 120.0),
        reconnect_wait_ms=int_env(env, "RECONNECT_WAIT_MS", 250, minimum=10),
        ping_interval_s=seconds_env(env, "PING_INTERVAL_S", 2.0),
    )


@dataclass(frozen=True)
class BrokerConfig:
    port: int
    host: str
    name: str
    data_dir: Path
    server_bin: str  # NATS_SERVER_BIN or RABBITMQ_SERVER_BIN; "" = look in the usual places
    schedulers: int = 0  # ERL_SCHEDULERS (RabbitMQ): scheduler threads of the Erlang VM; 0 = one per core


@dataclass(frozen=True)
class ProducerConfig:
    port: int
    host: str
    name: str
    data_dir: Path
    variant: str
    link: Link
    publish_timeout_ms: int
    outbox_max: int

    @property
    def hop(self) -> str:
        return f"{self.name}->{self.link.broker_name}"


@dataclass(frozen=True)
class ConsumerConfig:
    port: int
    host: str
    name: str
    data_dir: Path
    variant: str
    link: Link
    durable: str
    ack_wait_s: float
    process_ms: int
    fetch_batch: int

    @property
    def hop(self) -> str:
        return f"{self.name}->{self.link.broker_name}"


def port_env(env: Mapping[str, str]) -> int:
    return int_env(env, "PORT", None, minimum=1, maximum=65535)


def host_env(env: Mapping[str, str]) -> str:
    """BIND_HOST: unset on the local runtime (127.0.0.1 only); the docker runtime sets 0.0.0.0."""
    return text_env(env, "BIND_HOST", "127.0.0.1", pattern=HOST_RE, shape="an IPv4 address such as 127.0.0.1")


def load_broker(env: Mapping[str, str], *, bin_key: str = "NATS_SERVER_BIN") -> BrokerConfig:
    return BrokerConfig(port=port_env(env), host=host_env(env), name=text_env(env, "SERVICE_NAME", "broker"),
                        data_dir=data_dir_env(env), server_bin=env.get(bin_key, "").strip(),
                        schedulers=int_env(env, "ERL_SCHEDULERS", 0, minimum=0, maximum=1024))


def load_producer(env: Mapping[str, str]) -> ProducerConfig:
    return ProducerConfig(
        port=port_env(env), host=host_env(env), name=text_env(env, "SERVICE_NAME", "producer"), data_dir=data_dir_env(env),
        variant=variant_env(env), link=load_link(env),
        publish_timeout_ms=int_env(env, "PUBLISH_TIMEOUT_MS", 500, minimum=1),
        outbox_max=int_env(env, "OUTBOX_MAX", 100_000, minimum=1),
    )


def load_consumer(env: Mapping[str, str]) -> ConsumerConfig:
    return ConsumerConfig(
        port=port_env(env), host=host_env(env), name=text_env(env, "SERVICE_NAME", "consumer"), data_dir=data_dir_env(env),
        variant=variant_env(env), link=load_link(env),
        durable=text_env(env, "DURABLE", "processor"),
        ack_wait_s=seconds_env(env, "ACK_WAIT_S", 3.0),
        process_ms=int_env(env, "PROCESS_MS", 2, minimum=0),
        fetch_batch=int_env(env, "FETCH_BATCH", 32, minimum=1, maximum=1000),
    )
