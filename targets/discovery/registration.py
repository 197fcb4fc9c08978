"""An instance's entry in the registry: registered under a lease, kept alive
by heartbeats, taken out first on a graceful stop.

The key is ``<PREFIX><instance id>`` and its value says where to reach the
instance. With a lease (the pattern) the entry dies TTL seconds after the
last heartbeat: a crashed or frozen instance leaves by itself. Heartbeats
that fail while the registry is away are retried; a lease that expired
meanwhile (keep-alive answers TTL 0) is replaced by a new registration, so
an instance that was paused or outlived an outage comes back on its own.

The ``no-ttl`` variant puts the entry without a lease: nothing ever removes
it unless the instance says goodbye.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field

from etcdlink import Etcd


@dataclass
class Record:
    """What the instance did with the registry, for /admin/state."""

    registered: bool = False
    registrations: int = 0
    heartbeats: int = 0
    failures: int = 0
    events: list[dict] = field(default_factory=list)

    def note(self, event: str, **detail: object) -> None:
        self.events.append({"t_ns": time.time_ns(), "event": event, **detail})
        del self.events[:-1000]


class Registration:
    """Runs the register/heartbeat loop in a thread; ``leave()`` deregisters."""

    def __init__(self, etcd: Etcd, *, key: str, value: dict, ttl_s: int, heartbeat_s: float,
                 use_lease: bool) -> None:
        self.etcd, self.key, self.value = etcd, key, value
        self.ttl_s, self.heartbeat_s, self.use_lease = ttl_s, heartbeat_s, use_lease
        self.record = Record()
        self.lease: int | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="registration", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _register(self) -> None:
        self.lease = self.etcd.grant(self.ttl_s) if self.use_lease else None
        entry = {**self.value, "registered_ns": time.time_ns()}  # when, for the harness's takes-traffic check
        self.etcd.put(self.key, json.dumps(entry, separators=(",", ":")), lease=self.lease)
        self.record.registered = True
        self.record.registrations += 1
        self.record.note("registered", lease=str(self.lease or 0))

    def _beat(self) -> None:
        """One heartbeat; registers (again) when there is no live entry."""
        with self._lock:
            if self._stop.is_set():
                return
            if not self.record.registered:
                self._register()
            elif self.use_lease and self.lease is not None:
                if self.etcd.keep_alive(self.lease) > 0:
                    self.record.heartbeats += 1
                else:
                    self.record.registered = False
                    self.record.note("lease-expired", lease=str(self.lease))
                    self._register()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._beat()
            except Exception as exc:  # the registry is away: try again at the next beat
                self.record.failures += 1
                if self.record.failures % 20 == 1:
                    print(f"registration: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            if not self.record.registered:
                self._stop.wait(min(0.2, self.heartbeat_s))  # not in yet: try sooner
            elif self.use_lease:
                self._stop.wait(self.heartbeat_s)
            else:
                self._stop.wait()  # no lease, nothing to renew

    def leave(self) -> bool:
        """Stops heartbeats and removes the entry; True when the registry confirmed it."""
        with self._lock:
            self._stop.set()
            try:
                self.etcd.delete(self.key)
                if self.lease is not None:
                    self.etcd.revoke(self.lease)
            except Exception as exc:
                self.record.note("deregister-failed", error=f"{type(exc).__name__}: {exc}"[:200])
                return False
            self.record.registered = False
            self.record.note("deregistered")
            return True
