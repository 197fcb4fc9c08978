"""The env contract of broker, producer and consumer, read and validated at start.

A typo in topology.toml (``PUBLISH_TIMEOUT_MS = "half a second"``) must stop
the service at once with a message naming the variable, not show up later as
a producer that blocks its clients. Every service exits 2 on a ConfigError.
Defaults equal the values topology.toml sets (and repeats in ``[spec]``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from targetkit import envconfig

# Variants are set for every service; each service acts on the ones that concern it.
VARIANTS = ("correct", "fire-and-forget", "no-outbox", "ack-before-process", "no-dedup", "in-memory-outbox")
BROKER_KINDS = ("nats", "rabbitmq")
HOST_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
ADDR_RE = re.compile(r"^[A-Za-z0-9.\-]+:\d{1,5}$")
SUBJECT_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


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
    return Link(
        broker_addr=envconfig.text(env, "BROKER_ADDR", pattern=ADDR_RE,
                                   shape="host:port (the runtime sets it per link)"),
        kind=envconfig.choice(env, "BROKER_KIND", BROKER_KINDS, "nats"),
        broker_name=envconfig.name(env, "BROKER_NAME", "broker"),
        stream=envconfig.name(env, "STREAM", "ORDERS"),
        subject=envconfig.text(env, "SUBJECT", "orders.created", pattern=SUBJECT_RE,
                     shape="a NATS subject of dot-separated tokens"),
        duplicate_window_s=envconfig.seconds(env, "DUPLICATE_WINDOW_S", 120.0),
        reconnect_wait_ms=envconfig.integer(env, "RECONNECT_WAIT_MS", 250, minimum=10),
        ping_interval_s=envconfig.seconds(env, "PING_INTERVAL_S", 2.0),
    )


@dataclass(frozen=True)
class BrokerConfig:
    port: int
    host: str
    name: str
    data_dir: Path
    server_bin: str  # NATS_SERVER_BIN or RABBITMQ_SERVER_BIN; "" = look in the usual places
    schedulers: int = 0  # ERL_SCHEDULERS (RabbitMQ): scheduler threads of the Erlang VM; 0 = one per core
    nice: int = 0  # NICE (RabbitMQ): how much lower the node's CPU priority is than the wrapper's


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


def host_env(env: Mapping[str, str]) -> str:
    """BIND_HOST: unset on the local runtime (127.0.0.1 only); the docker runtime sets 0.0.0.0."""
    return envconfig.text(env, "BIND_HOST", "127.0.0.1", pattern=HOST_RE,
                          shape="an IPv4 address such as 127.0.0.1")


def load_broker(env: Mapping[str, str], *, bin_key: str = "NATS_SERVER_BIN") -> BrokerConfig:
    return BrokerConfig(port=envconfig.port(env), host=host_env(env),
                        name=envconfig.name(env, "SERVICE_NAME", "broker"), data_dir=envconfig.data_dir(env),
                        server_bin=env.get(bin_key, "").strip(),
                        schedulers=envconfig.integer(env, "ERL_SCHEDULERS", 0, minimum=0, maximum=1024),
                        nice=envconfig.integer(env, "NICE", 0, minimum=0, maximum=19))


def load_producer(env: Mapping[str, str]) -> ProducerConfig:
    return ProducerConfig(
        port=envconfig.port(env), host=host_env(env), name=envconfig.name(env, "SERVICE_NAME", "producer"),
        data_dir=envconfig.data_dir(env), variant=envconfig.variant(env, VARIANTS), link=load_link(env),
        publish_timeout_ms=envconfig.integer(env, "PUBLISH_TIMEOUT_MS", 500, minimum=1),
        outbox_max=envconfig.integer(env, "OUTBOX_MAX", 100_000, minimum=1),
    )


def load_consumer(env: Mapping[str, str]) -> ConsumerConfig:
    return ConsumerConfig(
        port=envconfig.port(env), host=host_env(env), name=envconfig.name(env, "SERVICE_NAME", "consumer"),
        data_dir=envconfig.data_dir(env), variant=envconfig.variant(env, VARIANTS), link=load_link(env),
        durable=envconfig.name(env, "DURABLE", "processor"),
        ack_wait_s=envconfig.seconds(env, "ACK_WAIT_S", 3.0),
        process_ms=envconfig.integer(env, "PROCESS_MS", 2, minimum=0),
        fetch_batch=envconfig.integer(env, "FETCH_BATCH", 32, minimum=1, maximum=1000),
    )
