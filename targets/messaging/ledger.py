"""The consumer's record of what it processed: an append-only JSON-lines file in DATA_DIR.

It is both the consumer's idempotency memory (which ids are done, also after
a crash) and the harness's evidence (every processing, with when it
happened and when the message was accepted). A line is written and flushed
to the operating system before the message is acknowledged, so a consumer
killed at any moment either has the line (and a redelivery is a duplicate)
or has not acked (and the redelivery is processed): nothing falls between.
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from pathlib import Path
from typing import Any


class Ledger:
    """Processings and duplicate deliveries, in memory and in the file; safe across threads."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self.records: list[dict[str, Any]] = []
        self._stamps: list[int] = []
        self.seen: set[str] = set()
        self.duplicates = 0
        self._load(path)
        self._file = path.open("ab")

    def processed(self, *, id: str, key: str, published_t_ns: int, delivery: int) -> dict[str, Any]:
        """Record one processing (flushed before returning); its t_ns is now, strictly increasing."""
        with self._lock:
            t_ns = max(time.time_ns(), self._stamps[-1] + 1 if self._stamps else 0)
            record = {"id": id, "key": key, "t_ns": t_ns, "published_t_ns": published_t_ns,
                      "delivery": delivery}
            self._write({"event": "processed", **record})
            self._keep(record)
            return record

    def duplicate(self, *, id: str, delivery: int) -> None:
        """Record a redelivery of an id already processed: acked, not processed again."""
        with self._lock:
            self._write({"event": "duplicate", "id": id, "t_ns": time.time_ns(), "delivery": delivery})
            self.duplicates += 1

    def since(self, since_ns: int) -> list[dict[str, Any]]:
        with self._lock:
            return self.records[bisect.bisect_right(self._stamps, since_ns):]

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def _write(self, line: dict[str, Any]) -> None:
        self._file.write(json.dumps(line).encode() + b"\n")
        self._file.flush()

    def _keep(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        self._stamps.append(record["t_ns"])
        self.seen.add(record["id"])

    def _load(self, path: Path) -> None:
        """Read back an earlier life's file; a torn last line (killed mid-write) is cut off."""
        if not path.exists():
            return
        good = 0
        with path.open("rb") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    break
                if not line.endswith(b"\n"):
                    break
                good += len(line)
                if entry.pop("event", None) == "duplicate":
                    self.duplicates += 1
                else:
                    self._keep(entry)
        if good < path.stat().st_size:
            with path.open("r+b") as f:
                f.truncate(good)
