"""Breaker policies in the field's words: when each family is owed to open, how
a spec states them, and a rate breaker that names no reason judged right."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from harness.checks import fast_fail_from_spec, opens_after_threshold, policy_from_spec
from harness.checks.breaker_policy import BreakerPolicy, FastFail
from harness.errors import HarnessError

from .test_breaker_checks import FAULT, row, timeline_of

COMMON = dict(wait_duration_in_open_s=2.0, permitted_calls_in_half_open=1)


def calls(*outcomes: str, every_s: float = 0.1) -> pd.DataFrame:
    """One call answered every `every_s`, "ok" or "x" (failed)."""
    return pd.DataFrame({"end_s": [every_s * (i + 1) for i in range(len(outcomes))],
                         "ok": [o == "ok" for o in outcomes]})


def test_consecutive_opens_on_the_nth_failure_in_a_row_and_a_success_resets_it():
    policy = BreakerPolicy(policy="consecutive", failure_threshold=3, sliding_window_s=math.inf, **COMMON)
    assert policy.met_at(calls("x", "x", "ok", "x", "x", "x")) == pytest.approx(0.6)
    assert math.isnan(policy.met_at(calls("x", "x", "ok", "x", "x", "ok")))


def test_count_opens_on_the_nth_failure_within_the_window_only():
    policy = BreakerPolicy(policy="count", failure_threshold=3, sliding_window_s=0.25, **COMMON)
    assert math.isnan(policy.met_at(calls("x", "ok", "x", "ok", "x", "ok", "x")))  # 2 within any 0.25 s
    assert policy.met_at(calls("ok", "x", "x", "x")) == pytest.approx(0.4)


def test_rate_waits_for_the_minimum_number_of_calls_then_opens_on_the_rate():
    policy = BreakerPolicy(policy="rate", failure_rate_threshold_pct=50, minimum_number_of_calls=6,
                           sliding_window_s=10.0, **COMMON)
    assert policy.met_at(calls("x", "x", "x", "ok", "ok", "ok")) == pytest.approx(0.6)  # 3 of 6 at the 6th
    assert math.isnan(policy.met_at(calls("x", "x", "x", "x", "x")))  # all failed, but only 5 calls
    assert policy.least_failures == 3


def test_rate_counts_the_successes_still_in_the_window():
    policy = BreakerPolicy(policy="rate", failure_rate_threshold_pct=50, minimum_number_of_calls=4,
                           sliding_window_s=0.45, **COMMON)
    # 6 successes, then failures, one answered every 0.1 s: the window holds 5 calls. At the 2nd
    # failure 2 of those 5 failed (40%); at the 3rd, 3 of 5 (0.5-0.9 s)
    history = calls("ok", "ok", "ok", "ok", "ok", "ok", "x", "x", "x", "x")
    assert policy.met_at(history) == pytest.approx(0.9)


def test_a_spec_in_the_old_names_or_the_new_states_the_same_count_policy():
    old = policy_from_spec({"failure_threshold": 5, "window_s": 3.0, "open_s": 2.0, "half_open_probes": 2})
    new = policy_from_spec({"policy": "count", "failure_threshold": 5, "sliding_window_s": 3.0,
                            "wait_duration_in_open_s": 2.0, "permitted_calls_in_half_open": 2})
    assert old == new and new.said() == "5 failures within 3 s"


def test_a_rate_spec_needs_its_own_keys_and_says_which_are_missing():
    with pytest.raises(HarnessError, match=r"breaker\.toml \[spec\]: a 'rate' breaker policy needs "
                                           r"minimum_number_of_calls, sliding_window_s"):
        policy_from_spec({"policy": "rate", "failure_rate_threshold_pct": 50, **COMMON},
                         where="breaker.toml [spec]")
    rate = policy_from_spec({"failure_rate_threshold_pct": 50, "minimum_number_of_calls": 10,
                             "sliding_window_s": 10, **COMMON})
    assert rate.policy == "rate" and rate.said() == "50% failed of at least 10 calls within 10 s"


@pytest.mark.parametrize("spec, message", [
    ({"policy": "ratio"}, "policy = 'ratio' is not one of consecutive, count, rate"),
    ({"window_s": 1, "sliding_window_s": 1}, "give sliding_window_s or its old name window_s, not both"),
    ({"failure_threshold": 0, "sliding_window_s": 1, **COMMON}, "failure_threshold must be >= 1, got 0"),
    ({"failure_threshold": 2.5, "sliding_window_s": 1, **COMMON}, "failure_threshold must be a whole number"),
    ({"failure_threshold": 5, "sliding_window_s": float("nan"), **COMMON}, "sliding_window_s must be a number"),
    ({"failure_threshold": True, "sliding_window_s": 1, **COMMON}, "failure_threshold must be a whole number"),
    ({"failure_rate_threshold_pct": 150, "minimum_number_of_calls": 1, "sliding_window_s": 1, **COMMON},
     "failure_rate_threshold_pct must be > 0 and <= 100, got 150"),
])
def test_a_bad_policy_is_refused_with_the_key_named(spec, message):
    with pytest.raises(HarnessError, match=message.replace("(", r"\(").replace(")", r"\)")):
        policy_from_spec(spec)


def test_fast_fails_are_told_by_status_and_latency_unless_a_reason_is_given():
    answers = pd.DataFrame({"status": [503, 503, 500, 429], "latency_ms": [2.0, 300.0, 2.0, 1.0],
                            "reason": [None, "circuit open", None, None]})
    by_latency = fast_fail_from_spec({"fast_fail_status": [503, 429], "fast_fail_p99_ms": 100})
    assert by_latency.of(answers).tolist() == [True, False, False, True]
    by_reason = fast_fail_from_spec({"fast_fail_status": 503, "fast_fail_p99_ms": 100,
                                     "fast_fail_reason": "circuit open"})
    assert by_reason.of(answers).tolist() == [False, True, False, False]
    with pytest.raises(HarnessError, match="fast_fail_status must be an HTTP status or a list of them, got '503'"):
        fast_fail_from_spec({"fast_fail_status": "503", "fast_fail_p99_ms": 100})


def opossum_like(tmp_path, *, opens_after_failures: int | None):
    """A rate breaker (50% of at least 10 calls in 10 s) as a Node service
    answers: real failures are 500s in 5 ms (the dependency resets), a
    fast-fail is a bare 503 in 2 ms, no reason named. A call every 50 ms; the
    fault fails every call from 3 s. With 60 successes in the window, the
    rate reaches 50% at the 60th failure (6 s); `opens_after_failures` opens
    it at that failure instead."""
    rows, failures, open_ = [], 0, False
    for i in range(240):
        t = round(i * 0.05, 3)
        if FAULT[0] <= t < FAULT[1] and open_:
            rows.append(row(t, 2.0, 503, None))
        elif FAULT[0] <= t < FAULT[1]:
            rows.append(row(t, 5.0, 500, None))
            failures += 1
            open_ = opens_after_failures is not None and failures >= opens_after_failures
        else:
            rows.append(row(t, 5.0, 200, None))
    return timeline_of(tmp_path, rows, [])


RATE = policy_from_spec({"failure_rate_threshold_pct": 50, "minimum_number_of_calls": 10,
                         "sliding_window_s": 10, **COMMON})
BARE_503 = FastFail(status=(503,), p99_ms=100)


def test_a_rate_breaker_that_names_no_reason_is_judged_by_its_own_policy(tmp_path):
    right = opens_after_threshold(opossum_like(tmp_path / "right", opens_after_failures=60),
                                  policy=RATE, fast_fail=BARE_503)
    assert right.status == "pass", right
    assert right.figures["threshold_reached_after_s"] == 2.96  # the 60th failure, answered at 5.955 s
    early = opens_after_threshold(opossum_like(tmp_path / "early", opens_after_failures=5),
                                  policy=RATE, fast_fail=BARE_503)
    assert early.status == "fail" and early.figures["failed"] == ["threshold_failures_before_open"], early
    late = opens_after_threshold(opossum_like(tmp_path / "late", opens_after_failures=None),
                                 policy=RATE, fast_fail=BARE_503)
    assert late.status == "fail" and late.figures["failed"] == ["opened", "no_late_calls"], late
