"""The producer's durable state: the outbox and the log of what it accepted, in one SQLite file.

The outbox is what makes a 202 true while the broker is out: a message the
broker did not acknowledge in time is committed here before the client hears
"accepted", and stays until the broker acknowledges a re-send. The accepted
log is the producer's side of the history check: every 202, with its id and
time, also across a producer restart.

WAL with ``synchronous=NORMAL``: a commit is in the operating system's hands
before ``accept`` returns, which survives the producer being killed (the
fault model here) but not the machine losing power. The WAL is copied back
into the file (a checkpoint, which syncs the disk) by a thread of its own, on
its own connection: left to SQLite, the commit that crosses 1,000 pages does
it, under the store's lock, and on a busy disk every request in flight then
waited ~300 ms for that sync (seen on 2 Dec: a batch of 202s at 324 ms).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,
                                   payload BLOB NOT NULL, t_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS accepted (id TEXT PRIMARY KEY, t_ns INTEGER NOT NULL, key TEXT NOT NULL,
                                     via TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS accepted_t_ns ON accepted (t_ns);
"""
# The in-memory-outbox variant's mistake: a TEMP table of the same name shadows the file's outbox, so what
# it holds lives in the process's memory and is gone when the producer is killed.
MEMORY_OUTBOX = """
PRAGMA temp_store=MEMORY;
CREATE TEMP TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,
                          payload BLOB NOT NULL, t_ns INTEGER NOT NULL);
"""

CHECKPOINT_S = 1.0


@dataclass(frozen=True)
class Order:
    """One message: its id is the de-duplication key at the broker and at the consumer."""

    id: str
    key: str
    n: Any
    t_ns: int  # when the producer accepted it: the consumer's lag is measured from here

    def payload(self) -> bytes:
        return json.dumps({"id": self.id, "key": self.key, "n": self.n, "published_t_ns": self.t_ns}).encode()

    @classmethod
    def from_payload(cls, raw: bytes) -> "Order":
        body = json.loads(raw)
        return cls(id=str(body["id"]), key=str(body.get("key", "")), n=body.get("n"),
                   t_ns=int(body["published_t_ns"]))


class OutboxFull(Exception):
    """The outbox holds OUTBOX_MAX messages: accepting more would promise what the disk may not keep."""


class Store:
    """The SQLite file, shared by the HTTP threads and the loop thread behind one lock."""

    def __init__(self, path: Path, *, outbox_max: int, outbox_in_memory: bool = False) -> None:
        self.outbox_max = outbox_max
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints are the checkpointer's, off the lock
        self._db.executescript(SCHEMA)
        if outbox_in_memory:  # broken on purpose (the accepted log stays in the file: it is the cross-check)
            self._db.executescript(MEMORY_OUTBOX)
        self._outbox = self._count("outbox")
        self.accepted = self._count("accepted")
        self._closed = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_forever, args=(path,), name="checkpoint",
                                              daemon=True)
        self._checkpointer.start()

    def _checkpoint_forever(self, path: Path) -> None:
        """A passive checkpoint every CHECKPOINT_S: it never blocks the writers, so no request waits on the sync."""
        db = sqlite3.connect(path, isolation_level=None)
        try:
            while not self._closed.wait(CHECKPOINT_S):  # the checkpoint's pace, not a wait for a state
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:  # busy or closing: the next round tries again
                    pass
        finally:
            db.close()

    def accept(self, order: Order, *, via: str) -> None:
        """Record a 202; with via="outbox" the message goes into the outbox in the same transaction."""
        with self._lock:
            if via == "outbox" and self._outbox >= self.outbox_max:
                raise OutboxFull(f"outbox holds {self._outbox} messages (OUTBOX_MAX {self.outbox_max})")
            with self._db:
                self._db.execute("BEGIN")
                if via == "outbox":
                    cur = self._db.execute("INSERT OR IGNORE INTO outbox (id, payload, t_ns) VALUES (?, ?, ?)",
                                           (order.id, order.payload(), order.t_ns))
                    self._outbox += cur.rowcount
                cur = self._db.execute("INSERT OR IGNORE INTO accepted (id, t_ns, key, via) VALUES (?, ?, ?, ?)",
                                       (order.id, order.t_ns, order.key, via))
                self.accepted += cur.rowcount

    def pending(self, limit: int) -> list[Order]:
        """The oldest messages still waiting for the broker."""
        with self._lock:
            rows = self._db.execute("SELECT payload FROM outbox ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [Order.from_payload(raw) for (raw,) in rows]

    def remove(self, ids: list[str]) -> None:
        """Forget messages the broker has acknowledged."""
        if not ids:
            return
        with self._lock, self._db:
            self._db.execute("BEGIN")
            cur = self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])
            self._outbox -= cur.rowcount

    @property
    def outbox_size(self) -> int:
        return self._outbox

    def accepted_since(self, since_ns: int) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT id, t_ns, key, via FROM accepted WHERE t_ns > ? ORDER BY t_ns",
                                    (since_ns,)).fetchall()
        return [{"id": i, "t_ns": t, "key": k, "via": v} for i, t, k, v in rows]

    def close(self) -> None:
        self._closed.set()
        self._checkpointer.join(5)
        with self._lock:
            self._db.close()

    def _count(self, table: str) -> int:
        return self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
