"""Membership probes: the diffing of samples into joined/left events (with a
plain callable as the reader), and the Envoy reader's parsing of a
/clusters?format=json answer served in this process. The etcd reader runs
against a real etcd in tests/service/test_membership_probe.py."""

from __future__ import annotations

import httpx
import pytest

from harness.patterns.discovery import Members, envoy_members, membership_probe

from ..json_server import JsonServer, Request


class Scripted:
    """A reader answering the given samples in turn (an exception is raised);
    counts close() calls."""

    def __init__(self, *answers: Members | Exception) -> None:
        self.answers = list(answers)
        self.closed = 0

    def __call__(self) -> Members:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        self.closed += 1


def test_first_sample_joins_everyone_at_the_moment_of_sampling():
    probe = membership_probe("registry", Scripted({"web-1": {}, "web-0": {"registered_ns": 100}}))
    assert probe.name == "registry"
    assert probe.sample() == {"members": 2, "events": [
        {"event": "joined", "member": "web-0", "registered_ns": 100},   # no t_ns: stamped when seen
        {"event": "joined", "member": "web-1"},
    ]}


def test_later_joins_carry_their_registration_time_and_leaves_are_named():
    probe = membership_probe("registry", Scripted(
        {"web-0": {"registered_ns": 100}, "web-1": {"registered_ns": 110}},
        {"web-0": {"registered_ns": 100}, "web-1": {"registered_ns": 110}, "web-2": {"registered_ns": 300}},
        {"web-0": {"registered_ns": 100}, "web-2": {"registered_ns": 300}, "web-3": {}},
        {"web-0": {"registered_ns": 100}, "web-2": {"registered_ns": 300}, "web-3": {}},
    ))
    probe.sample()
    assert probe.sample() == {"members": 3, "events": [
        {"event": "joined", "member": "web-2", "registered_ns": 300, "t_ns": 300}]}
    assert probe.sample() == {"members": 3, "events": [
        {"event": "left", "member": "web-1"},
        {"event": "joined", "member": "web-3"},     # says nothing of when: stamped when seen
    ]}
    assert probe.sample() == {"members": 3, "events": []}   # nothing changed


def test_a_registration_renewed_in_between_joins_again_without_a_leave():
    probe = membership_probe("registry", Scripted(
        {"web-0": {"registered_ns": 100}, "web-1": {"registered_ns": 110}},
        {"web-0": {"registered_ns": 500}, "web-1": {"registered_ns": 110}},
        {"web-0": {"registered_ns": "600"}, "web-1": {"registered_ns": 110}},
    ))
    probe.sample()
    assert probe.sample() == {"members": 2, "events": [
        {"event": "joined", "member": "web-0", "registered_ns": 500, "t_ns": 500}]}
    # a stamp that is not an int is carried but not trusted as the time
    assert probe.sample()["events"] == [{"event": "joined", "member": "web-0", "registered_ns": "600"}]


def test_everyone_leaving_and_an_empty_first_sample():
    probe = membership_probe("balancer", Scripted({}, {"a": {}, "b": {}}, {}))
    assert probe.sample() == {"members": 0, "events": []}
    # the second sample is not the first: but these members say nothing of when they joined
    assert probe.sample() == {"members": 2, "events": [{"event": "joined", "member": "a"},
                                                       {"event": "joined", "member": "b"}]}
    assert probe.sample() == {"members": 0, "events": [{"event": "left", "member": "a"},
                                                       {"event": "left", "member": "b"}]}


def test_a_failed_read_changes_nothing_the_next_diff_is_from_the_last_good_sample():
    probe = membership_probe("registry", Scripted(
        {"web-0": {}, "web-1": {}}, httpx.ConnectError("refused"), {"web-1": {}}))
    probe.sample()
    with pytest.raises(httpx.ConnectError):
        probe.sample()
    assert probe.sample() == {"members": 1, "events": [{"event": "left", "member": "web-0"}]}


def test_close_is_passed_through_to_the_reader_and_a_plain_function_needs_none():
    reader = Scripted({})
    probe = membership_probe("registry", reader)
    probe.close()
    assert reader.closed == 1
    plain = membership_probe("registry", lambda: {"web-0": {}})
    assert plain.sample()["members"] == 1
    plain.close()   # nothing to close, no error


# -- envoy_members against a served /clusters?format=json -------------------------------------

CLUSTERS = {"cluster_statuses": [
    {"name": "registry", "host_statuses": [
        {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 2379}}}]},
    {"name": "web", "host_statuses": [
        {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 8001}}, "hostname": "web-0"},
        {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 8002}}, "hostname": ""},
        {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 8003}}},
    ]},
    {"name": "empty"},
]}


@pytest.fixture
def envoy_admin(json_server) -> tuple[str, JsonServer]:
    """A stand-in for Envoy's admin: answers CLUSTERS at /clusters; the server keeps the requests."""
    def answer(request: Request) -> tuple[int, dict]:
        return (200, CLUSTERS) if request.path.startswith("/clusters") else (404, {})

    server = json_server(answer)
    return f"{server.url}/clusters", server


def test_envoy_members_by_hostname_else_host_and_port(envoy_admin):
    url, server = envoy_admin
    reader = envoy_members(url, "web")
    try:
        assert reader() == {"web-0": {}, "127.0.0.1:8002": {}, "127.0.0.1:8003": {}}
    finally:
        reader.close()
    assert [r.path for r in server.requests] == ["/clusters?format=json"]


def test_envoy_members_of_a_cluster_without_hosts_and_of_a_missing_cluster(envoy_admin):
    url, _ = envoy_admin
    empty, missing = envoy_members(url, "empty"), envoy_members(url, "cache")
    try:
        assert empty() == {}
        with pytest.raises(LookupError, match=r"Envoy has no cluster 'cache' at http://127\.0\.0\.1:\d+/clusters"):
            missing()
    finally:
        empty.close()
        missing.close()


def test_envoy_members_raises_on_an_error_answer(envoy_admin):
    url, _ = envoy_admin
    reader = envoy_members(url.replace("/clusters", "/nope"), "web")
    try:
        with pytest.raises(httpx.HTTPStatusError):
            reader()
    finally:
        reader.close()
