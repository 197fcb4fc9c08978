"""Envoy's bootstrap and its endpoint file, as plain dicts written as JSON.

The listener sends every request to the cluster ``web``, whose endpoints
come from a file (EDS from the filesystem): Envoy watches the path and
reloads it when a new file is moved onto it, with no restart. The balancer
writes the whole membership each time (level, not edge: a lost update is
repaired by the next one).

The balancer does no retries, health checks or outlier ejection of its own:
the registry is the only thing that takes an instance out, so the
experiment measures discovery, not Envoy's own defences.

``/admin/lb/clusters`` on the listener is Envoy's admin ``/clusters``: the
balancer's own view of its members, for the harness's probe.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

CLUSTER = "web"
ADMIN_ROUTE = "/admin/lb/clusters"
HTTP_MANAGER = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
ASSIGNMENT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"


def _address(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def bootstrap(*, bind: str, port: int, admin_port: int, eds_path: Path, route_timeout_s: float,
              connect_timeout_s: float) -> dict[str, Any]:
    routes = [
        {"match": {"path": ADMIN_ROUTE}, "route": {"cluster": "admin", "prefix_rewrite": "/clusters"}},
        {"match": {"prefix": "/"}, "route": {"cluster": CLUSTER, "timeout": f"{route_timeout_s}s"}},
    ]
    manager = {
        "@type": HTTP_MANAGER, "stat_prefix": "ingress",
        "route_config": {"name": "local", "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}],
    }
    admin_assignment = {"cluster_name": "admin", "endpoints": [
        {"lb_endpoints": [{"endpoint": {"address": _address("127.0.0.1", admin_port)}}]}]}
    return {
        "node": {"id": "balancer", "cluster": "discovery"},
        "admin": {"address": _address("127.0.0.1", admin_port)},
        "static_resources": {
            "listeners": [{"name": "ingress", "address": _address(bind, port),
                           "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                           "typed_config": manager}]}]}],
            "clusters": [
                {"name": CLUSTER, "type": "EDS", "connect_timeout": f"{connect_timeout_s}s",
                 "eds_cluster_config": {"eds_config": {"resource_api_version": "V3",
                                                       "path_config_source": {"path": str(eds_path)}}}},
                {"name": "admin", "type": "STATIC", "connect_timeout": "1s", "load_assignment": admin_assignment},
            ],
        },
    }


def assignment(members: dict[str, tuple[str, int]], version: int) -> dict[str, Any]:
    """A DiscoveryResponse naming every member (instance id -> host, port); the
    instance id goes in as the endpoint's hostname, so /clusters names it."""
    endpoints = [{"endpoint": {"address": _address(host, port), "hostname": name}}
                 for name, (host, port) in sorted(members.items())]
    return {"version_info": str(version),
            "resources": [{"@type": ASSIGNMENT, "cluster_name": CLUSTER, "endpoints": [{"lb_endpoints": endpoints}]}]}


def write_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write beside, then rename onto the path: Envoy reloads on the move."""
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    scratch.write_text(json.dumps(data))
    os.replace(scratch, path)
