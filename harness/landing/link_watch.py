"""Evidence for faults on a link (toxics, link_down): the client's traffic and a canary.

Two things must both be seen:

- traffic: the link's client really sends through the link's proxies
  (Toxiproxy's byte counters, less the canaries' own bytes): during the
  window for a toxic, before it for link_down (a closed listener carries
  nothing). A client that ignores the address it was given leaves them at 0.
- a canary, the harness's own connection through the first proxy, shows
  the toxic: added latency within a tolerance, a reset, a stall, a refusal.
  Toxics a short exchange cannot show (bandwidth, slicer, slow_close,
  limit_data) are confirmed installed on every proxy through Toxiproxy's API.

With toxicity below 1 a canary is affected only sometimes: canaries go on
until one is, or the window ends.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from ..events import FaultDescription
from ..runtime.base import Runtime
from .canary import CanaryResult, send_canary
from .sockets import open_connections
from .traffic import ProxyBytes, proxy_bytes
from .watches import Finding, Watch

UNSHOWN = ("bandwidth", "slicer", "slow_close", "limit_data")  # a canary cannot tell these apart
CANARY_GAP_S = 0.1  # between canaries: at most ~10 a second through a faulted proxy


def latency_tolerance_ms(latency_ms: float) -> float:
    """How far the canary's added latency may be from the toxic's: max(25 ms, 25%)."""
    return max(25.0, 0.25 * latency_ms)


class LinkWatch(Watch):
    poll_s = CANARY_GAP_S

    def __init__(self, description: FaultDescription, runtime: Runtime) -> None:
        super().__init__(description, runtime)
        self.link = description.on
        self.params = dict(description.params)
        self.proxies = runtime.link_proxies(self.link)
        self.protocol = runtime.topology.link(self.link).protocol
        self.address = runtime.toxiproxy.canary_address(self.proxies[0].listen) if self.proxies else ""
        self.names = [p.proxy for p in self.proxies]
        self.canary_bytes = 0
        self.canaries: list[CanaryResult] = []
        self.before_bytes: dict[str, ProxyBytes] = {}
        self.before_open: dict[tuple[str, str], int] = {}
        self.ports = [int(p.listen.rsplit(":", 1)[1]) for p in self.proxies]
        self.baseline: CanaryResult | None = None

    # -- before ------------------------------------------------------------------------------

    def prepare(self) -> None:
        if not self.proxies:
            raise RuntimeError(f"link {self.link} has no proxies")
        self.before_bytes = proxy_bytes(self.runtime.toxiproxy, self.proxies)
        self.before_open = self._open()
        if self.description.kind == "latency":  # the best of three: scheduling only ever adds
            tries = [self._canary(stall_s=2.0) for _ in range(3)]
            replies = [t for t in tries if t.outcome == "reply"]
            self.baseline = min(replies, key=lambda t: t.elapsed_ms) if replies else tries[0]
        else:
            self.baseline = self._canary(stall_s=1.0)

    def _open(self) -> dict[tuple[str, str], int]:
        return open_connections(self.ports, netns_pid=self.runtime.toxiproxy.netns_pid)

    def _canary(self, *, stall_s: float) -> CanaryResult:
        result = send_canary(self.address, self.protocol, stall_s=stall_s)
        self.canary_bytes += result.sent_bytes
        return result

    # -- during -----------------------------------------------------------------------------

    def observe(self, stop: threading.Event) -> Finding:
        kind = self.description.kind
        if kind in UNSHOWN:
            return self._installed(f"a canary cannot show a {kind} toxic on a short exchange")
        if kind != "link_down" and (self.baseline is None or self.baseline.outcome != "reply"):
            said = self.baseline.outcome if self.baseline else "none"
            return self._installed(f"before the fault the canary got no reply ({said}) to compare with")
        stall_s, affected, expect = self._expectation()
        tries: list[CanaryResult] = []

        def look() -> bool:
            result = self._canary(stall_s=stall_s)
            tries.append(result)
            return affected(result)

        hit = self.poll(stop, look, limit_s=3600.0)  # until the window ends
        self.canaries = tries
        hits = [t for t in tries if affected(t)]
        figures: dict[str, Any] = {"canary_baseline": self.baseline.to_json() if self.baseline else None,
                                   "canaries": len(tries), "canaries_affected": len(hits),
                                   "canary": (hits[0] if hits else (tries[-1] if tries else None)).to_json()
                                   if tries else None}
        if hit:
            return Finding(True, None, [f"a canary through {self.proxies[0].proxy} {expect}: "
                                        f"{_said(hits[0], self.baseline)}"], figures)
        said = _said(tries[-1], self.baseline) if tries else "no canary was sent"
        return Finding(False, f"no canary through {self.proxies[0].proxy} {expect} ({len(tries)} sent; the last: {said})",
                       [], figures)

    def _expectation(self) -> tuple[float, Callable[[CanaryResult], bool], str]:
        """How long a canary waits, what counts as the fault's effect, and that in words."""
        kind, p = self.description.kind, self.params
        if kind == "link_down":
            return 1.0, lambda r: r.outcome == "refused", "was refused"
        if kind == "latency":
            latency, jitter = float(p.get("latency", 0)), float(p.get("jitter", 0))
            tol = latency_tolerance_ms(latency)
            base = self.baseline.elapsed_ms if self.baseline and self.baseline.outcome == "reply" else 0.0
            low, high = latency - jitter - tol, latency + jitter + tol

            def slowed(r: CanaryResult) -> bool:
                return r.outcome == "reply" and low <= r.elapsed_ms - base <= high

            return (latency + jitter + tol) / 1000 + 2.0, slowed, f"was answered {latency:.0f} ms later (within {low:.0f}-{high:.0f} ms)"
        if kind == "reset_peer":
            after = float(p.get("timeout", 0))
            return after / 1000 + 1.0, lambda r: r.outcome in ("reset", "closed") and r.elapsed_ms >= after - 25, \
                f"was reset{f' after {after:.0f} ms' if after else ''}"
        if kind == "timeout":  # data is dropped: nothing comes back (a server's own close still may)
            return 1.0, lambda r: r.outcome in ("stalled", "closed", "reset"), "got no data back"
        raise ValueError(f"no canary expectation for {kind}")

    def _installed(self, why: str) -> Finding:
        name = f"harness_{self.description.kind}_{self.params.get('stream', 'downstream')}"
        missing = [p for p in self.names if not any(t.get("name") == name for t in self.runtime.toxiproxy.toxics(p))]
        if missing:
            return Finding(False, f"toxic {name} is not on proxy {', '.join(missing)}")
        self.seen()
        return Finding(True, None, [f"toxic {name} is on every proxy of {self.link} ({why})"],
                       {"canary": "not distinguishable", "canary_baseline": self.baseline.to_json() if self.baseline else None})

    # -- at the end ---------------------------------------------------------------------------

    def finish(self, finding: Finding) -> Finding:
        after, after_open = proxy_bytes(self.runtime.toxiproxy, self.proxies), self._open()
        before_open = self.before_open
        # Toxiproxy counts a connection's bytes when it closes; the kernel counts those still open.
        before_total = sum(b.upstream for b in self.before_bytes.values()) + sum(before_open.values())
        closed = sum(after[p].upstream - self.before_bytes.get(p, ProxyBytes()).upstream for p in self.names)
        closed -= sum(n for k, n in before_open.items() if k not in after_open)  # counted before already
        still_open = sum(n - before_open.get(k, 0) for k, n in after_open.items())
        clients = closed + still_open - self.canary_bytes
        figures = {**finding.figures, "client_bytes_before": before_total, "client_bytes_during": max(0, clients),
                   "canary_bytes": self.canary_bytes, "open_connections": len(after_open)}
        client = self.runtime.topology.link(self.link).client
        if self.description.kind == "link_down":
            used, when = before_total > 0, "before the fault"
        else:
            used, when = clients > 0, "during the fault"
        if not used:
            reason = (f"no traffic of {client} went through {self.link}'s proxies {when} "
                      f"({before_total} bytes before the fault, {max(0, clients)} during it, beside the harness's "
                      f"canaries): {client} does not use the address the harness gave it, so the fault touched nothing")
            return Finding(False, reason if finding.landed is not False else f"{finding.reason}; and {reason}",
                           finding.evidence, figures)
        evidence = [*finding.evidence, f"{client} sent {before_total if self.description.kind == 'link_down' else clients} "
                                        f"bytes through {self.link}'s proxies {when}"]
        return Finding(finding.landed, finding.reason, evidence, figures)


def _said(result: CanaryResult, baseline: CanaryResult | None) -> str:
    """A canary's outcome in words, with the baseline beside a reply."""
    if result.outcome == "reply":
        base = f" (before the fault {baseline.elapsed_ms:.0f} ms)" if baseline and baseline.outcome == "reply" else ""
        return f"first byte after {result.elapsed_ms:.0f} ms{base}"
    return f"{result.outcome} after {result.elapsed_ms:.0f} ms"
