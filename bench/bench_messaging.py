"""Figures for the messaging pattern (producer -> broker -> consumer), printed side by side.

    .venv/bin/python bench/bench_messaging.py [--broker nats] [--quick]

1. end to end: the target stood up by the local runtime, orders POSTed to
   the producer by closed-loop client threads (each sends again as soon as
   its answer came). Over a measuring window: accepted/s at the producer
   and processed/s at the consumer (their /admin/state counters), the 202
   latency, how many went to the outbox, and the accept-to-process lag
   p50/p99 (the consumer's records: processed t_ns - published_t_ns). The
   consumer's simulated work (PROCESS_MS) is set to 0 here, so the figure is
   the pattern's plumbing, not the sleep.
2. the ceiling: the broker's own client on the same broker instance,
   directly and through the producer's Toxiproxy proxy: publishes/s with
   broker confirms (a window of unconfirmed publishes in flight) and
   consumed/s (receive and ack what was stored: NATS fetches, RabbitMQ
   pushes up to a prefetch).
3. time to drain after a broker restart: load paced at a fixed rate, the
   broker killed (the harness's crash fault), kept down N seconds, started
   again; from its start until the producer's outbox is empty, until the
   consumer has processed everything accepted by the restart, and until it
   has caught up with the live load. The target runs as its topology file
   says here (PROCESS_MS as the experiments use it). "broker ready" is the
   broker's own boot: milliseconds for nats-server, an Erlang VM (5-11 s on
   2 busy cores) for RabbitMQ, and every later column includes it.

The broker is chosen with --broker: its topology file (same service names
broker, producer, consumer, same HTTP admin endpoints) and its raw client
(``RawClient``) are all that differ. Figures, not pass/fail: the load client
shares the machine's cores with every service, so read them side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.checks.windows import percentile  # noqa: E402
from harness.faults import injected, make_fault  # noqa: E402
from harness.runtime import make_runtime, make_toxiproxy, teardown  # noqa: E402
from harness.runtime.base import Runtime  # noqa: E402
from harness.runtime.labels import new_run_id  # noqa: E402
from harness.runtime.local.processes import sweep_dead_processes  # noqa: E402
from harness.topology import Topology, load_topology  # noqa: E402
from harness.toxiproxy import ToxiproxyClient  # noqa: E402

TARGET = ROOT / "targets" / "messaging"


# -- the raw clients (the ceiling) ---------------------------------------------------------

class RawClient(Protocol):
    """A broker's own client doing what the pattern's services do, minus HTTP, SQLite and the ledger.

    One instance is made per address; it owns its own stream or queue on
    that broker, created when it is made and removed on close().
    """

    def server(self) -> str:
        """The broker's name and version, as it tells its clients."""
        ...

    def publish(self, count: int, *, window: int) -> float:
        """Publish count messages, each confirmed by the broker, at most window unconfirmed at a time; seconds taken."""
        ...

    def consume(self, count: int) -> float:
        """Receive and ack count of the stored messages; seconds taken until the last ack reached the broker."""
        ...

    def close(self) -> None: ...


class NatsRaw:
    """JetStream with nats-py: publish with ack, a durable pull consumer with explicit acks.

    Like the pattern: file storage, a Nats-Msg-Id on every message (the
    broker's de-duplication works per message) and a payload of the same
    shape. Unlike it: many publishes in flight from one connection, and
    fetches of 256 at a time.
    """

    STREAM = "BENCHRAW"
    SUBJECT = "benchraw.orders"
    DURABLE = "bench-raw"
    FETCH = 256

    def __init__(self, address: str) -> None:
        from nats.aio.client import Client

        self._loop = asyncio.new_event_loop()
        self._nc = Client()
        self._sent = 0
        self._tag = uuid.uuid4().hex[:8]
        try:
            self._run(self._setup(address), timeout_s=30)
        except BaseException:
            self.close()
            raise

    def server(self) -> str:
        v = self._nc.connected_server_version
        return f"nats-server {v.major}.{v.minor}.{v.patch}"

    def publish(self, count: int, *, window: int) -> float:
        return self._run(self._publish(count, window), timeout_s=60 + count / 100)

    def consume(self, count: int) -> float:
        return self._run(self._consume(count), timeout_s=60 + count / 100)

    def close(self) -> None:
        try:
            if self._nc.is_connected:
                self._run(self._teardown(), timeout_s=10)
        except BaseException:
            pass  # the broker's files go with the run's folder anyway
        finally:
            self._loop.close()

    def _run(self, coro: Any, *, timeout_s: float) -> Any:
        return self._loop.run_until_complete(asyncio.wait_for(coro, timeout_s))

    async def _setup(self, address: str) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StorageType, StreamConfig
        from nats.js.errors import NotFoundError

        await self._nc.connect(servers=[f"nats://{address}"], name="bench-raw", connect_timeout=2,
                               allow_reconnect=False)
        self._js = self._nc.jetstream(timeout=10)
        with contextlib.suppress(NotFoundError):
            await self._js.delete_stream(self.STREAM)
        await self._js.add_stream(StreamConfig(name=self.STREAM, subjects=[self.SUBJECT], storage=StorageType.FILE,
                                               retention=RetentionPolicy.LIMITS, duplicate_window=120))
        config = ConsumerConfig(durable_name=self.DURABLE, ack_policy=AckPolicy.EXPLICIT,
                                deliver_policy=DeliverPolicy.ALL, ack_wait=30, max_ack_pending=10_000)
        self._sub = await self._js.pull_subscribe(self.SUBJECT, durable=self.DURABLE, stream=self.STREAM,
                                                  config=config)

    async def _publish(self, count: int, window: int) -> float:
        first = self._sent
        self._sent += count
        pending = iter(range(first, first + count))

        async def one_slot() -> None:
            for n in pending:  # the slots share the iterator: each number is published once
                payload = json.dumps({"id": f"{self._tag}-{n}", "key": "bench", "n": n,
                                      "published_t_ns": time.time_ns()}).encode()
                await self._js.publish(self.SUBJECT, payload, stream=self.STREAM,
                                       headers={"Nats-Msg-Id": f"{self._tag}-{n}"})

        started = time.perf_counter()
        await asyncio.gather(*(one_slot() for _ in range(window)))
        return time.perf_counter() - started

    async def _consume(self, count: int) -> float:
        from nats.errors import TimeoutError as NatsTimeout

        got = 0
        started = time.perf_counter()
        while got < count:
            try:
                msgs = await self._sub.fetch(min(self.FETCH, count - got), timeout=5)
            except NatsTimeout:
                raise RuntimeError(f"raw consumer: only {got} of {count} messages arrived (nothing for 5 s)") from None
            for msg in msgs:
                await msg.ack()
            got += len(msgs)
        await self._nc.flush(timeout=10)  # the acks have reached the broker
        return time.perf_counter() - started

    async def _teardown(self) -> None:
        with contextlib.suppress(Exception):
            await self._js.delete_stream(self.STREAM)
        await self._nc.close()


class RabbitRaw:
    """RabbitMQ with aio-pika: persistent publishes on a confirm-mode channel, a consumer with manual acks.

    Like the pattern: a durable classic queue fed through the default
    exchange, persistent messages published mandatory (a confirm means the
    broker has written it to disk), the order's id as message_id and Order-Id
    header, a payload of the same shape, and one ack per message. Unlike it:
    many publishes in flight on one channel, and a prefetch of 128 (the
    consumer's is FETCH_BATCH). Its own queue, so the pattern's ORDERS is
    left alone.
    """

    QUEUE = "BENCHRAW"
    PREFETCH = 128
    STALL_S = 5.0  # no delivery for this long while some are missing: the consume fails, saying how many came
    HEARTBEAT_S = 30  # the loop runs only inside calls; a long gap between two must not cost the connection

    def __init__(self, address: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._conn: Any = None  # an aio_pika connection once _setup has connected
        self._url = f"amqp://guest:guest@{address}/?heartbeat={self.HEARTBEAT_S}"
        self._call: asyncio.Task[Any] | None = None  # the call in progress, so close() can tell an interrupted one
        self._sent = 0
        self._tag = uuid.uuid4().hex[:8]
        try:
            self._run(self._setup(), timeout_s=30)
        except BaseException:
            self.close()
            raise

    def server(self) -> str:
        props = self._conn.transport.connection.server_properties

        def text(key: str) -> str:
            value = props.get(key, "?")
            return value.decode() if isinstance(value, bytes) else str(value)

        return f"{text('product')} {text('version')}"

    def publish(self, count: int, *, window: int) -> float:
        return self._run(self._publish(count, window), timeout_s=60 + count / 20)

    def consume(self, count: int) -> float:
        return self._run(self._consume(count), timeout_s=60 + count / 20)

    def close(self) -> None:
        """Deletes the queue and closes the connection, bounded, also after Ctrl-C.

        A Ctrl-C lands in whichever task runs, often one of aiormq's own, and
        every await on that task raises it again: after one, the loop and its
        connection are given up and the queue is deleted over a new connection
        on a new loop.
        """
        deleted = False
        if self._conn is not None and self._settled():
            with contextlib.suppress(BaseException):
                self._run(self._teardown(), timeout_s=10)
                deleted = True
        aiormq_log = logging.getLogger("aiormq")  # its modules' loggers inherit this level
        level = aiormq_log.level
        if not deleted:
            aiormq_log.setLevel(logging.CRITICAL)  # it would print the abandoned connection's end with a traceback
        try:
            for _ in range(3):  # what the connection left running; cancelling may start a few more
                leftovers = [t for t in asyncio.all_tasks(self._loop) if not t.done()]
                if not leftovers:
                    break
                for task in leftovers:
                    task.cancel()
                with contextlib.suppress(BaseException):
                    self._loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            self._loop.close()
        finally:
            aiormq_log.setLevel(level)
        if self._conn is not None and not deleted:
            with contextlib.suppress(BaseException):  # the broker's files go with the run's folder anyway
                asyncio.run(asyncio.wait_for(self._delete_fresh(), 10))

    def _settled(self) -> bool:
        """The last call ended by itself (done, or failed with an ordinary error): the connection is usable."""
        call = self._call
        if call is None or not call.done():
            return False
        return call.cancelled() or call.exception() is None or isinstance(call.exception(), Exception)

    def _run(self, coro: Any, *, timeout_s: float) -> Any:
        self._call = self._loop.create_task(asyncio.wait_for(coro, timeout_s))
        return self._loop.run_until_complete(self._call)

    async def _setup(self) -> None:
        import aio_pika

        self._conn = await aio_pika.connect(self._url, timeout=5, client_properties={"connection_name": "bench-raw"})
        self._pub = await self._conn.channel(publisher_confirms=True, on_return_raises=True)
        await self._pub.queue_delete(self.QUEUE)  # left by an earlier client on this broker whose close failed
        await self._pub.declare_queue(self.QUEUE, durable=True)
        self._sub = await self._conn.channel(publisher_confirms=False)
        await self._sub.set_qos(prefetch_count=self.PREFETCH)
        self._queue = await self._sub.declare_queue(self.QUEUE, durable=True)

    async def _publish(self, count: int, window: int) -> float:
        from aio_pika import DeliveryMode, Message

        first = self._sent
        self._sent += count
        pending = iter(range(first, first + count))
        exchange = self._pub.default_exchange

        async def one_slot() -> None:
            for n in pending:  # the slots share the iterator: each number is published once
                order_id, t_ns = f"{self._tag}-{n}", time.time_ns()
                payload = json.dumps({"id": order_id, "key": "bench", "n": n, "published_t_ns": t_ns}).encode()
                message = Message(payload, delivery_mode=DeliveryMode.PERSISTENT, message_id=order_id,
                                  headers={"Order-Id": order_id, "Published-T-Ns": str(t_ns)})
                await exchange.publish(message, routing_key=self.QUEUE, mandatory=True)  # returns on the confirm

        started = time.perf_counter()
        await asyncio.gather(*(one_slot() for _ in range(window)))
        return time.perf_counter() - started

    async def _consume(self, count: int) -> float:
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        got = 0
        started = time.perf_counter()
        tag = await self._queue.consume(inbox.put, no_ack=False)
        while got < count:
            try:
                message = await asyncio.wait_for(inbox.get(), self.STALL_S)
            except TimeoutError:
                raise RuntimeError(f"raw consumer: only {got} of {count} messages arrived "
                                   f"(nothing for {self.STALL_S:g} s)") from None  # close() deletes the queue
            await message.ack()
            got += 1
        await self._queue.cancel(tag)  # a round trip on the same channel: answered after the acks sent before
        return time.perf_counter() - started

    async def _teardown(self) -> None:
        await self._pub.queue_delete(self.QUEUE, timeout=5)
        await self._conn.close()

    async def _delete_fresh(self) -> None:
        import aio_pika

        async with await aio_pika.connect(self._url, timeout=5) as conn:
            await (await conn.channel()).queue_delete(self.QUEUE, timeout=5)


@dataclass(frozen=True)
class Broker:
    """What differs per broker: the topology file and the raw client for the ceiling."""

    name: str
    topology_file: Path
    raw_client: Callable[[str], RawClient]  # address host:port -> a connected client


BROKERS: dict[str, Broker] = {
    "nats": Broker("nats", TARGET / "topology.toml", NatsRaw),
    "rabbitmq": Broker("rabbitmq", TARGET / "rabbitmq.toml", RabbitRaw),
}


# -- the load: orders POSTed to the producer ----------------------------------------------

@dataclass
class Sent:
    start: float  # monotonic s
    ms: float
    status: int
    via: str


class Orders:
    """Client threads POSTing orders to the producer, keeping every answer.

    Closed loop without a rate (each thread sends as soon as its last answer
    came); with rate_per_s the threads share one schedule of send times, so
    the total rate holds while any thread is free.
    """

    def __init__(self, producer_url: str, *, users: int, rate_per_s: float | None = None) -> None:
        self.url = producer_url + "/orders"
        self.rate = rate_per_s
        self.sent: list[Sent] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._next = 0
        self._t0 = 0.0
        self._threads = [threading.Thread(target=self._loop, name=f"orders-{i}", daemon=True) for i in range(users)]

    def __enter__(self) -> "Orders":
        self._t0 = time.monotonic()
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)  # a request's own timeout is 10 s

    def _ticket(self) -> int:
        with self._lock:
            self._next += 1
            return self._next

    def _loop(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                n = self._ticket()
                if self.rate and self._stop.wait(max(0.0, self._t0 + n / self.rate - time.monotonic())):
                    break  # pacing to the schedule; stop ends the wait at once
                start = time.monotonic()
                via = ""
                try:
                    answer = client.post(self.url, json={"key": "bench", "n": n})
                    status = answer.status_code
                    if status == 202:
                        via = answer.json().get("via", "")
                except httpx.HTTPError:
                    status = 0
                self.sent.append(Sent(start, (time.monotonic() - start) * 1000, status, via))

    def between(self, t0: float, t1: float) -> list[Sent]:
        return [s for s in list(self.sent) if t0 <= s.start < t1]


# -- polling -----------------------------------------------------------------------------

def state(url: str) -> dict[str, Any]:
    answer = httpx.get(url + "/admin/state", timeout=2)
    answer.raise_for_status()
    return answer.json()


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.02) -> float:
    """Polls until predicate() holds; returns the monotonic time it did. A timeout names what was awaited."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(every_s)  # poll


@dataclass(frozen=True)
class Cpu:
    """CPU time so far: the whole machine's (busy and total, /proc/stat) and this process's (the load client)."""

    busy: int
    total: int
    own_s: float

    @staticmethod
    def now() -> "Cpu":
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return Cpu(busy=sum(fields[:8]) - idle, total=sum(fields[:8]), own_s=time.process_time())

    def cores_busy(self, later: "Cpu", wall_s: float) -> tuple[float, float]:
        """(machine, this process) in cores kept busy between the two samples."""
        cores = os.cpu_count() or 1
        machine = (later.busy - self.busy) / max(1, later.total - self.total) * cores
        return machine, (later.own_s - self.own_s) / wall_s


def measure_for(seconds: float) -> None:
    """Lets a measuring window (or an outage) last its length: a duration, not a wait for a state."""
    time.sleep(seconds)


def drained(rt: Runtime) -> Callable[[], bool]:
    """The outbox is empty and the consumer has processed as many as the producer accepted."""
    def check() -> bool:
        producer = state(rt.url("producer"))  # first: what the consumer shows next includes these
        consumer = state(rt.url("consumer"))
        return producer["outbox"] == 0 and consumer["processed"] >= producer["accepted"]
    return check


def lags_ms(rt: Runtime, since_ns: int, until_ns: int) -> list[float]:
    """Accept-to-process lag of every processing between the two wall-clock stamps."""
    answer = httpx.get(rt.url("consumer") + "/admin/processed", params={"since_ns": since_ns}, timeout=10)
    answer.raise_for_status()
    return [(r["t_ns"] - r["published_t_ns"]) / 1e6 for r in answer.json()["processed"] if r["t_ns"] <= until_ns]


# -- deployment --------------------------------------------------------------------------

def with_env(topo: Topology, service: str, **env: str) -> Topology:
    """The topology with some of one service's variables changed (only those it already sets)."""
    svc = topo.service(service)
    changed = {k: v for k, v in env.items() if k in svc.env}
    if not changed:
        return topo
    return replace(topo, services={**topo.services, service: replace(svc, env={**svc.env, **changed})})


@contextlib.contextmanager
def deployed(topo: Topology, toxiproxy: ToxiproxyClient, run_id: str, folder: Path, name: str) -> Iterator[Runtime]:
    """The target up on the local runtime for the block, always taken down."""
    rt = make_runtime("local", topo, run_id=run_id, toxiproxy=toxiproxy, log_dir=folder / name,
                      prefix=f"{run_id}.{name}")
    rt.up()
    try:
        yield rt
    finally:
        rt.down()


def address(rt: Runtime, service: str) -> str:
    return urlsplit(rt.url(service)).netloc


# -- 1. end to end ------------------------------------------------------------------------

@dataclass
class Throughput:
    users: int
    accepted_per_s: float
    processed_per_s: float
    answers: list[Sent]
    lags: list[float]
    via_outbox: int
    fallbacks: int
    backlog_at_stop: int
    drain_after_stop_s: float
    machine_cores: float
    client_cores: float


def throughput(rt: Runtime, users: int, *, warm_s: float, window_s: float) -> Throughput:
    producer, consumer = rt.url("producer"), rt.url("consumer")
    with Orders(producer, users=users) as orders:
        wait_until(lambda: len(orders.sent) >= users, 20, "first answers from the producer")
        measure_for(warm_s)
        p0, c0, t0, ns0, cpu0 = state(producer), state(consumer), time.monotonic(), time.time_ns(), Cpu.now()
        measure_for(window_s)
        p1, c1, t1, ns1, cpu1 = state(producer), state(consumer), time.monotonic(), time.time_ns(), Cpu.now()
        orders.stop()
        stopped_p, stopped_c = state(producer), state(consumer)
        stopped = time.monotonic()
        done = wait_until(drained(rt), 120, "consumer catching up after the load stopped")
    span = t1 - t0
    answers = orders.between(t0, t1)
    machine_cores, client_cores = cpu0.cores_busy(cpu1, span)
    return Throughput(
        users=users,
        accepted_per_s=(p1["accepted"] - p0["accepted"]) / span,
        processed_per_s=(c1["processed"] - c0["processed"]) / span,
        answers=answers,
        lags=lags_ms(rt, ns0, ns1),
        via_outbox=sum(1 for s in answers if s.via == "outbox"),
        fallbacks=p1["fallbacks"] - p0["fallbacks"],
        backlog_at_stop=stopped_p["accepted"] - stopped_c["processed"],
        drain_after_stop_s=done - stopped,
        machine_cores=machine_cores,
        client_cores=client_cores,
    )


# -- 2. the ceiling -----------------------------------------------------------------------

@dataclass
class Ceiling:
    route: str
    server: str
    publish_per_s: dict[int, float] = field(default_factory=dict)
    consumed_per_s: float = 0.0


def ceiling(broker: Broker, route: str, addr: str, *, count: int, windows: tuple[int, ...]) -> Ceiling:
    client = broker.raw_client(addr)
    try:
        found = Ceiling(route, client.server())
        for window in windows:
            found.publish_per_s[window] = count / client.publish(count, window=window)
        total = count * len(windows)
        found.consumed_per_s = total / client.consume(total)
        return found
    finally:
        client.close()


# -- 3. drain after a broker restart ----------------------------------------------------------

@dataclass
class Outage:
    down_s: float
    baseline_lags: list[float]
    max_outbox: int
    outbox_at_restart: int
    backlog_at_restart: int  # accepted by the restart, not processed yet
    broker_ready_s: float  # restart (spawn) -> accepting TCP
    producer_connected_s: float | None  # None: not within the drain deadline
    outbox_empty_s: float | None
    backlog_done_s: float | None
    caught_up_s: float | None
    answers: list[Sent]  # the whole run
    outage_answers: list[Sent]  # sent between the kill and the broker's readiness
    lost: int
    duplicates: int
    resent: int


DRAIN_DEADLINE_S = 120.0


def since(t: float | None, start: float) -> float | None:
    return None if t is None else t - start


def outage(topo: Topology, toxiproxy: ToxiproxyClient, run_id: str, folder: Path, *, down_s: float,
           rate: float, users: int, baseline_s: float) -> Outage:
    with deployed(topo, toxiproxy, run_id, folder, f"outage{down_s:g}") as rt:
        producer, consumer = rt.url("producer"), rt.url("consumer")
        stamps: dict[str, float] = {}

        def lifecycle(service: str, _instance: int, action: str, _detail: str) -> None:
            """When the runtime spawned the broker again, and when it was accepting connections."""
            if service == "broker":
                stamps.setdefault(action, time.monotonic())

        rt.add_listener(lifecycle)
        with Orders(producer, users=users, rate_per_s=rate) as orders:
            wait_until(lambda: len(orders.sent) >= users, 20, "first answers from the producer")
            ns0 = time.time_ns()
            measure_for(baseline_s)
            baseline_lags = lags_ms(rt, ns0, time.time_ns())
            max_outbox = 0
            with injected(make_fault("crash", "broker"), rt):  # SIGKILL now; started again (and awaited) on exit
                down_until = time.monotonic() + down_s
                while time.monotonic() < down_until:  # the outage's length, sampling the outbox meanwhile
                    max_outbox = max(max_outbox, state(producer)["outbox"])
                    time.sleep(0.1)
                at_restart_p, at_restart_c = state(producer), state(consumer)
            ready, restarted = stamps["ready"], stamps["start"]
            seen: dict[str, float] = {}

            def settled() -> bool:
                nonlocal max_outbox
                p = state(producer)
                c = state(consumer)
                now = time.monotonic()
                max_outbox = max(max_outbox, p["outbox"])  # it may grow until the producer reconnects
                if p["connected"]:
                    seen.setdefault("connected", now)
                if p["outbox"] == 0:
                    seen.setdefault("outbox", now)
                if c["processed"] >= at_restart_p["accepted"]:
                    seen.setdefault("backlog", now)
                if c["processed"] >= p["accepted"]:
                    seen.setdefault("caught_up", now)
                return len(seen) == 4

            with contextlib.suppress(TimeoutError):  # what was not reached shows as such; lost shows why
                wait_until(settled, DRAIN_DEADLINE_S, f"drain after a {down_s:g} s broker outage")
            orders.stop()
        with contextlib.suppress(TimeoutError):
            wait_until(drained(rt), 30, "consumer catching up after the load stopped")
        final_p, final_c = state(producer), state(consumer)
    return Outage(
        down_s=down_s,
        baseline_lags=baseline_lags,
        max_outbox=max(max_outbox, at_restart_p["outbox"]),
        outbox_at_restart=at_restart_p["outbox"],
        backlog_at_restart=at_restart_p["accepted"] - at_restart_c["processed"],
        broker_ready_s=ready - restarted,
        producer_connected_s=since(seen.get("connected"), restarted),
        outbox_empty_s=since(seen.get("outbox"), restarted),
        backlog_done_s=since(seen.get("backlog"), restarted),
        caught_up_s=since(seen.get("caught_up"), restarted),
        answers=list(orders.sent),
        outage_answers=orders.between(stamps["kill"], ready),
        lost=final_p["accepted"] - final_c["processed"],
        duplicates=final_c["duplicates"],
        resent=final_p["resent"],
    )


# -- report ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    users: tuple[int, ...]
    warm_s: float
    window_s: float
    raw_count: int
    raw_windows: tuple[int, ...]
    outages_s: tuple[float, ...]
    baseline_s: float
    rate_per_s: float = 100.0
    rate_users: int = 8


QUICK = Plan(users=(8,), warm_s=1, window_s=5, raw_count=3000, raw_windows=(1, 64), outages_s=(5,), baseline_s=2)
FULL = Plan(users=(1, 4, 16), warm_s=2, window_s=15, raw_count=20_000, raw_windows=(1, 16, 128),
            outages_s=(5, 10), baseline_s=5)


def p(values: list[float], q: float) -> str:
    return f"{percentile(values, q):7.1f}" if values else "      -"


def context(broker: Broker, quick: bool) -> str:
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    load1, load5, _ = os.getloadavg()
    return (f"messaging bench, broker {broker.name} ({broker.topology_file.relative_to(ROOT)}), "
            f"{'quick' if quick else 'full'} run\n"
            f"machine: {cores} cores ({usable} usable), load average {load1:.2f} / {load5:.2f}, "
            f"{platform.machine()}, Python {platform.python_version()}\n"
            f"everything on this machine: load client, Toxiproxy, broker, producer, consumer")


def print_throughput(rows: list[Throughput], process_ms: str, window_s: float) -> None:
    print(f"\n1. end to end, closed-loop client threads, {window_s:g} s window, consumer PROCESS_MS={process_ms}")
    print(f"  {'users':>5} {'accepted/s':>10} {'processed/s':>11} {'202 p50':>8} {'p99':>7} "
          f"{'lag p50':>8} {'p99':>7} {'max':>8} {'via outbox':>10} {'non-202':>7} {'backlog':>7} {'drained in':>10} "
          f"{'cores busy':>12}")
    for r in rows:
        ms = [s.ms for s in r.answers if s.status == 202]
        bad = sum(1 for s in r.answers if s.status != 202)
        print(f"  {r.users:>5} {r.accepted_per_s:10.0f} {r.processed_per_s:11.0f} {p(ms, 50)} {p(ms, 99)} "
              f"{p(r.lags, 50)} {p(r.lags, 99)} {p(r.lags, 100):>8} {r.via_outbox:10d} {bad:7d} "
              f"{r.backlog_at_stop:7d} {r.drain_after_stop_s:8.2f} s {r.machine_cores:5.2f} / {r.client_cores:4.2f}")
    print("  (ms; lag = producer read the request -> consumer recorded the processing; backlog = accepted"
          " - processed when the load stopped, drained in = until processed caught up;"
          "\n   cores busy = the whole machine / the load client alone)")


def print_ceiling(rows: list[Ceiling], count: int) -> None:
    print(f"\n2. ceiling: the broker's own client on the same broker ({rows[0].server}), {count} messages per window")
    windows = list(rows[0].publish_per_s)
    head = " ".join(f"{'window ' + str(w):>11}" for w in windows)
    print(f"  {'route':<22} publishes/s {head}   consumed/s (receive + ack)")
    for r in rows:
        cells = " ".join(f"{r.publish_per_s[w]:11.0f}" for w in windows)
        print(f"  {r.route:<22} {'':11} {cells}   {r.consumed_per_s:10.0f}")
    print("  (window = publishes awaiting the broker's ack at once; the producer has one per HTTP request in flight)")


def secs(value: float | None) -> str:
    return f"{value:7.2f} s" if value is not None else f" >{DRAIN_DEADLINE_S:.0f} s"


def print_outages(rows: list[Outage], rate: float, users: int, process_ms: str) -> None:
    print(f"\n3. broker killed (SIGKILL) and started again, load {rate:g} orders/s ({users} threads),"
          f" consumer PROCESS_MS={process_ms}")
    print(f"  {'down':>5} {'outbox at restart':>17} {'peak':>6} {'backlog':>7} {'broker ready':>12} "
          f"{'producer conn.':>14} {'outbox empty':>12} {'backlog done':>12} {'caught up':>9}")
    for r in rows:
        print(f"  {r.down_s:4g}s {r.outbox_at_restart:17d} {r.max_outbox:6d} {r.backlog_at_restart:7d} "
              f"{secs(r.broker_ready_s):>12} {secs(r.producer_connected_s):>14} {secs(r.outbox_empty_s):>12} "
              f"{secs(r.backlog_done_s):>12} {secs(r.caught_up_s):>9}")
    print("  (seconds from the restart = the broker's spawn; backlog = accepted by the restart, not yet processed;"
          " caught up = processed >= accepted while the load runs on)")
    print(f"  {'down':>5} {'steady lag p50':>14} {'p99':>7} {'202 in outage p50':>17} {'p99':>7} {'max':>8} "
          f"{'non-202':>7} {'re-sent':>7} {'lost':>5} {'dup. deliveries':>15}")
    for r in rows:
        ms = [s.ms for s in r.outage_answers if s.status == 202]
        bad = sum(1 for s in r.answers if s.status != 202)
        print(f"  {r.down_s:4g}s {p(r.baseline_lags, 50):>14} {p(r.baseline_lags, 99)} {p(ms, 50):>17} {p(ms, 99)} "
              f"{p(ms, 100):>8} {bad:7d} {r.resent:7d} {r.lost:5d} {r.duplicates:15d}")
    print("  (ms; steady lag = accept-to-process in the baseline before the kill; 202 in outage = requests sent between the kill and the broker's readiness;\n"
          "   non-202 over the whole run; lost = accepted - processed once all settled;"
          " dup. deliveries = redeliveries the consumer acked without processing)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", choices=sorted(BROKERS), default="nats", help="which topology and raw client")
    parser.add_argument("--quick", action="store_true", help="one load level, one outage (under a minute)")
    args = parser.parse_args()
    broker, plan = BROKERS[args.broker], QUICK if args.quick else FULL
    teardown.install_signal_handlers()  # SIGTERM and SIGHUP unwind like Ctrl-C: every finally runs
    topo = load_topology(broker.topology_file).with_variant("correct")
    fast = with_env(topo, "consumer", PROCESS_MS="0")
    process_ms = topo.service("consumer").env.get("PROCESS_MS", "(not set)")
    fast_ms = fast.service("consumer").env.get("PROCESS_MS", "(not set)")
    if fast is topo:
        fast_ms += " (the topology does not set PROCESS_MS: its consumer's own work bounds figure 1)"

    run_id = new_run_id()
    folder = Path(tempfile.mkdtemp(prefix="bench-messaging-"))
    sweep_dead_processes(keep_run=run_id)
    host = make_toxiproxy("local", run_id=run_id, log_path=folder / "toxiproxy.log")
    teardown.register(host)
    keep = False  # the services' logs, kept when the bench fails
    started = time.monotonic()
    print(context(broker, args.quick), flush=True)
    try:
        toxiproxy = host.start()
        with deployed(fast, toxiproxy, run_id, folder, "throughput") as rt:
            rows = [throughput(rt, users, warm_s=plan.warm_s, window_s=plan.window_s) for users in plan.users]
            print_throughput(rows, fast_ms, plan.window_s)
            (proxy,) = rt.link_proxies("producer->broker")
            ceilings = [ceiling(broker, route, addr, count=plan.raw_count, windows=plan.raw_windows)
                        for route, addr in (("direct", address(rt, "broker")),
                                            ("through Toxiproxy", proxy.listen))]
            print_ceiling(ceilings, plan.raw_count)
        outages = [outage(topo, toxiproxy, run_id, folder, down_s=down_s, rate=plan.rate_per_s,
                          users=plan.rate_users, baseline_s=plan.baseline_s) for down_s in plan.outages_s]
        print_outages(outages, plan.rate_per_s, plan.rate_users, process_ms)
        print(f"\n(total {time.monotonic() - started:.0f} s; load average now {os.getloadavg()[0]:.2f})")
    except KeyboardInterrupt:
        print("\ninterrupted: everything this run started is taken down", file=sys.stderr)
        return 130
    except Exception as exc:  # any failure: say so, keep the logs
        traceback.print_exc()
        keep = True
        print(f"\nbench failed: {exc}\nservice logs kept in {folder}", file=sys.stderr)
        return 1
    finally:
        host.stop()
        teardown.unregister(host)
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
