"""An asyncio loop in a daemon thread, shared by the broker clients of producer and consumer.

Both broker clients (nats-py, aio-pika) are asyncio; the HTTP side is the
standard library's threaded server. HTTP threads hand the loop coroutines
and wait on the returned Future with their own deadline (``LoopThread.call``),
so the bound on a client's wait holds even while the loop is busy.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

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
