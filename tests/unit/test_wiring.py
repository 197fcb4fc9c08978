"""How a deployment wires a topology: variables, commands and the stop order."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ServiceError
from harness.runtime.backend import Instance
from harness.runtime.wiring import command, instance_env, link_env, stop_order
from harness.topology import Link, Service, Topology, load_topology


def topo(services: list[str], links: list[tuple[str, str]]) -> Topology:
    return Topology(name="t", entry=services[0], services={s: Service(s, command=("x",)) for s in services},
                    links=tuple(Link(c, s) for c, s in links))


def test_stop_order_puts_clients_before_the_servers_they_call():
    assert stop_order(load_topology("chained")) == ["a", "b", "c"]
    assert stop_order(topo(["db", "api", "web"], [("web", "api"), ("api", "db")])) == ["web", "api", "db"]
    assert stop_order(load_topology("messaging")) == ["producer", "consumer", "broker"]


def test_stop_order_keeps_the_files_order_inside_a_cycle_and_for_strangers():
    assert stop_order(topo(["a", "b", "c"], [("a", "b"), ("b", "a")])) == ["c", "a", "b"]  # c: nobody calls it
    assert stop_order(topo(["x", "y"], [])) == ["x", "y"]


def test_link_env_names_the_first_proxy_and_every_instance_s():
    t = topo(["web", "db"], [("web", "db")])
    env = link_env(t, "web", {"web->db": ["127.0.0.1:1", "127.0.0.1:2"]})
    assert env == {"DB_ADDR": "127.0.0.1:1", "DB_URL": "http://127.0.0.1:1",
                   "DB_URLS": "http://127.0.0.1:1,http://127.0.0.1:2"}
    assert link_env(t, "db", {"web->db": ["127.0.0.1:1"]}) == {}


def instance(**places: str) -> Instance:
    return Instance("web", 1, "web-1", 4000, Path("/tmp/web-1.log"),
                    places={"python": "py", "target": "/t", "port": "4000", "data": "/d", **places},
                    env={"BIND_HOST": "0.0.0.0"})


def test_instance_env_fills_the_services_own_variables_from_the_harness_s():
    svc = Service("web", command=("x",), env={"UPSTREAM": "${DB_URL}/v1", "WHERE": "${DATA_DIR}", "KEEP": "${NOPE}"})
    env = instance_env(svc, instance(), {"DB_URL": "http://p:1"}, {"HARNESS_RUN": "r"})
    assert env["UPSTREAM"] == "http://p:1/v1" and env["WHERE"] == "/d" and env["KEEP"] == "${NOPE}"
    assert env["PORT"] == "4000" and env["INSTANCE"] == "1" and env["BIND_HOST"] == "0.0.0.0"
    assert env["HARNESS_RUN"] == "r" and env["PYTHONUNBUFFERED"] == "1"


def test_command_fills_placeholders_keeps_an_image_s_own_and_names_an_unknown_one():
    assert command(Service("web", command=("{python}", "{target}/s.py", "{port}")), instance(), "t.toml") == \
        ["py", "/t/s.py", "4000"]
    assert command(Service("web", image="img"), instance(), "t.toml") is None
    with pytest.raises(ServiceError, match=r"t.toml: services.web.command has an unknown placeholder 'host'"):
        command(Service("web", command=("{host}",)), instance(), "t.toml")
