"""The RabbitMQ side of the messaging link: a connection opened again after
every loss, and the Publisher and Source that producer and consumer use
(brokerlink.py says what those promise).

The client is ``aio-pika`` (asyncio), run in the service's LoopThread. We
open plain connections and reconnect ourselves rather than use aio-pika's
robust connection: the producer must know at once that the channel is gone
(its requests then go to the outbox), and the consumer must drop the
deliveries of a dead channel, which the broker hands out again anyway.

One durable classic queue named STREAM, fed through the default exchange;
messages are persistent and the producer's channel is in confirm mode, so a
publish returns only once the broker has written the message to disk. The
consumer acks manually with a prefetch of FETCH_BATCH; what it has not acked
when its connection dies (crash, cut link, missed heartbeats) is requeued
and delivered again with ``redelivered`` set.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue, DeliveryMode

from brokerlink import Delivery, OverConnection, Voice
from config import Link
from outbox import Order

CONNECT_TIMEOUT_S = 2.0  # a paused broker accepts TCP (its backlog) but never finishes the handshake


class RabbitConnection:
    """One AMQP connection with one channel, and the queue declared on it; reconnects for ever."""

    def __init__(self, link: Link, client_name: str, *, confirms: bool, prefetch: int = 0,
                 on_open: Callable[[AbstractQueue], Awaitable[None]] | None = None) -> None:
        self.link, self.confirms, self.prefetch, self.on_open = link, confirms, prefetch, on_open
        self.client_name = client_name
        self.voice = Voice(client_name)
        self.channel: AbstractChannel | None = None
        self._opened_before = False

    @property
    def connected(self) -> bool:
        return self.channel is not None and not self.channel.is_closed

    async def run(self) -> None:
        """Open, wait for the loss, open again every RECONNECT_WAIT_MS: no outage ends in a closed client."""
        while True:
            await self._session()
            await asyncio.sleep(self.link.reconnect_wait_ms / 1000)

    async def close(self) -> None:
        channel, self.channel = self.channel, None
        if channel is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(channel.close(), 1)

    async def declare(self, channel: AbstractChannel, *, timeout_s: float) -> AbstractQueue:
        """The durable queue; declaring it again is harmless, and brings it back if the broker lost it."""
        return await channel.declare_queue(self.link.stream, durable=True, timeout=timeout_s)

    async def _session(self) -> None:
        lost = asyncio.Event()
        connection = None
        try:
            connection = await aio_pika.connect(self.link.url, timeout=CONNECT_TIMEOUT_S,
                                                client_properties={"connection_name": self.client_name})
            connection.close_callbacks.add(lambda *_: lost.set())
            channel = await asyncio.wait_for(
                connection.channel(publisher_confirms=self.confirms, on_return_raises=self.confirms), CONNECT_TIMEOUT_S)
            channel.close_callbacks.add(lambda *_: lost.set())
            if self.prefetch:
                await channel.set_qos(prefetch_count=self.prefetch, timeout=CONNECT_TIMEOUT_S)
            queue = await self.declare(channel, timeout_s=CONNECT_TIMEOUT_S)
            if self.on_open is not None:
                await self.on_open(queue)
            self.channel = channel
            self.voice.say(f"{'reconnected' if self._opened_before else 'connected'} to {self.link.broker_addr}")
            self._opened_before = True
            await lost.wait()
            self.voice.say(f"disconnected from {self.link.broker_addr}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.voice.error("amqp error", exc)
        finally:
            self.channel = None
            if connection is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.close(), 1)


class RabbitPublisher(OverConnection):
    """Persistent messages on a confirm-mode channel; the id goes as the Order-Id header (the consumer de-duplicates)."""

    def __init__(self, link: Link, client_name: str, *, timeout_s: float, confirms: bool = True) -> None:
        self.link, self.timeout_s = link, timeout_s
        self.conn = RabbitConnection(link, client_name, confirms=confirms)

    def _channel(self) -> AbstractChannel:
        channel = self.conn.channel
        if channel is None or channel.is_closed:
            raise ConnectionError(f"no channel to {self.link.broker_addr}")
        return channel

    async def publish(self, order: Order, *, timeout_s: float, with_id: bool) -> None:
        """Returns on the broker's confirm (written to disk); a nack, a return or no answer in time raises.

        The id goes in an Order-Id header, not only as message_id: aiormq
        fills an empty message_id with a random one (it matches returns by
        it), which the consumer would take for the order's id.
        """
        headers = {"Published-T-Ns": str(order.t_ns)}
        if with_id:
            headers["Order-Id"] = order.id
        message = aio_pika.Message(order.payload(), delivery_mode=DeliveryMode.PERSISTENT,
                                   message_id=order.id if with_id else None, headers=headers)
        await self._channel().default_exchange.publish(message, routing_key=self.link.stream,
                                                       mandatory=True, timeout=timeout_s)

    async def publish_unconfirmed(self, order: Order) -> None:
        """Written to the socket and forgotten (the channel is not in confirm mode for this variant)."""
        message = aio_pika.Message(order.payload(), message_id=order.id, headers={"Order-Id": order.id})
        await self._channel().default_exchange.publish(message, routing_key=self.link.stream, mandatory=False)

    async def probe(self) -> None:
        await self.conn.declare(self._channel(), timeout_s=self.timeout_s)

    async def repair(self, failures: list[BaseException]) -> None:
        """A broker that lost its queue returns the message (mandatory): declare the queue again."""
        if any(isinstance(f, aio_pika.exceptions.PublishError) for f in failures):
            await self.conn.declare(self._channel(), timeout_s=self.timeout_s)


class RabbitSource(OverConnection):
    """Deliveries pushed by the broker (prefetch = FETCH_BATCH), handed out in batches like a pull."""

    def __init__(self, link: Link, client_name: str, *, prefetch: int) -> None:
        self.link = link
        self.conn = RabbitConnection(link, client_name, confirms=False, prefetch=prefetch, on_open=self._consume)
        self._inbox: asyncio.Queue[Delivery] = asyncio.Queue()

    async def _consume(self, queue: AbstractQueue) -> None:
        """Empty the inbox first: deliveries of a dead channel cannot be acked, and come again anyway.

        One inbox for the source's whole life (not one per channel), so a
        fetch already waiting when the channel opens gets the new deliveries.
        """
        inbox = self._inbox
        while not inbox.empty():
            inbox.get_nowait()

        async def take(message: AbstractIncomingMessage) -> None:
            inbox.put_nowait(delivery(message))

        await queue.consume(take, no_ack=False, timeout=CONNECT_TIMEOUT_S)

    async def fetch(self, batch: int, *, timeout_s: float) -> list[Delivery]:
        inbox = self._inbox
        taken = [await asyncio.wait_for(inbox.get(), timeout_s)]
        while len(taken) < batch and not inbox.empty():
            taken.append(inbox.get_nowait())
        return taken

    async def settle(self) -> None:
        """A queue declare on the same channel: the broker answers it only after the acks sent before."""
        channel = self.conn.channel
        if channel is not None:
            with contextlib.suppress(Exception):
                await self.conn.declare(channel, timeout_s=1.0)


def delivery(message: AbstractIncomingMessage) -> Delivery:
    headers = {k: v.decode("ascii", "replace") if isinstance(v, bytes) else v  # long strings may be bytes
               for k, v in (message.headers or {}).items()}
    published, order_id = headers.get("Published-T-Ns"), headers.get("Order-Id")
    return Delivery(body=message.body, msg_id=order_id if isinstance(order_id, str) else None,
                    published_t_ns=int(published) if isinstance(published, str) and published.isdigit() else None,
                    delivery=2 if message.redelivered else 1, ack=message.ack,
                    term=lambda: message.reject(requeue=False))
