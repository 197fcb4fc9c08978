"""Probes: periodic samples of state, recorded in the timeline.

A probe is a named callable returning a dict of numbers (or raising); the
``Prober`` thread calls each one every interval and records what it got.
A probe that fails records its error, so a gap in a plot has a reason.

A sample may also hand over events the service saw, each with its own
``t_ns`` (same host clock) and an ``event`` name, under the key ``events``:
an arrival at a dependency, a breaker's state change. They are recorded one
by one as ``observed`` events, so checks can count what reached a service
to the millisecond, not only per sample.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

import httpx

from .timeline import Recorder

Sample = Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class Probe:
    name: str
    sample: Sample
    close: Callable[[], None] = lambda: None  # the Prober calls it once sampling is over
    settle: Callable[[], None] = lambda: None  # called before the last round: a recorder that lags catches up


def _http(timeout_s: float) -> httpx.Client:
    """One client per probe, kept for its life: a fresh httpx.get costs ~40 ms
    (a new SSL context each time), which stretched a round of 4 probes to
    ~0.3 s and made membership changes look late."""
    return httpx.Client(timeout=timeout_s)


def http_json_probe(name: str, url: str, *, fields: tuple[str, ...] = (), timeout_s: float = 0.3) -> Probe:
    """Samples numeric fields of a JSON endpoint such as a service's
    /admin/state. Nested objects are flattened to dotted names
    ("pools.critical.in_use"); `fields` picks some, by those names."""

    client = _http(timeout_s)

    def sample() -> dict[str, Any]:
        data = flatten(client.get(url).raise_for_status().json())
        numeric = {k: v for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        return {k: numeric.get(k) for k in fields} if fields else numeric

    return Probe(name, sample, client.close)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists are left out (they are not a sample)."""
    if not isinstance(data, dict):
        return {prefix: data} if prefix and not isinstance(data, list) else {}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _timestamped(name: str, url: str, *, list_key: str, event: str, fields: tuple[str, ...], since: bool,
                 timeout_s: float) -> Probe:
    """Numeric fields of a JSON answer plus the new entries of one of its lists
    (each {"t_ns": ..., ...}), handed over once each as `event`; with `since`
    the service is asked only for entries after the last one seen (?since_ns=)."""
    last = {"t_ns": 0}
    client = _http(timeout_s)

    def sample() -> dict[str, Any]:
        params = {"since_ns": last["t_ns"]} if since else None
        data = client.get(url, params=params).raise_for_status().json()
        fresh = [e for e in data.get(list_key, []) if isinstance(e, dict) and int(e.get("t_ns", 0)) > last["t_ns"]]
        if fresh:
            last["t_ns"] = max(int(e["t_ns"]) for e in fresh)
        values: dict[str, Any] = {k: data.get(k) for k in fields}
        values["events"] = [{**e, "event": event} for e in fresh]
        return values

    return Probe(name, sample, client.close)


def state_probe(name: str, url: str, *, fields: tuple[str, ...], events_key: str, event: str,
                timeout_s: float = 0.3) -> Probe:
    """Numeric fields of a JSON state endpoint, plus the new entries of one
    of its lists of timestamped events (e.g. a breaker's ``transitions``,
    each {"t_ns": ..., ...}), handed over once each as ``event``."""
    return _timestamped(name, url, list_key=events_key, event=event, fields=fields, since=False, timeout_s=timeout_s)


def records_probe(name: str, url: str, *, list_key: str, event: str, fields: tuple[str, ...] = ("count",),
                  timeout_s: float = 0.5) -> Probe:
    """Whole records a service keeps with their own ``t_ns`` (e.g. a
    consumer's processed messages with their ids), from ``GET
    <url>?since_ns=`` answering {list_key: [{"t_ns": ..., ...}, ...], ...}.
    Each new record becomes one ``event`` with all its fields."""
    return _timestamped(name, url, list_key=list_key, event=event, fields=fields, since=True, timeout_s=timeout_s)


def arrivals_probe(name: str, url: str, *, timeout_s: float = 0.5) -> Probe:
    """Every request that reached a service, from its ``GET <url>?since_ns=``
    endpoint answering {"count": total, "arrivals": [t_ns, ...]}.

    Fetches only what is new since the last sample. A service that restarts
    (a crash) starts counting again; arrivals it had not handed over yet are
    lost with it, so keep the interval short beside such faults.
    """
    last = {"t_ns": 0}
    client = _http(timeout_s)

    def sample() -> dict[str, Any]:
        data = client.get(url, params={"since_ns": last["t_ns"]}).raise_for_status().json()
        arrivals = [int(t) for t in data.get("arrivals", [])]
        if arrivals:
            last["t_ns"] = max(arrivals)
        return {"count": data.get("count", 0), "events": [{"t_ns": t, "event": "arrival"} for t in arrivals]}

    return Probe(name, sample, client.close)


def proxy_connections_probe(runtime: Any, link: str) -> list[Probe]:
    """The harness's own record of the connections a link's client opens: each
    one the link's proxies accepted, from Toxiproxy's log, as an observed
    "connection" event under the link's name (with its client address). It
    holds the connections a proxy closes at once because the server is down,
    so it counts calls where the server's own record cannot (crashed, paused).
    A lower bound of the calls: a call on a kept-alive connection opens none.
    No probe (an empty list) when the run's Toxiproxy log cannot be read."""
    log = getattr(runtime.toxiproxy, "log", None)
    if log is None:
        return []
    names, follower = {p.proxy for p in runtime.link_proxies(link)}, log.follow()

    def sample() -> dict[str, Any]:
        clients = [(t_ns, e.get("client")) for t_ns, e in follower.new()
                   if e.get("message") == "Accepted client" and e.get("name") in names]
        return {"accepted": len(clients),
                "events": [{"t_ns": t_ns, "event": "connection", "client": c} for t_ns, c in clients]}

    return [Probe(link, sample, follower.close)]


class Prober:
    """Samples every probe every ``interval_s`` until stopped."""

    def __init__(self, probes: list[Probe], recorder: Recorder, *, interval_s: float = 0.5) -> None:
        self.probes, self.recorder, self.interval_s = probes, recorder, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prober", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample_all()
            self._stop.wait(self.interval_s)
        for probe in self.probes:
            try:
                probe.settle()
            except Exception:  # a probe that cannot settle still gets its last round
                pass
        self._sample_all()  # a last round, so histories end after the load did

    def _sample_all(self) -> None:
        for probe in self.probes:
            try:
                values = probe.sample()
                events = values.pop("events", None) or []
                self.recorder.record("probe", probe=probe.name, **values)
                for event in events:
                    self.recorder.record("observed", source=probe.name, **event)
            except Exception as exc:
                self.recorder.record("probe", probe=probe.name, error=f"{type(exc).__name__}: {exc}"[:200])

    def __enter__(self) -> "Prober":
        if self.probes:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5 + 2 * len(self.probes))
        for probe in self.probes:
            try:
                probe.close()
            except Exception:  # a probe that cannot close must not hide the run's outcome
                pass
