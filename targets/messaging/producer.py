"""The entry service of the messaging target: accepts orders and hands them to the broker.

Run as ``python targets/messaging/producer.py`` (env: README.md). The promise
under test: a client never waits on consumers, and a 202 means the message
is durable, so it will be processed whatever happens to the broker, the
producer's link or a consumer afterwards.

``POST /orders`` publishes to the broker (BROKER_KIND: JetStream, or
RabbitMQ with publisher confirms) and waits for its acknowledgement for at
most PUBLISH_TIMEOUT_MS. Without one in time (broker down, paused,
behind a slow or cut link) the message goes into the outbox, a SQLite file
in DATA_DIR, before the client hears 202; a task in the loop re-sends the
outbox once the broker answers again. Every message carries its id (NATS:
``Nats-Msg-Id``, so a publish that timed out at the client but reached the
stream, re-sent within the stream's duplicate window, is stored once;
RabbitMQ: ``message_id``, and the consumer drops the second copy). After one failed publish, requests go straight to the outbox
until a re-send is acknowledged within PUBLISH_TIMEOUT_MS again: a broken
broker costs one timeout, not one per request.

Broken VARIANTs, so the harness's checks can be shown to fail:
``fire-and-forget`` publishes without waiting for any acknowledgement
(core NATS; a RabbitMQ channel without confirms), has no outbox and drops what it cannot send (a client with
no reconnect buffer); ``no-outbox`` waits for the broker on every request,
also while it is known to be out, and answers 503 when it does not ack in
time (a producer that blocks on its broker); ``no-dedup`` sends no
message id (and its consumer does not de-duplicate either); ``in-memory-outbox``
keeps its outbox in the process's memory, so a producer killed while the
broker is out loses every message it had accepted into it.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import sys
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from targetkit.program import run
from targetkit.serving import JsonHandler, serve

from brokerlink import Publisher, open_publisher
from config import ProducerConfig, load_producer
from loopthread import LoopThread
from outbox import Order, OutboxFull, Store

ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
RESEND_BATCH = 64
RESEND_TIMEOUT_FACTOR = 5  # a re-send is not client-facing, so it may wait longer than a publish


class Producer:
    """The publish-or-outbox decision, the outbox drain, and the counters of /admin/state."""

    def __init__(self, config: ProducerConfig, store: Store, loop: LoopThread, conn: Publisher) -> None:
        self.config, self.store, self.loop, self.conn = config, store, loop, conn
        self.broker_ok = True  # False after a failed publish, until a re-send is acknowledged in time
        self.counts = {"published": 0, "resent": 0, "fallbacks": 0, "dropped": 0, "refused": 0}
        self._lock = threading.Lock()
        self._wake = asyncio.Event()

    def accept(self, order: Order) -> tuple[int, dict[str, Any]]:
        """POST /orders: 202 once the message is durable (broker or outbox), else 503."""
        if self.config.variant == "fire-and-forget":
            return self._fire_and_forget(order)
        if self.config.variant == "no-outbox":
            return self._broker_or_503(order)
        via = "outbox"
        if self.conn.connected and self.broker_ok:
            timeout_s = self.config.publish_timeout_ms / 1000
            try:
                self.loop.call(self._publish(order, timeout_s=timeout_s), timeout_s=timeout_s + 0.05)
                via = "broker"
                self._count("published")
            except Exception:  # timeout, no responders, stream error, connection lost
                self.broker_ok = False
                self._count("fallbacks")
        try:
            self.store.accept(order, via=via)
        except (OutboxFull, sqlite3.Error) as exc:
            if via == "outbox":
                self._count("refused")
                return 503, {"error": f"broker unavailable and outbox refused: {exc}"[:300],
                             "hop": self.config.hop, "service": self.config.name}
            # Already durable in the stream: the 202 is true, only our log of it is short.
            print(f"{self.config.name}: accepted log write failed for {order.id}: {exc}", file=sys.stderr)
        if via == "outbox":
            self.loop.loop.call_soon_threadsafe(self._wake.set)
        return 202, {"id": order.id, "via": via}

    def state(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self.counts)
        return {"service": self.config.name, "variant": self.config.variant, "hop": self.config.hop,
                "connected": int(self.conn.connected), "broker_ok": int(self.broker_ok),
                "outbox": self.store.outbox_size, "accepted": self.store.accepted, **counts}

    async def drain_forever(self) -> None:
        """Re-send the outbox, oldest first, whenever the broker is connected."""
        while True:
            if self.store.outbox_size == 0 and self.conn.connected and not self.broker_ok:
                await self._probe()
            if self.store.outbox_size == 0 or not self.conn.connected:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=0.25)  # or notice a reconnect
                except TimeoutError:
                    pass
                continue
            try:
                ok = await self._resend_batch()
            except Exception as exc:  # a bug or a disk error must not end the drain for good
                print(f"{self.config.name}: re-send failed: {type(exc).__name__}: {exc}"[:300],
                      file=sys.stderr, flush=True)
                ok = False
            if not ok:
                await asyncio.sleep(self.config.link.reconnect_wait_ms / 1000)

    async def _resend_batch(self) -> bool:
        """One batch of re-sends, concurrently; True if all were acknowledged within the publish timeout."""
        batch = self.store.pending(RESEND_BATCH)
        timeout_s = RESEND_TIMEOUT_FACTOR * self.config.publish_timeout_ms / 1000
        started = time.monotonic()
        results = await asyncio.gather(*(self._publish(o, timeout_s=timeout_s) for o in batch),
                                       return_exceptions=True)
        done = [o.id for o, r in zip(batch, results) if not isinstance(r, BaseException)]
        self.store.remove(done)
        self._count("resent", len(done))
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            try:  # the broker may have come back without its storage: create the stream or queue again
                await self.conn.repair(failures)
            except Exception:
                pass
        fast = time.monotonic() - started < self.config.publish_timeout_ms / 1000
        self.broker_ok = not failures and fast
        return not failures

    async def _probe(self) -> None:
        """With nothing to re-send, one round trip tells whether the broker answers in time again."""
        try:
            await asyncio.wait_for(self.conn.probe(), self.config.publish_timeout_ms / 1000)
            self.broker_ok = True
        except Exception:
            await asyncio.sleep(self.config.link.reconnect_wait_ms / 1000)

    async def _publish(self, order: Order, *, timeout_s: float) -> None:
        await self.conn.publish(order, timeout_s=timeout_s, with_id=self.config.variant != "no-dedup")

    def _broker_or_503(self, order: Order) -> tuple[int, dict[str, Any]]:
        """Broken on purpose: every request waits for the broker, also while it is known to be out."""
        timeout_s = self.config.publish_timeout_ms / 1000
        try:
            self.loop.call(self._publish(order, timeout_s=timeout_s), timeout_s=timeout_s + 0.05)
        except Exception as exc:
            self._count("refused")
            return 503, {"error": f"broker unavailable: {type(exc).__name__}", "hop": self.config.hop,
                         "service": self.config.name}
        self._count("published")
        self.store.accept(order, via="broker")
        return 202, {"id": order.id, "via": "broker"}

    def _fire_and_forget(self, order: Order) -> tuple[int, dict[str, Any]]:
        """Broken on purpose: publish without confirms, no wait, no outbox; dropped while disconnected."""
        if self.conn.connected:
            self.loop.submit(self.conn.publish_unconfirmed(order))
            self._count("published")
        else:
            self._count("dropped")
        self.store.accept(order, via="broker")
        return 202, {"id": order.id, "via": "broker"}

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n


def parse_order(raw: bytes) -> Order | str:
    """The order in a request body, or what is wrong with it."""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return "body is not JSON"
    if not isinstance(body, dict):
        return "body must be a JSON object"
    order_id = body.get("id") or uuid.uuid4().hex
    if not isinstance(order_id, str) or not ID_RE.match(order_id):
        return "id must be 1-128 of letters, digits, '_', '.', ':' or '-'"
    key = body.get("key", "")
    if not isinstance(key, str) or len(key) > 256:
        return "key must be a string of at most 256 characters"
    return Order(id=order_id, key=key, n=body.get("n"), t_ns=time.time_ns())


class ProducerHandler(JsonHandler):
    producer: Producer  # set by start()

    def do_POST(self) -> None:
        raw = self.read_body()
        if raw is None:
            return
        path = urlsplit(self.path).path
        if path != "/orders":
            self.not_found(path)
            return
        order = parse_order(raw)
        if isinstance(order, str):
            self.send_json(400, {"error": order, "service": self.service_name})
            return
        status, body = self.producer.accept(order)
        self.send_json(status, body)

    def do_GET(self) -> None:
        if self.read_body() is None:
            return
        url = urlsplit(self.path)
        if url.path == "/health":
            self.send_json(200, {"ok": True, "service": self.service_name,
                                 "broker_connected": self.producer.conn.connected})
        elif url.path == "/admin/state":
            self.send_json(200, self.producer.state())
        elif url.path == "/admin/accepted":
            since_ns = self.since_ns(url.query)
            if since_ns is not None:
                rows = self.producer.store.accepted_since(since_ns)
                self.send_json(200, {"service": self.service_name, "count": self.producer.store.accepted,
                                     "accepted": rows})
        else:
            self.not_found(url.path)


def start(config: ProducerConfig) -> int:
    store = Store(config.data_dir / "producer.sqlite3", outbox_max=config.outbox_max,
                  outbox_in_memory=config.variant == "in-memory-outbox")
    loop = LoopThread(config.link.kind)
    conn = open_publisher(config.link, config.name, timeout_s=config.publish_timeout_ms / 1000,
                          confirms=config.variant != "fire-and-forget")
    producer = Producer(config, store, loop, conn)
    loop.start()
    loop.spawn(conn.run())
    if config.variant not in ("fire-and-forget", "no-outbox"):
        loop.spawn(producer.drain_forever())
    ProducerHandler.service_name = config.name
    ProducerHandler.producer = producer

    def stop() -> None:
        loop.stop(conn.close())
        store.close()

    banner = (f"messaging producer {config.name} [{config.variant}] -> {config.link.kind} at {config.link.broker_addr} "
              f"({config.hop}; publish timeout {config.publish_timeout_ms} ms, outbox {store.outbox_size} pending)")
    return serve(ProducerHandler, config.port, banner, host=config.host, on_stop=stop)


if __name__ == "__main__":
    sys.exit(run("messaging producer", load_producer, start))
