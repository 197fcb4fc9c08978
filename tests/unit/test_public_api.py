"""The names the harness promises: pinned here, so a change to the public API
is a deliberate edit of this file too (httpx's test_exported_members is the model)."""

import importlib

import pytest

import harness

PUBLIC = {
    "harness": [
        "ExperimentRun", "Fault", "FaultWindow", "Frames", "HarnessError", "HarnessRun", "Judgement", "Link",
        "LoadSpec", "NotYet", "Phases", "Probe", "RequestSpec", "Runtime", "Schedule", "Service", "Stage",
        "Topology", "Variant", "Verdict", "after", "arrivals_probe", "combined", "field_set", "http_calls_probe",
        "http_json_probe", "injected",
        "kinds", "load_frames", "load_topology", "make_fault", "make_runtime", "proxy_connections_probe",
        "records_probe", "run_experiment", "state_probe", "wait_until", "when",
    ],
    "harness.checks": [
        "BreakerPolicy", "FastFail", "MissingData", "Verdict", "accepts_during_outage", "answers_belong_to_caller", "answers_within_budget",
        "check", "critical_isolated",
        "dead_instance_removed", "duplicates_bounded", "fast_fail_from_spec", "fast_fails_while_open",
        "graceful_stop_loses_nothing",
        "judged", "lag_recovers", "latency_passes_through", "membership_converges", "no_message_lost",
        "opens_after_threshold", "overflow_rejected_fast", "partial_within_budget", "policy_from_spec",
        "recovers", "recovers_complete", "rejects_bad_tokens", "retry_amplification", "serves_stale",
        "serves_through_registry_outage", "stays_closed_under_sparse_failures", "takes_traffic", "unknown",
        "verdict",
    ],
    "harness.patterns.discovery": ["Members", "Reader", "envoy_members", "etcd_members", "membership_probe"],
    "harness.patterns.gateway": ["BadToken", "b64url", "bad_tokens", "claims_for", "mint", "spoofed_identity"],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_all_is_pinned_and_every_name_resolves(module):
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == PUBLIC[module]
    for name in mod.__all__:
        assert getattr(mod, name) is not None, name


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        harness.no_such_thing  # noqa: B018


def test_experiments_import_only_the_public_api():
    from pathlib import Path

    allowed = set(PUBLIC)
    for path in sorted((Path(__file__).parents[2] / "experiments").glob("test_*.py")):
        for line in path.read_text().splitlines():
            if line.startswith("from harness"):
                module = line.split()[1]
                assert module in allowed, f"{path.name} imports {module}, which is not public API"
