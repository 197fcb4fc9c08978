"""A small bounded connection pool for the bulkhead target, and its watchdog.

Why not psycopg_pool: its connections are (re)opened by background workers
with exponential backoff (1 s, 2 s, 4 s ...), so after a database outage the
pool comes back on its own schedule rather than when the database does, and
a recovery bound would measure the backoff. It also puts no client-side
bound on a query over a connection it handed out: against a paused server,
or a Toxiproxy ``timeout`` toxic, ``statement_timeout`` never fires because
the server never runs the timer, and the kernel keeps ACKing, so TCP
timeouts do not fire either. This pool opens connections on demand (at most
`size`), waits at most `wait_ms` for a free slot, and bounds every connect
and query by `timeout_ms` on the client.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

import psycopg

IDLE = psycopg.pq.TransactionStatus.IDLE
ABORT_MARGIN_S = 0.25  # the server's statement_timeout should win; the watchdog catches stalls


class PoolExhausted(Exception):
    """No connection within the pool's wait: the request is rejected, not queued."""

    def __init__(self, pool: str, waited_ms: float) -> None:
        super().__init__(f"pool {pool} exhausted after {waited_ms:.0f} ms")
        self.waited_ms = waited_ms


class QueryTimeout(Exception):
    """A connect or query did not finish within the timeout (server- or client-side)."""

    def __init__(self, step: str, after_ms: float) -> None:
        super().__init__(f"{step} timed out after {after_ms:.0f} ms")
        self.step = step
        self.after_ms = after_ms


class Watchdog:
    """One thread that aborts overdue queries by shutting their socket down.

    shutdown() makes the blocked read see EOF, so psycopg raises at once and
    the connection is marked broken. The action runs under the lock, and
    disarm() takes the lock, so a connection is never closed (and its fd
    reused) while its abort is in progress.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: dict[int, tuple[float, Callable[[], None]]] = {}
        self._fired: set[int] = set()
        self._next = 0
        threading.Thread(target=self._run, name="watchdog", daemon=True).start()

    def arm(self, timeout_s: float, action: Callable[[], None]) -> int:
        with self._cond:
            self._next += 1
            self._armed[self._next] = (time.monotonic() + timeout_s, action)
            self._cond.notify()
            return self._next

    def disarm(self, token: int) -> bool:
        """Stop watching; True if the action already ran."""
        with self._cond:
            self._armed.pop(token, None)
            if token in self._fired:
                self._fired.discard(token)
                return True
            return False

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for token, (deadline, action) in list(self._armed.items()):
                    if deadline <= now:
                        del self._armed[token]
                        self._fired.add(token)
                        try:
                            action()
                        except Exception:  # an abort must never kill the watchdog
                            pass
                soonest = min((d for d, _ in self._armed.values()), default=None)
                self._cond.wait(None if soonest is None else max(soonest - now, 0.001))


def abort_socket(conn: psycopg.Connection[Any]) -> None:
    """Shut the connection's socket down (a dup of its fd, so psycopg still owns the fd)."""
    sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
    try:
        sock.shutdown(socket.SHUT_RDWR)
    finally:
        sock.close()


def is_usable(conn: psycopg.Connection[Any]) -> bool:
    """Whether an idle connection may be handed out, checked without a round trip.

    An idle connection has nothing to read unless the server closed it (EOF
    after a crash, a reset by the proxy) or sent something unasked (a rare
    notice); either way it is dropped, so a restarted database costs no
    failed request per stale connection.
    """
    if conn.closed or conn.broken:
        return False
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return False
    return not readable


def connect_bounded(conninfo: str, timeout_s: float) -> psycopg.Connection[Any]:
    """Open a connection within timeout_s.

    psycopg's own connect_timeout has a 2 s floor and whole seconds. The
    connect runs in a daemon thread; if it is abandoned and succeeds later,
    the connection is closed there.
    """
    future: Future[psycopg.Connection[Any]] = Future()
    abandoned = threading.Event()

    def target() -> None:
        try:
            conn = psycopg.Connection.connect(conninfo, autocommit=True, prepare_threshold=None)
        except BaseException as exc:  # handed to the waiting caller
            future.set_exception(exc)
            return
        if abandoned.is_set():
            conn.close()
        else:
            future.set_result(conn)

    threading.Thread(target=target, name="connect", daemon=True).start()
    try:
        return future.result(timeout=timeout_s)
    except TimeoutError:
        abandoned.set()
        if future.done() and future.exception() is None:  # it won the race after all
            return future.result()
        raise QueryTimeout("connect", timeout_s * 1000) from None


class Cap:
    """A limit on connections that several pools draw from, with the one lock they share
    (the shared-limit variant's mistake: a process-wide limiter instead of one per pool)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.in_use = 0
        self.cond = threading.Condition()

    @property
    def full(self) -> bool:
        return self.in_use >= self.size


class Pool:
    """At most `size` connections (and, with a shared `cap`, only while the cap has one left);
    a caller waits at most `wait_ms` for one."""

    def __init__(self, name: str, *, size: int, conninfo: str, wait_ms: int,
                 timeout_ms: int, watchdog: Watchdog, leak_failed: bool = False, cap: Cap | None = None) -> None:
        self.name = name
        self.leak_failed = leak_failed  # the leaky-pool variant: a failed request never gives its slot back
        self.size = size
        self.conninfo = conninfo
        self.wait_s = wait_ms / 1000
        self.timeout_s = timeout_ms / 1000
        self.watchdog = watchdog
        self.cap = cap
        self._cond = cap.cond if cap else threading.Condition()
        self._idle: list[psycopg.Connection[Any]] = []
        self.in_use = self.waiting = self.rejected = self.served = self.errors = 0

    def _acquire(self) -> psycopg.Connection[Any] | None:
        """Take a slot (and an idle connection, if any) or raise PoolExhausted."""
        started = time.monotonic()
        deadline = started + self.wait_s
        with self._cond:
            if self._full():
                self.waiting += 1
                try:
                    while self._full():
                        left = deadline - time.monotonic()
                        if left <= 0:
                            self.rejected += 1
                            raise PoolExhausted(self.name, (time.monotonic() - started) * 1000)
                        self._cond.wait(left)
                finally:
                    self.waiting -= 1
            self.in_use += 1
            self.served += 1
            if self.cap:
                self.cap.in_use += 1
        while True:  # newest idle first; a slot holds at most one connection
            with self._cond:
                conn = self._idle.pop() if self._idle else None
            if conn is None or is_usable(conn):
                return conn
            conn.close()

    def _release(self, conn: psycopg.Connection[Any] | None, failed: bool) -> None:
        """Free the slot; keep the connection only if it is idle and intact.

        A query cancelled by statement_timeout leaves a good connection (kept);
        one the watchdog aborted, or the server dropped, is broken (closed).
        """
        if conn is not None and (conn.closed or conn.broken
                                 or conn.info.transaction_status != IDLE or (failed and self.leak_failed)):
            conn.close()
            conn = None
        if failed and self.leak_failed:  # the bug of a missing finally: the slot is gone for good
            with self._cond:
                self.errors += 1
            return
        with self._cond:
            self.in_use -= 1
            self.errors += failed
            if conn is not None:
                self._idle.append(conn)
            if self.cap:
                self.cap.in_use -= 1
                self._cond.notify_all()  # the waiters of every pool on the cap
            else:
                self._cond.notify()

    def _full(self) -> bool:
        return self.in_use >= self.size or bool(self.cap and self.cap.full)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection for one request; broken ones are dropped, not returned."""
        conn = self._acquire()
        failed = True
        try:
            if conn is None:
                conn = connect_bounded(self.conninfo, self.timeout_s)
            yield conn
            failed = False
        finally:
            self._release(conn, failed)

    def fetch(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        """Run one statement on a pooled connection and return its first row (() if none)."""
        with self.connection() as conn:
            return self.fetch_on(conn, sql, params)

    def fetch_on(self, conn: psycopg.Connection[Any], sql: str,
                 params: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        """One statement, bounded by the server's statement_timeout and by the watchdog."""
        started = time.monotonic()
        token = self.watchdog.arm(self.timeout_s + ABORT_MARGIN_S, lambda: abort_socket(conn))
        try:
            cursor = conn.execute(sql, params)
            row = cursor.fetchone() if cursor.description else ()
        except psycopg.errors.QueryCanceled:
            raise QueryTimeout("query", (time.monotonic() - started) * 1000) from None
        except psycopg.Error:
            if self.watchdog.disarm(token):
                raise QueryTimeout("query", (time.monotonic() - started) * 1000) from None
            raise
        finally:
            if self.watchdog.disarm(token):
                conn.close()  # aborted just as it finished: the socket is gone either way
        return tuple(row or ())

    def fill(self) -> None:
        """Open connections up to `size` now, so the first requests do not pay for connects."""
        with self._cond:
            missing = self.size - self.in_use - len(self._idle)
        for _ in range(max(missing, 0)):
            conn = connect_bounded(self.conninfo, self.timeout_s)
            with self._cond:
                self._idle.append(conn)

    def snapshot(self) -> dict[str, Any]:
        with self._cond:
            return {"size": self.size, "in_use": self.in_use, "waiting": self.waiting,
                    "rejected": self.rejected, "served": self.served, "errors": self.errors,
                    "idle_connections": len(self._idle)}

    def close(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
