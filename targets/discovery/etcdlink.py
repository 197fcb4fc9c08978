"""etcd v3 through its JSON gateway (``/v3/...`` on the client port), with httpx.

etcd 3.4 serves its gRPC API as JSON on the same port, so the instances and
the balancer need no gRPC stack: keys and values travel base64-encoded,
64-bit numbers as strings. Only what discovery uses is here: leases (grant,
keep alive, revoke), put/delete, a prefix range, and a prefix watch read as
a stream of JSON lines.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx


class RegistryError(Exception):
    """etcd answered, but not as asked (an error body, a missing field)."""


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def prefix_end(prefix: str) -> str:
    """The range_end that makes [prefix, end) every key under prefix."""
    raw = prefix.encode()
    return base64.b64encode(raw[:-1] + bytes([raw[-1] + 1])).decode()


@dataclass(frozen=True)
class Change:
    """One watch event: a key put (with its value) or deleted (value None)."""

    key: str
    value: str | None


class Etcd:
    """One etcd endpoint; every call has its own short timeout."""

    def __init__(self, url: str, *, timeout_s: float = 1.0) -> None:
        self.url = url.rstrip("/")
        self.client = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self.client.close()

    def _post(self, path: str, body: dict) -> dict:
        answer = self.client.post(self.url + path, json=body)
        data = answer.json() if answer.content else {}
        if answer.status_code != 200 or "error" in data:
            raise RegistryError(f"{path}: HTTP {answer.status_code} {str(data.get('error') or data)[:200]}")
        return data

    def grant(self, ttl_s: int) -> int:
        return int(self._post("/v3/lease/grant", {"TTL": ttl_s})["ID"])

    def keep_alive(self, lease: int) -> int:
        """The lease's remaining TTL after this renewal; 0 when it has expired (re-register)."""
        result = self._post("/v3/lease/keepalive", {"ID": str(lease)}).get("result") or {}
        return int(result.get("TTL") or 0)

    def revoke(self, lease: int) -> None:
        self._post("/v3/lease/revoke", {"ID": str(lease)})

    def put(self, key: str, value: str, *, lease: int | None = None) -> int:
        body = {"key": b64(key), "value": b64(value)}
        if lease:
            body["lease"] = str(lease)
        return int(self._post("/v3/kv/put", body)["header"]["revision"])

    def delete(self, key: str) -> int:
        return int(self._post("/v3/kv/deleterange", {"key": b64(key)})["header"]["revision"])

    def members(self, prefix: str) -> tuple[dict[str, str], int]:
        """Every key under prefix with its value, and the store's revision they are as of."""
        data = self._post("/v3/kv/range", {"key": b64(prefix), "range_end": prefix_end(prefix)})
        kvs = {unb64(kv["key"]): unb64(kv.get("value", "")) for kv in data.get("kvs", [])}
        return kvs, int(data["header"]["revision"])

    def watch(self, prefix: str, *, start_revision: int, idle_timeout_s: float = 30.0) -> Iterator[list[Change]]:
        """Batches of changes under prefix from start_revision on, as etcd sends them.
        Ends (raises) when the stream breaks: the caller re-reads and watches again."""
        body = {"create_request": {"key": b64(prefix), "range_end": prefix_end(prefix),
                                   "start_revision": str(start_revision)}}
        timeout = httpx.Timeout(connect=1.0, read=idle_timeout_s, write=1.0, pool=1.0)
        with self.client.stream("POST", self.url + "/v3/watch", json=body, timeout=timeout) as stream:
            if stream.status_code != 200:
                raise RegistryError(f"/v3/watch: HTTP {stream.status_code}")
            for line in stream.iter_lines():
                if not line.strip():
                    continue
                message = json.loads(line)
                if "error" in message:
                    raise RegistryError(f"/v3/watch: {str(message['error'])[:200]}")
                result = message.get("result") or {}
                if result.get("canceled") or result.get("compact_revision"):
                    raise RegistryError(f"/v3/watch: canceled ({result.get('cancel_reason') or 'compacted'})")
                yield [Change(unb64(e["kv"]["key"]),
                              unb64(e["kv"].get("value", "")) if e.get("type", "PUT") == "PUT" else None)
                       for e in result.get("events", [])]
        raise RegistryError("/v3/watch: the stream ended")
