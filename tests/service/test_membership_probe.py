"""The etcd membership reader against a real etcd node (the diffing and the
Envoy reader are unit tests: tests/unit/test_membership_probe.py)."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from harness.patterns.discovery import etcd_members, membership_probe
from harness.runtime.ports import free_port

from .launcher import Launcher

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


# -- etcd_members against a real etcd ----------------------------------------------------------


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(ETCD).exists():
        pytest.skip("etcd is not installed (Debian's etcd-server)")
    folder = tmp_path_factory.mktemp("etcd")
    client_port, peer_port = free_port(), free_port()
    peer = f"http://127.0.0.1:{peer_port}"
    url = f"http://127.0.0.1:{client_port}"
    with Launcher(folder) as launcher:
        proc = launcher.command(
            "etcd", [ETCD, "--name", "n", "--data-dir", str(folder / "data"),
                     "--listen-client-urls", url, "--advertise-client-urls", url,
                     "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", f"n={peer}",
                     "--log-level", "warn"], port=client_port)
        launcher.healthy(proc, within_s=20.0)
        yield url


def put(url: str, key: str, value: str | dict[str, Any]) -> None:
    raw = value if isinstance(value, str) else json.dumps(value)
    body = {"key": base64.b64encode(key.encode()).decode(), "value": base64.b64encode(raw.encode()).decode()}
    httpx.post(f"{url}/v3/kv/put", json=body, timeout=5).raise_for_status()


def delete(url: str, key: str) -> None:
    httpx.post(f"{url}/v3/kv/deleterange", json={"key": base64.b64encode(key.encode()).decode()},
               timeout=5).raise_for_status()


def entry(instance: str, port: int, registered_ns: int | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {"instance": instance, "host": "127.0.0.1", "port": port}
    if registered_ns is not None:
        value["registered_ns"] = registered_ns
    return value


def test_etcd_members_names_entries_under_the_prefix_with_their_registration(etcd):
    put(etcd, "/services/web/a1", entry("web-0", 1, 123))
    put(etcd, "/services/web/a2", entry("web-1", 2, 456))
    put(etcd, "/services/web/web-9", "not json at all")              # named by its key
    put(etcd, "/services/web/x7", {"host": "127.0.0.1", "port": 3})   # JSON, but names no instance
    put(etcd, "/services/web/n1", entry("web-5", 5))                  # says nothing of when it registered
    put(etcd, "/services/webx/z", entry("web-8", 8, 1))               # beyond the prefix
    put(etcd, "/services/other/b1", entry("other-0", 9, 1))
    reader = etcd_members(etcd, "/services/web/")
    try:
        assert reader() == {"web-0": {"registered_ns": 123}, "web-1": {"registered_ns": 456}, "web-9": {},
                            "x7": {}, "web-5": {}}
    finally:
        reader.close()
    assert reader.client.is_closed


def test_etcd_members_of_an_empty_prefix_and_another_name_field(etcd):
    put(etcd, "/pool/k1", {"id": "svc-a", "registered_ns": 7})
    empty, named = etcd_members(etcd, "/nothing/here/"), etcd_members(etcd, "/pool/", name_field="id")
    try:
        assert empty() == {}
        assert named() == {"svc-a": {"registered_ns": 7}}
    finally:
        empty.close()
        named.close()


def test_a_membership_probe_follows_a_real_registry(etcd):
    prefix = "/probe/web/"
    put(etcd, prefix + "0", entry("web-0", 1, 100))
    put(etcd, prefix + "1", entry("web-1", 2, 200))
    reader = etcd_members(etcd, prefix)
    probe = membership_probe("registry", reader)
    try:
        assert [e["member"] for e in probe.sample()["events"]] == ["web-0", "web-1"]
        delete(etcd, prefix + "1")
        put(etcd, prefix + "2", entry("web-2", 3, 300))
        put(etcd, prefix + "0", entry("web-0", 1, 400))   # registered again
        assert probe.sample() == {"members": 2, "events": [
            {"event": "left", "member": "web-1"},
            {"event": "joined", "member": "web-0", "registered_ns": 400, "t_ns": 400},
            {"event": "joined", "member": "web-2", "registered_ns": 300, "t_ns": 300},
        ]}
    finally:
        probe.close()
    assert reader.client.is_closed


def test_etcd_members_raises_when_etcd_does_not_answer():
    reader = etcd_members(f"http://127.0.0.1:{free_port()}", "/services/web/", timeout_s=0.5)
    try:
        with pytest.raises(httpx.TransportError):
            reader()
    finally:
        reader.close()
