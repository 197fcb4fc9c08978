"""Topology loading and validation: errors name the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import TopologyError
from harness.topology import Link, Service, Topology, load_topology


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "topology.toml"
    p.write_text(text)
    return p


def test_chained_target_loads_with_its_variants():
    t = load_topology("chained")
    assert t.entry == "a"
    assert [l.name for l in t.links] == ["a->b", "b->c"]
    assert {"correct", "no-timeouts", "fixed-timeouts", "sticky-failure"} <= set(t.variants)
    assert t.variants["no-timeouts"].broken and not t.variants["correct"].broken
    assert t.spec["budget_ms"] == 800


def test_variant_env_is_applied_to_every_service():
    t = load_topology("chained").with_variant("no-timeouts")
    assert all(s.env["VARIANT"] == "no-timeouts" for s in t.services.values())
    assert t.variant == "no-timeouts"


def test_unknown_variant_names_the_known_ones():
    with pytest.raises(TopologyError, match=r"unknown variant 'nope'.*correct"):
        load_topology("chained").with_variant("nope")


def test_invalid_toml_names_the_file(tmp_path):
    p = write(tmp_path, "name = [unclosed")
    with pytest.raises(TopologyError, match=str(p)):
        load_topology(p)


def test_link_to_unknown_service_names_the_key(tmp_path):
    p = write(tmp_path, '[services.a]\ncommand = ["x"]\n[[links]]\nclient = "a"\nserver = "zz"\n')
    with pytest.raises(TopologyError, match=r"links\[0\]\.server = 'zz' is not a service"):
        load_topology(p)


def test_unknown_service_key_is_refused(tmp_path):
    p = write(tmp_path, '[services.a]\ncomand = ["x"]\n')
    with pytest.raises(TopologyError, match=r"services\.a: unknown key\(s\) \['comand'\]"):
        load_topology(p)


def test_service_needs_a_command_or_an_image(tmp_path):
    p = write(tmp_path, "[services.a]\ninstances = 1\n")
    with pytest.raises(TopologyError, match="give a 'command'"):
        load_topology(p)


def test_bad_health_and_instances(tmp_path):
    with pytest.raises(TopologyError, match=r"services\.a\.health"):
        load_topology(write(tmp_path, '[services.a]\ncommand = ["x"]\nhealth = "health"\n'))
    with pytest.raises(TopologyError, match=r"services\.a\.instances"):
        load_topology(write(tmp_path, '[services.a]\ncommand = ["x"]\ninstances = 0\n'))


def test_missing_target_lists_known_targets():
    with pytest.raises(TopologyError, match="known targets: .*chained"):
        load_topology("no-such-target")


def test_built_in_python():
    t = Topology(
        name="pair",
        services={"web": Service("web", command=("srv",)), "db": Service("db", command=("db",), health="tcp")},
        links=(Link("web", "db"),),
        entry="web",
    )
    assert t.link("web->db").server == "db"
    assert t.describe()["links"] == [{"name": "web->db", "client": "web", "server": "db", "protocol": "http"}]
    with pytest.raises(TopologyError, match="no link 'db->web'"):
        t.link("db->web")
    with pytest.raises(TopologyError, match="entry = 'x'"):
        Topology(name="bad", services={"a": Service("a", command=("a",))}, entry="x")


def test_labelled_links_tell_two_links_to_one_server_apart(tmp_path):
    p = write(tmp_path, '[services.app]\ncommand = ["x"]\n[services.db]\ncommand = ["x"]\nhealth = "tcp"\n'
                        '[[links]]\nclient = "app"\nserver = "db"\nlabel = "critical"\n'
                        '[[links]]\nclient = "app"\nserver = "db"\nlabel = "reports"\n')
    t = load_topology(p)
    assert [l.name for l in t.links] == ["app->db:critical", "app->db:reports"]
    assert [l.env_key for l in t.links] == ["CRITICAL", "REPORTS"]
    assert t.link("app->db:reports").label == "reports"


def test_two_unlabelled_links_to_one_server_are_refused(tmp_path):
    p = write(tmp_path, '[services.app]\ncommand = ["x"]\n[services.db]\ncommand = ["x"]\n'
                        '[[links]]\nclient = "app"\nserver = "db"\n[[links]]\nclient = "app"\nserver = "db"\n')
    with pytest.raises(TopologyError, match=r"links\[0\] and links\[1\] both give app the variables DB_\*.*label"):
        load_topology(p)
