"""One answer composed from several backends, through the cache.

For each backend of a route: a fresh cache entry is used as it is; the
others are called (in parallel, each within its timeout); a failed call
falls back to the stale entry, if any. Then:

- every part present: 200, ``partial: false``
- an optional part missing: 200, ``partial: true``, ``missing`` names it
- a required part missing: 502 (504 if it timed out), naming the hop
- any part from an expired entry: ``stale`` names it

``sources`` says where each part came from: live, cache, stale or missing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from cache import Cache
from config import Backend, GatewayConfig
from fanout import CallHeaders, Outcome, call_parallel, call_sequential


@dataclass
class Served:
    """Per-backend counters of /admin/state: where parts came from."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, backend: str, source: str) -> None:
        with self.lock:
            per = self.counts.setdefault(backend, {"live": 0, "cache": 0, "stale": 0, "missing": 0})
            per[source] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {name: dict(per) for name, per in self.counts.items()}


class Aggregator:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.cache = Cache(max_entries=config.cache_max_entries, stale_max_s=config.stale_max_s,
                           enabled=config.variant != "no-cache")
        self.served = Served()
        self.ejected: set[str] = set()  # variant never-readmits only: backends it stopped calling

    def compose(self, backends: tuple[Backend, ...], headers: CallHeaders,
                cache_key: str | None = None) -> tuple[int, dict[str, Any]]:
        """The answer; parts are cached under cache_key, the subject unless told
        otherwise (the shared-cache variant keys by route, as a URL cache would)."""
        key = cache_key or headers.subject
        parts: dict[str, Any] = {}
        sources: dict[str, str] = {}
        errors: dict[str, str] = {}
        to_call = []
        for b in backends:
            entry = self.cache.fresh(b.name, key, b.ttl_s)
            if entry is not None:
                parts[b.name], sources[b.name] = entry.value, "cache"
            else:
                to_call.append(b)
        for b, outcome in zip(to_call, self._call(to_call, headers)):
            if outcome.ok:
                self.cache.store(b.name, key, b.ttl_s, outcome.data)
                parts[b.name], sources[b.name] = outcome.data, "live"
                continue
            errors[b.name] = outcome.error or "failed"
            entry = self.cache.stale(b.name, key, b.ttl_s)
            parts[b.name], sources[b.name] = (entry.value, "stale") if entry else (None, "missing")
        for name, source in sources.items():
            self.served.add(name, source)
        return self._answer(backends, parts, sources, errors, headers.request_id)

    def _call(self, backends: list[Backend], headers: CallHeaders) -> list[Outcome]:
        variant = self.config.variant
        if variant == "never-readmits":
            live = [b for b in backends if b.name not in self.ejected]
            got = call_parallel(live, headers)
            self.ejected.update(name for name, o in got.items() if not o.ok)
            return [got.get(b.name) or Outcome(b.name, error="ejected") for b in backends]
        calls = call_sequential if variant == "sequential-no-timeout" else call_parallel
        got = calls(backends, headers)
        return [got[b.name] for b in backends]

    def _answer(self, backends: tuple[Backend, ...], parts: dict[str, Any], sources: dict[str, str],
                errors: dict[str, str], request_id: str) -> tuple[int, dict[str, Any]]:
        missing = [b.name for b in backends if sources[b.name] == "missing"]
        stale = [b.name for b in backends if sources[b.name] == "stale"]
        lost = [b for b in backends if b.name in missing and not b.optional]
        body = {"service": self.config.name, "request_id": request_id, "partial": bool(missing),
                "missing": missing, "stale": stale, "sources": sources}
        if lost:
            first = lost[0]
            timed_out = errors.get(first.name) == "timeout"
            return (504 if timed_out else 502), {
                "error": "backend timeout" if timed_out else "backend unavailable", "hop": first.hop,
                "detail": errors.get(first.name), **body}
        if errors:
            body["errors"] = errors
        return 200, {**body, "parts": parts}
