"""Asynchronous messaging through a broker, run on both brokers the target
has: NATS JetStream (topology.toml) and RabbitMQ (rabbitmq.toml). The
promise: producers do not block on consumers, and no accepted message (202)
is lost when the broker, a producer's link or a consumer fails. Judged as a
history: the ids clients were given against the consumer's own record of
processings. The same cases and checks run on both; each broker's [spec]
gives its own bounds.

Each check fails on the broken variant made for it, on both brokers:

- no-message-lost: fire-and-forget (broker crash), ack-before-process
  (consumer crash)
- accepts-during-outage: no-outbox (producer refuses while the broker is out)
- duplicates-bounded: no-dedup (re-sends after a slow publish ack are
  processed twice)
"""

from __future__ import annotations

import pytest

from harness import ExperimentRun, LoadSpec, Phases, RequestSpec, http_json_probe, load_topology, make_fault, records_probe
from harness.checks import accepts_during_outage, duplicates_bounded, lag_recovers, no_message_lost

TARGETS = {"nats": load_topology("messaging"), "rabbitmq": load_topology("messaging/rabbitmq")}
SPEC = TARGETS["nats"].spec  # the hops and the fault sizes are the same in both files
ORDERS = "POST /orders"
LOAD = LoadSpec(
    users=8, rate_per_s=60, timeout_s=10.0, body_fields=("id", "via"),
    requests=(RequestSpec(method="POST", path="/orders", name=ORDERS, body='{"key": "k1"}',
                          headers={"Content-Type": "application/json"}),),
)
# After recovery the load stops and the consumer works off what is left (up to
# 15 s): what is still unprocessed then was lost, not late.
PHASES = Phases(baseline_s=3.0, fault_s=5.0, recovery_s=7.0, drain_s=15.0)

FAULTS = {
    "broker-crash": make_fault("crash", "broker"),
    "broker-pause": make_fault("pause", "broker"),
    "producer-link-down": make_fault("link_down", SPEC["producer_hop"]),
    "producer-latency": make_fault("latency", SPEC["producer_hop"], latency=SPEC["link_latency_ms"]),
    "producer-reset": make_fault("reset_peer", SPEC["producer_hop"], timeout=0),
    "consumer-crash": make_fault("crash", "consumer"),
    "consumer-link-down": make_fault("link_down", SPEC["consumer_hop"]),
}
OUTAGES = {"broker-crash", "broker-pause", "producer-link-down", "producer-latency"}  # the producer must buffer

# fault, variant, expected of (no-message-lost, duplicates-bounded, lag-recovers, accepts-during-outage);
# ("fail", clause): the clause the broken variant must break
CASES = [
    *[(fault, "correct", ("pass", "pass", "pass", "pass" if fault in OUTAGES else None)) for fault in FAULTS],
    ("broker-crash", "fire-and-forget", (("fail", "lost_within_limit"), None, None, None)),
    ("consumer-crash", "ack-before-process", (("fail", "lost_within_limit"), None, None, None)),
    ("broker-crash", "no-outbox", (None, None, None, ("fail", "accepted_during_outage"))),
    ("producer-latency", "no-dedup", ("pass", ("fail", "duplicates_within_limit"), None, None)),
    # the producer bypasses the faulted proxy (a NATS variant only)
    ("producer-link-down", "bypasses-proxy", ("unknown", "unknown", "unknown", "unknown")),
]


def probes(runtime):
    """The consumer's record of processings (the history), and the outbox and lag for the plots."""
    return [
        records_probe("consumer", runtime.url("consumer") + "/admin/processed", list_key="processed",
                      event="processed", fields=("count", "duplicates")),
        http_json_probe("producer", runtime.url("producer") + "/admin/state", fields=("outbox",)),
        http_json_probe("lag", runtime.url("consumer") + "/admin/state", fields=("lag_ms",)),
    ]


def drained(runtime):
    """The outbox is empty and the consumer has processed as many as were accepted."""
    import httpx

    def check() -> bool:
        producer = httpx.get(runtime.url("producer") + "/admin/state", timeout=1).json()
        consumer = httpx.get(runtime.url("consumer") + "/admin/state", timeout=1).json()
        return producer["outbox"] == 0 and consumer["processed"] >= producer["accepted"]

    return check


def run(harness_run, broker: str, name: str, variant: str, fault) -> ExperimentRun:
    return harness_run.experiment(TARGETS[broker], name=name, variant=variant, fault=fault, load=LOAD, phases=PHASES,
                              probes=probes, probe_interval_s=0.25, settled=drained)


# On RabbitMQ, CI (make test) runs the cases that exercise what differs most
# from NATS: a node's crash and boot, requeue on a consumer's crash, and the
# de-duplication by the Order-Id header (no-dedup). The others are marked
# extended: each RabbitMQ case costs one or two node boots (10-20 s each), and
# CI must stay under 30 minutes. The broken variants left out (fire-and-forget,
# ack-before-process, no-outbox) are the producer's and consumer's own code,
# caught on NATS in CI. All of them pass: make demo and a plain pytest run them.
RABBITMQ_CORE = {("broker-crash", "correct"), ("consumer-crash", "correct"), ("producer-latency", "no-dedup")}


def matrix() -> list:
    params = []
    for fault, variant, expected in CASES:
        for broker in TARGETS:
            if variant not in TARGETS[broker].variants:
                continue
            extended = broker == "rabbitmq" and (fault, variant) not in RABBITMQ_CORE
            params.append(pytest.param(broker, fault, variant, expected, id=f"{fault}-{variant}-{broker}",
                                       marks=[pytest.mark.extended] if extended else []))
    return params


@pytest.mark.experiment
@pytest.mark.parametrize("broker, fault, variant, expected", matrix())
def test_messaging_history(harness_run, broker, fault, variant, expected):
    result = run(harness_run, broker, f"messaging-{broker}-{fault}-{variant}", variant, FAULTS[fault])
    spec = TARGETS[broker].spec
    frames = result.frames
    lost, doubled, lag, accepts = expected
    checks = [
        (lost, lambda: no_message_lost(frames, consumer="consumer", max_lost=spec["max_lost"])),
        (doubled, lambda: duplicates_bounded(frames, consumer="consumer", max_duplicates=spec["max_duplicates"])),
        (lag, lambda: lag_recovers(frames, consumer="consumer", lag_bound_ms=spec["lag_bound_ms"],
                                   within_s=spec["lag_recovery_s"])),
        (accepts, lambda: accepts_during_outage(frames, request_name=ORDERS, accept_p99_ms=spec["outbox_accept_p99_ms"],
                                                grace_ms=spec["publish_timeout_ms"] + 100)),
    ]
    harness_run.expect(result, [(judge(), want) for want, judge in checks if want])
