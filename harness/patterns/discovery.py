"""Who is in: membership as a registry and a load balancer see it, sampled by probes.

A membership probe reads a set of member names and hands over a ``joined``
or ``left`` event (with ``member``) for every change since its last sample,
plus the count. The readers know two real components: etcd (entries under
a key prefix, through its JSON gateway) and Envoy (a cluster's hosts in
its admin ``/clusters?format=json``). Membership from the client side comes
from the requests themselves (the answer's field naming who served it).
"""

from __future__ import annotations

import base64
import json
from typing import Any, Callable

import httpx

from ..probes import Probe

# member name -> what the view says of it (e.g. {"registered_ns": ...}), carried on its joined event
Members = dict[str, dict[str, Any]]


class Reader:
    """Reads a view's members over one kept HTTP client; close() when done."""

    def __init__(self, read: Callable[[httpx.Client], Members], timeout_s: float) -> None:
        self.client = httpx.Client(timeout=timeout_s)
        self._read = read

    def __call__(self) -> Members:
        return self._read(self.client)

    def close(self) -> None:
        self.client.close()


def etcd_members(url: str, prefix: str, *, name_field: str = "instance", timeout_s: float = 0.5) -> Reader:
    """Members registered in etcd under prefix: each entry's JSON `name_field`,
    or the key's last part when the value is not JSON naming one. An entry's
    ``registered_ns`` (the instance's own clock at registering) is kept."""
    end = prefix.encode()[:-1] + bytes([prefix.encode()[-1] + 1])
    body = {"key": base64.b64encode(prefix.encode()).decode(), "range_end": base64.b64encode(end).decode()}

    def read(client: httpx.Client) -> Members:
        data = client.post(url.rstrip("/") + "/v3/kv/range", json=body).raise_for_status().json()
        members: dict[str, dict[str, Any]] = {}
        for kv in data.get("kvs", []):
            key = base64.b64decode(kv["key"]).decode()
            try:
                value = json.loads(base64.b64decode(kv.get("value", "")))
            except ValueError:
                value = None
            if not isinstance(value, dict):
                members[key.rsplit("/", 1)[-1]] = {}
                continue
            name = str(value.get(name_field) or key.rsplit("/", 1)[-1])
            stamp = value.get("registered_ns")
            members[name] = {"registered_ns": stamp} if isinstance(stamp, int) and not isinstance(stamp, bool) else {}
        return members

    return Reader(read, timeout_s)


def envoy_members(clusters_url: str, cluster: str, *, timeout_s: float = 0.5) -> Reader:
    """Hosts of one Envoy cluster, by hostname (host:port when it has none),
    from an admin ``/clusters?format=json`` answer."""

    def read(client: httpx.Client) -> Members:
        data = client.get(clusters_url, params={"format": "json"}).raise_for_status().json()
        for status in data.get("cluster_statuses", []):
            if status.get("name") == cluster:
                return {_host_name(h): {} for h in status.get("host_statuses", [])}
        raise LookupError(f"Envoy has no cluster {cluster!r} at {clusters_url}")

    return Reader(read, timeout_s)


def _host_name(host: dict[str, Any]) -> str:
    if host.get("hostname"):
        return str(host["hostname"])
    address = host.get("address", {}).get("socket_address", {})
    return f"{address.get('address')}:{address.get('port_value')}"


def membership_probe(name: str, read: Callable[[], Members]) -> Probe:
    """Samples `read`; each change since the last good sample becomes a
    joined/left event, stamped when the probe saw it. A member that says when
    it registered (``registered_ns``) joins at that moment instead, except in
    the first sample: a probe round takes long enough that the balancer can
    be seen to know a member before the registry's next sample does. A member
    registered again in between (a new ``registered_ns``) joins again."""
    known: dict[str, dict[str, Any]] = {}
    first = {"sample": True}

    def joined(member: str, facts: dict[str, Any]) -> dict[str, Any]:
        stamp = facts.get("registered_ns")
        own = {} if first["sample"] or not isinstance(stamp, int) else {"t_ns": stamp}
        return {"event": "joined", "member": member, **facts, **own}

    def sample() -> dict[str, Any]:
        members = read()
        events = [{"event": "left", "member": m} for m in sorted(set(known) - set(members))]
        events += [joined(m, facts) for m, facts in sorted(members.items()) if m not in known or known[m] != facts]
        known.clear()
        known.update(members)
        first["sample"] = False
        return {"members": len(members), "events": events}

    return Probe(name, sample, getattr(read, "close", lambda: None))


__all__ = ["Members", "Reader", "envoy_members", "etcd_members", "membership_probe"]
