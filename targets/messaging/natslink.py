"""What producer and consumer share about NATS: the loop thread, the
connection that never gives up, and the stream and durable consumer either
of them may be the first to need.

The client is ``nats-py`` (asyncio). It runs in one event loop in a daemon
thread; HTTP threads hand it coroutines and wait on the returned Future with
their own deadline (``LoopThread.call``).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from envconfig import Link

T = TypeVar("T")


class LoopThread:
    """An asyncio loop running in a daemon thread (daemon: SIGTERM must not wait on it)."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> Future[Any]:
        """Start a long-running task (connecting, the fetch loop, the drain) that stop() cancels."""
        async def tracked() -> Any:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            return await coro

        return self.submit(tracked())

    def call(self, coro: Coroutine[Any, Any, T], *, timeout_s: float) -> T:
        """Run coro in the loop and wait at most timeout_s; on timeout it is cancelled and TimeoutError raised."""
        future = self.submit(coro)
        try:
            return future.result(timeout=timeout_s)
        except TimeoutError:
            future.cancel()
            raise

    def stop(self, closing: Coroutine[Any, Any, Any], *, timeout_s: float = 2.0) -> None:
        """Cancel the spawned tasks (the fetch loop, the drain), run a last coroutine
        (closing the client), then stop the loop. Tasks first: a fetch in flight holds close() up."""
        async def shutdown() -> None:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            try:
                await asyncio.wait_for(closing, timeout_s)
            except Exception:
                pass  # stopping anyway: the broker may be unreachable

        try:
            self.call(shutdown(), timeout_s=timeout_s + 1)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)


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
        self._last_error = ("", 0.0)

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
        self._say(f"connected to {self.link.url}")
        await self._prepare()

    async def close(self) -> None:
        if not self.nc.is_closed:
            await self.nc.close()

    async def _error(self, exc: Exception) -> None:
        # One line per kind of error per 10 s: a broker down for a minute
        # would otherwise write four reconnect failures a second.
        text = f"{type(exc).__name__}: {exc}"[:200]
        last, at = self._last_error
        if text != last or time.monotonic() - at > 10:
            self._last_error = (text, time.monotonic())
            self._say(f"nats error: {text}")

    async def _disconnected(self) -> None:
        self._say(f"disconnected from {self.link.url}")

    async def _reconnected(self) -> None:
        self._say(f"reconnected to {self.link.url}")
        # A task, not awaited here: nats-py runs this callback inside its reconnect path.
        asyncio.get_running_loop().create_task(self._prepare())

    async def _prepare(self) -> None:
        """on_connect, with a failure logged rather than raised: the next reconnect or use retries it."""
        try:
            await self.on_connect()
        except Exception as exc:
            self._say(f"setting up after connect failed: {type(exc).__name__}: {exc}"[:300])

    def _say(self, text: str) -> None:
        print(f"{self.client_name}: {text}", file=sys.stderr, flush=True)


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
