"""What producer and consumer need from a broker, whichever it is (BROKER_KIND: nats or rabbitmq).

The pattern's logic (publish-or-outbox, record-then-ack, de-duplication by
id) lives in producer.py and consumer.py once; natslink.py and
rabbitlink.py each turn it into their broker's calls. A publish returns
only when the broker has the message durably (JetStream's ack, RabbitMQ's
publisher confirm) and raises otherwise; a delivery is acked only when the
consumer says so.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from config import Link
from outbox import Order


class Voice:
    """A client's lines on stderr, with repeated errors said once per 10 s.

    A broker down for a minute would otherwise write four reconnect
    failures a second into the service's log.
    """

    def __init__(self, client_name: str) -> None:
        self.client_name = client_name
        self._last_error = ("", 0.0)

    def say(self, text: str) -> None:
        print(f"{self.client_name}: {text}"[:400], file=sys.stderr, flush=True)

    def error(self, what: str, exc: BaseException) -> None:
        kind = f"{what}: {type(exc).__name__}"  # the message may vary (refused, reset) while the cause does not
        last, at = self._last_error
        if kind != last or time.monotonic() - at > 10:
            self._last_error = (kind, time.monotonic())
            self.say(f"{kind}: {exc}"[:200])


@dataclass
class Delivery:
    """One message handed to the consumer, with the two answers it can give the broker."""

    body: bytes
    msg_id: str | None         # the id the producer sent beside the body (None: not sent, e.g. no-dedup)
    published_t_ns: int | None
    delivery: int              # 1 on first delivery; more on a redelivery (RabbitMQ only says "again": 2)
    ack: Callable[[], Awaitable[None]]
    term: Callable[[], Awaitable[None]]  # never deliver again: a poison message


class LinkConnection(Protocol):
    @property
    def connected(self) -> bool: ...

    async def run(self) -> None: ...

    async def close(self) -> None: ...


class OverConnection:
    """A Publisher's or Source's life is its connection's: connected, run (for ever) and close."""

    conn: LinkConnection

    @property
    def connected(self) -> bool:
        return self.conn.connected

    async def run(self) -> None:
        await self.conn.run()

    async def close(self) -> None:
        await self.conn.close()


class Publisher(Protocol):
    @property
    def connected(self) -> bool: ...

    async def run(self) -> None:
        """Connect and keep reconnecting for ever."""

    async def close(self) -> None: ...

    async def publish(self, order: Order, *, timeout_s: float, with_id: bool) -> None:
        """Return once the broker holds the message durably; raise if it does not within timeout_s."""

    async def publish_unconfirmed(self, order: Order) -> None:
        """Hand the message to the connection and return (the broken fire-and-forget variant)."""

    async def probe(self) -> None:
        """One round trip to the broker, bounded by the publish timeout; raises if it does not answer."""

    async def repair(self, failures: list[BaseException]) -> None:
        """After failed re-sends: re-create what the broker may have lost (stream, queue)."""


class Source(Protocol):
    @property
    def connected(self) -> bool: ...

    async def run(self) -> None:
        """Connect and keep reconnecting for ever."""

    async def close(self) -> None: ...

    async def fetch(self, batch: int, *, timeout_s: float) -> list[Delivery]:
        """Up to batch deliveries; [] or TimeoutError when none came within timeout_s."""

    async def settle(self) -> None:
        """Return once the broker has read what was sent before (an ack): one round trip, bounded."""


def open_publisher(link: Link, client_name: str, *, timeout_s: float, confirms: bool = True) -> Publisher:
    """The producer's side of the link for link.kind; imports only that broker's client."""
    if link.kind == "rabbitmq":
        from rabbitlink import RabbitPublisher
        return RabbitPublisher(link, client_name, timeout_s=timeout_s, confirms=confirms)
    from natslink import NatsPublisher
    return NatsPublisher(link, client_name, timeout_s=timeout_s)


def open_source(link: Link, client_name: str, *, durable: str, ack_wait_s: float, batch: int) -> Source:
    """The consumer's side of the link for link.kind."""
    if link.kind == "rabbitmq":
        from rabbitlink import RabbitSource
        return RabbitSource(link, client_name, prefetch=batch)
    from natslink import NatsSource
    return NatsSource(link, client_name, durable=durable, ack_wait_s=ack_wait_s)
