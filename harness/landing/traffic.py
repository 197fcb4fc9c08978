"""Bytes through each proxy, as Toxiproxy counts them (``-proxy-metrics``).

Toxiproxy counts, per proxy, the bytes it received from clients
(direction "upstream") and from the server ("downstream") since the proxy
was made. A client that ignores the address the harness gave it leaves its
link's proxy at zero, and every toxic on that link is then a no-op: this
is the evidence that a client's traffic really flows through the fault.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..runtime.base import LinkProxy
from ..toxiproxy import ToxiproxyClient

_SAMPLE = re.compile(r"^toxiproxy_proxy_received_bytes_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)\s*$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class ProxyBytes:
    """Bytes one proxy received from its clients (upstream) and from its server (downstream)."""

    upstream: int = 0
    downstream: int = 0


def parse_metrics(text: str) -> dict[tuple[str, str], ProxyBytes]:
    """Received bytes per (proxy name, listen port), from Prometheus text, summed over the
    upstreams it had (a healed partition points it at a new one); proxies with no traffic
    yet are absent. The port tells apart an earlier proxy of the same name."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line.strip())
        if not m:
            continue
        labels = dict(_LABEL.findall(m["labels"]))
        proxy, direction = labels.get("proxy"), labels.get("direction")
        if proxy is None or direction not in ("upstream", "downstream"):
            continue
        key = (proxy, labels.get("listener", "").rsplit(":", 1)[-1])
        bucket = counts.setdefault(key, {})
        bucket[direction] = bucket.get(direction, 0) + int(float(m["value"]))
    return {k: ProxyBytes(upstream=c.get("upstream", 0), downstream=c.get("downstream", 0)) for k, c in counts.items()}


def proxy_bytes(toxiproxy: ToxiproxyClient, proxies: list[LinkProxy]) -> dict[str, ProxyBytes]:
    """The proxies' counters now, by proxy name (zero for one that has carried nothing)."""
    seen = parse_metrics(toxiproxy.metrics())
    return {p.proxy: seen.get((p.proxy, p.listen.rsplit(":", 1)[-1]), ProxyBytes()) for p in proxies}
