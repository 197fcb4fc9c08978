"""The NATS JetStream side of the messaging link: a connection that never
gives up, the stream and durable consumer either service may be the first
to need, and the Publisher and Source that producer and consumer use
(brokerlink.py says what those promise).

The client is ``nats-py`` (asyncio), run in the service's LoopThread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NoStreamResponseError, NotFoundError

from brokerlink import Delivery, OverConnection, Voice
from config import Link
from outbox import Order


class Connection:
    """One NATS client that reconnects without limit and reports its state changes once each.

    Reconnects forever (a broker outage of any length must end in a
    reconnect, never in a closed client), every ``RECONNECT_WAIT_MS``; pings
    every ``PING_INTERVAL_S`` with two outstanding allowed, so a broker that
    is paused or behind a black-holing link is given up on in a few seconds
    rather than nats-py's default of four minutes.
    """

    def __init__(self, link: Link, client_name: str,
                 on_connect: Callable[[], Awaitable[None]] = lambda: asyncio.sleep(0)) -> None:
        self.link, self.client_name, self.on_connect = link, client_name, on_connect
        self.nc = Client()
        self.voice = Voice(client_name)

    @property
    def connected(self) -> bool:
        return self.nc.is_connected

    def jetstream(self, *, timeout_s: float) -> JetStreamContext:
        return self.nc.jetstream(timeout=timeout_s)

    async def run(self) -> None:
        """Connect (retrying until the broker answers), then run on_connect; reconnects run it again."""
        await self.nc.connect(
            servers=[self.link.url], name=self.client_name, allow_reconnect=True,
            max_reconnect_attempts=-1, reconnect_time_wait=self.link.reconnect_wait_ms / 1000,
            connect_timeout=2, ping_interval=self.link.ping_interval_s, max_outstanding_pings=2,
            error_cb=self._error, disconnected_cb=self._disconnected, reconnected_cb=self._reconnected,
        )
        self.voice.say(f"connected to {self.link.url}")
        await self._prepare()

    async def close(self) -> None:
        if not self.nc.is_closed:
            await self.nc.close()

    async def _error(self, exc: Exception) -> None:
        self.voice.error("nats error", exc)

    async def _disconnected(self) -> None:
        self.voice.say(f"disconnected from {self.link.url}")

    async def _reconnected(self) -> None:
        self.voice.say(f"reconnected to {self.link.url}")
        # A task, not awaited here: nats-py runs this callback inside its reconnect path.
        asyncio.get_running_loop().create_task(self._prepare())

    async def _prepare(self) -> None:
        """on_connect, with a failure logged rather than raised: the next reconnect or use retries it."""
        try:
            await self.on_connect()
        except Exception as exc:
            self.voice.error("setting up after connect failed", exc)


def stream_config(link: Link) -> StreamConfig:
    """File storage (survives a broker crash), limits retention, and the de-duplication window."""
    root = link.subject.split(".")[0]
    subjects = [f"{root}.>"] if "." in link.subject else [link.subject]
    return StreamConfig(name=link.stream, subjects=subjects, storage=StorageType.FILE,
                        retention=RetentionPolicy.LIMITS, duplicate_window=link.duplicate_window_s)


async def ensure_stream(js: JetStreamContext, link: Link) -> None:
    """Create the stream unless it exists; an existing one is used as it is.

    Producer and consumer both call this, on every (re)connect: whichever
    comes first creates it, and a broker that lost its storage gets it back.
    A creation race ("already in use") counts as success.
    """
    try:
        await js.stream_info(link.stream)
        return
    except NotFoundError:
        pass
    try:
        await js.add_stream(stream_config(link))
    except BadRequestError as exc:
        if "already in use" not in str(exc):
            raise


async def ensure_consumer(js: JetStreamContext, link: Link, *, durable: str, ack_wait_s: float) -> None:
    """Create the durable pull consumer unless it exists (then its stored settings win).

    Explicit acks; ``deliver_policy=all`` so a consumer created after the
    first messages still starts at the stream's first one; ``max_deliver=-1``
    so a message is redelivered for as long as nobody acks it, never dropped
    after N tries.
    """
    try:
        await js.consumer_info(link.stream, durable)
        return
    except NotFoundError:
        pass
    config = ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT,
                            deliver_policy=DeliverPolicy.ALL, ack_wait=ack_wait_s, max_deliver=-1,
                            filter_subject=link.subject, max_ack_pending=1000)
    try:
        await js.add_consumer(link.stream, config)
    except BadRequestError as exc:
        if "already exists" not in str(exc):
            raise


class NatsPublisher(OverConnection):
    """Publishes with a JetStream ack; the message id goes as Nats-Msg-Id, so the stream drops a re-send."""

    def __init__(self, link: Link, client_name: str, *, timeout_s: float) -> None:
        self.link = link
        self.conn = Connection(link, client_name, on_connect=lambda: ensure_stream(self.js, link))
        self.js = self.conn.jetstream(timeout_s=timeout_s)

    async def publish(self, order: Order, *, timeout_s: float, with_id: bool) -> None:
        headers = {"Published-T-Ns": str(order.t_ns)}
        if with_id:
            headers["Nats-Msg-Id"] = order.id
        await self.js.publish(self.link.subject, order.payload(), timeout=timeout_s,
                              stream=self.link.stream, headers=headers)

    async def publish_unconfirmed(self, order: Order) -> None:
        """Core NATS: no ack is asked for, and nats-py drops it when the connection is down."""
        await self.conn.nc.publish(self.link.subject, order.payload(), headers={"Nats-Msg-Id": order.id})

    async def probe(self) -> None:
        await self.js.account_info()  # bounded by the JetStream context's timeout

    async def repair(self, failures: list[BaseException]) -> None:
        """A broker that came back without its storage answers "no stream": create it again."""
        if any(isinstance(f, NoStreamResponseError) for f in failures):
            await ensure_stream(self.js, self.link)


class NatsSource(OverConnection):
    """Pulls from the durable consumer: unacked deliveries come again after ack_wait_s, for ever."""

    def __init__(self, link: Link, client_name: str, *, durable: str, ack_wait_s: float) -> None:
        self.link, self.durable, self.ack_wait_s = link, durable, ack_wait_s
        self.conn = Connection(link, client_name, on_connect=self._prepare)
        self.js = self.conn.jetstream(timeout_s=2.0)
        self._sub: JetStreamContext.PullSubscription | None = None

    async def _prepare(self) -> None:
        """Stream and durable consumer, created by whichever service gets there first."""
        await ensure_stream(self.js, self.link)
        await ensure_consumer(self.js, self.link, durable=self.durable, ack_wait_s=self.ack_wait_s)

    async def fetch(self, batch: int, *, timeout_s: float) -> list[Delivery]:
        if not self.conn.connected:  # (re)connecting: nothing can come, and asking would only log errors
            await asyncio.sleep(min(timeout_s, 0.1))
            raise TimeoutError
        if self._sub is None:
            await self._prepare()
            self._sub = await self.js.pull_subscribe_bind(durable=self.durable, stream=self.link.stream)
        return [delivery(msg) for msg in await self._sub.fetch(batch, timeout=timeout_s)]

    async def settle(self) -> None:
        try:
            await self.conn.nc.flush(timeout=1)
        except Exception:
            pass


def delivery(msg: Msg) -> Delivery:
    headers = msg.headers or {}
    published = headers.get("Published-T-Ns")
    return Delivery(body=msg.data, msg_id=headers.get("Nats-Msg-Id"),
                    published_t_ns=int(published) if published and published.isdigit() else None,
                    delivery=msg.metadata.num_delivered if msg.reply else 1, ack=msg.ack, term=msg.term)
