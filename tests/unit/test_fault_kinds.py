"""Fault kinds by name and their parameters, and the Toxiproxy client's
errors without a server: nothing is started."""

from __future__ import annotations

import pytest

from harness.errors import FaultError, ToxiproxyError
from harness.faults import kinds, make_fault
from harness.toxiproxy import ToxiproxyClient


def test_every_toxic_and_fault_kind_is_registered():
    assert set(kinds()) >= {"latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer",
                            "limit_data", "link_down", "crash", "pause", "restart"}


def test_unknown_fault_and_bad_parameters_are_named():
    with pytest.raises(FaultError, match=r"unknown fault 'lag'; known faults: .*latency"):
        make_fault("lag", "a->b")
    with pytest.raises(FaultError, match=r"unknown parameter\(s\) \['latncy'\]"):
        make_fault("latency", "a->b", latncy=5)
    with pytest.raises(FaultError, match="stream must be one of"):
        make_fault("latency", "a->b", stream="sideways")
    with pytest.raises(FaultError, match="toxicity is a probability"):
        make_fault("latency", "a->b", toxicity=2)


def test_unreachable_server_is_a_clear_error():
    from harness.runtime.ports import free_port

    client = ToxiproxyClient("127.0.0.1", free_port(), timeout_s=1)
    with pytest.raises(ToxiproxyError, match="did not answer"):
        client.proxies()
