"""The gateway's response cache: per-backend TTL, and stale-if-error.

An entry is *fresh* for its backend's TTL: served without calling the
backend. After that the backend is called; if the call fails, the entry is
served *stale* (and marked so) for up to STALE_MAX_S more, the
``stale-if-error`` of RFC 5861. A backend with TTL 0 is never cached:
the gateway would rather leave an optional part out than show an old one.

Keys are (backend, subject): every user's data is their own, so one user's
entry is never served to another. Bounded in size, least recently used
first out. Times are ``time.monotonic()``: a wall-clock step must not make
everything fresh or everything expired.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Entry:
    value: Any
    stored_at: float

    def age_s(self, now: float) -> float:
        return now - self.stored_at


class Cache:
    """Thread-safe; counts what it served for /admin/state."""

    def __init__(self, *, max_entries: int, stale_max_s: float, enabled: bool = True) -> None:
        self.max_entries, self.stale_max_s, self.enabled = max_entries, stale_max_s, enabled
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], Entry] = OrderedDict()
        self.counts = {"fresh_hits": 0, "stale_hits": 0, "misses": 0, "stores": 0, "evictions": 0}

    def fresh(self, backend: str, subject: str, ttl_s: float) -> Entry | None:
        """The entry if it is younger than ttl_s; None means: call the backend."""
        if not self.enabled or ttl_s <= 0:
            return None
        with self._lock:
            entry = self._entries.get((backend, subject))
            if entry is None or entry.age_s(time.monotonic()) >= ttl_s:
                return None
            self._entries.move_to_end((backend, subject))
            self.counts["fresh_hits"] += 1
            return entry

    def stale(self, backend: str, subject: str, ttl_s: float) -> Entry | None:
        """After a failed call: the expired entry, if still within stale_max_s."""
        if not self.enabled or ttl_s <= 0:
            return None
        with self._lock:
            entry = self._entries.get((backend, subject))
            if entry is None or entry.age_s(time.monotonic()) >= ttl_s + self.stale_max_s:
                self.counts["misses"] += 1
                return None
            self.counts["stale_hits"] += 1
            return entry

    def store(self, backend: str, subject: str, ttl_s: float, value: Any) -> None:
        if not self.enabled or ttl_s <= 0:
            return
        with self._lock:
            self._entries[(backend, subject)] = Entry(value, time.monotonic())
            self._entries.move_to_end((backend, subject))
            self.counts["stores"] += 1
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
                self.counts["evictions"] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self.counts)
            entries = len(self._entries)
        served = counts["fresh_hits"] + counts["stale_hits"]
        looked = served + counts["stores"] + counts["misses"]
        return {"enabled": self.enabled, "entries": entries, **counts,
                "hit_ratio": round(served / looked, 4) if looked else 0.0}
