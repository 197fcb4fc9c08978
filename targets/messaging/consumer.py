"""The consumer of the messaging target: a durable consumer that processes each order once.

Run as ``python targets/messaging/consumer.py`` (env: README.md). It takes
up to FETCH_BATCH messages at a time (NATS: pulled from the durable consumer
DURABLE, explicit acks, redelivered ACK_WAIT_S after a delivery nobody
acked; RabbitMQ: pushed with a prefetch of FETCH_BATCH, manual acks,
requeued when the consumer's connection dies) and, one by one: processes (PROCESS_MS of work), records the processing in its
ledger in DATA_DIR (flushed), then acks. A redelivery of an id the ledger
already holds is acked and counted as a duplicate, not processed again, so a
consumer killed between its record and its ack does not process twice.

Broken VARIANTs, so the harness's checks can be shown to fail:
``ack-before-process`` acks (and waits until the broker has the ack) before
processing, so a consumer killed during PROCESS_MS loses that message;
``no-dedup`` processes every delivery, so redeliveries are processed twice.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any
from urllib.parse import urlsplit

from targetkit.program import run
from targetkit.serving import JsonHandler, serve

from brokerlink import Delivery, Source, open_source
from config import ConsumerConfig, load_consumer
from ledger import Ledger
from loopthread import LoopThread

FETCH_WAIT_S = 0.5  # a pull request's life: how soon an idle consumer asks again after a cut link


class Consumer:
    """The fetch-process-record-ack loop and the figures of /admin/state."""

    def __init__(self, config: ConsumerConfig, ledger: Ledger, conn: Source) -> None:
        self.config, self.ledger, self.conn = config, ledger, conn
        self.in_process: str | None = None
        self.lag_ms: float | None = None
        self.counts = {"delivered": 0, "redelivered": 0, "malformed": 0}

    async def run(self) -> None:
        """Fetch and handle forever (the connection runs beside it); errors are logged and retried, never fatal."""
        while True:
            try:
                msgs = await self.conn.fetch(self.config.fetch_batch, timeout_s=FETCH_WAIT_S)
            except TimeoutError:  # nats-py's own TimeoutError is one too
                continue  # nothing to fetch, or the link is down: ask again
            except Exception as exc:
                print(f"{self.config.name}: fetch failed: {type(exc).__name__}: {exc}"[:300],
                      file=sys.stderr, flush=True)
                await asyncio.sleep(self.config.link.reconnect_wait_ms / 1000)
                continue
            for msg in msgs:
                try:
                    await self.handle(msg)
                except Exception as exc:  # unacked, so redelivered after ACK_WAIT_S
                    print(f"{self.config.name}: handling failed: {type(exc).__name__}: {exc}"[:300],
                          file=sys.stderr, flush=True)
                    break

    async def handle(self, msg: Delivery) -> None:
        """Process-record-ack one message (ack first in the broken variant)."""
        delivery = msg.delivery
        try:
            order = parse(msg)
        except (ValueError, KeyError, TypeError):
            self.counts["malformed"] += 1
            await msg.term()  # poison: never redeliver what can never be processed
            return
        self.counts["delivered"] += 1
        self.counts["redelivered"] += delivery > 1
        if self.config.variant != "no-dedup" and order["id"] in self.ledger.seen:
            self.ledger.duplicate(id=order["id"], delivery=delivery)
            await msg.ack()
            return
        if self.config.variant == "ack-before-process":
            await msg.ack()
            await self.conn.settle()  # the broker has the ack before the work starts
        self.in_process = order["id"]
        await asyncio.sleep(self.config.process_ms / 1000)  # the work
        record = self.ledger.processed(id=order["id"], key=order["key"],
                                       published_t_ns=order["published_t_ns"], delivery=delivery)
        self.in_process = None
        self.lag_ms = (record["t_ns"] - record["published_t_ns"]) / 1e6
        if self.config.variant != "ack-before-process":
            await msg.ack()

    def state(self) -> dict[str, Any]:
        return {"service": self.config.name, "variant": self.config.variant, "hop": self.config.hop,
                "connected": int(self.conn.connected), "processed": len(self.ledger.records),
                "duplicates": self.ledger.duplicates, "lag_ms": self.lag_ms, "in_process": self.in_process,
                **self.counts}


def parse(msg: Delivery) -> dict[str, Any]:
    """id, key and published_t_ns of a message: from beside the body, else the body."""
    body = json.loads(msg.body)
    order_id = msg.msg_id or body["id"]
    published = msg.published_t_ns or body["published_t_ns"]
    return {"id": str(order_id), "key": str(body.get("key", "")), "published_t_ns": int(published)}


class ConsumerHandler(JsonHandler):
    consumer: Consumer  # set by start()

    def do_GET(self) -> None:
        if self.read_body() is None:
            return
        url = urlsplit(self.path)
        if url.path == "/health":
            self.send_json(200, {"ok": True, "service": self.service_name,
                                 "broker_connected": self.consumer.conn.connected})
        elif url.path == "/admin/state":
            self.send_json(200, self.consumer.state())
        elif url.path == "/admin/processed":
            since_ns = self.since_ns(url.query)
            if since_ns is not None:
                ledger = self.consumer.ledger
                self.send_json(200, {"service": self.service_name, "count": len(ledger.records),
                                     "processed": ledger.since(since_ns), "duplicates": ledger.duplicates})
        else:
            self.not_found(url.path)


def start(config: ConsumerConfig) -> int:
    ledger = Ledger(config.data_dir / "processed.jsonl")
    loop = LoopThread(config.link.kind)
    conn = open_source(config.link, config.name, durable=config.durable, ack_wait_s=config.ack_wait_s,
                       batch=config.fetch_batch)
    consumer = Consumer(config, ledger, conn)
    loop.start()
    loop.spawn(conn.run())
    loop.spawn(consumer.run())
    ConsumerHandler.service_name = config.name
    ConsumerHandler.consumer = consumer

    def stop() -> None:
        loop.stop(conn.close())
        ledger.close()

    banner = (f"messaging consumer {config.name} [{config.variant}] <- {config.link.kind} at {config.link.broker_addr} "
              f"({config.hop}; durable {config.durable}, ack wait {config.ack_wait_s:g} s, "
              f"process {config.process_ms} ms, {len(ledger.records)} processed before)")
    return serve(ConsumerHandler, config.port, banner, host=config.host, on_stop=stop)


if __name__ == "__main__":
    sys.exit(run("messaging consumer", load_consumer, start))
