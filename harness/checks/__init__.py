"""Checks: pure functions (frames, spec figures) -> Verdict, one module per
pattern plus what they share. Each says pass, fail, or unknown with the
reason, and carries the figures that explain it; a check never touches the
running system, so it can be run again on a saved timeline.

    from harness.checks import answers_within_budget, recovers

Writing one of your own: decorate it with ``check(name)`` (a crash or
``MissingData`` becomes ``unknown``) and build the result with ``judged``
(named clauses: the figures say which failed) or ``unknown``.
"""

from .breaker_policy import BreakerPolicy, FastFail, fast_fail_from_spec, policy_from_spec
from .bulkhead import critical_isolated, overflow_rejected_fast
from .callers import answers_belong_to_caller
from .chained import answers_within_budget, latency_passes_through, retry_amplification
from .circuit_breaker import fast_fails_while_open, opens_after_threshold, stays_closed_under_sparse_failures
from .discovery import (
    dead_instance_removed, graceful_stop_loses_nothing, membership_converges, serves_through_registry_outage,
    takes_traffic,
)
from .gateway import partial_within_budget, recovers_complete, rejects_bad_tokens, serves_stale
from .messaging import accepts_during_outage, duplicates_bounded, lag_recovers, no_message_lost
from .recovery import recovers
from .verdict import Verdict, check, judged, unknown, verdict
from .windows import MissingData

__all__ = [
    "BreakerPolicy", "FastFail", "MissingData", "Verdict", "accepts_during_outage", "answers_belong_to_caller", "answers_within_budget", "check",
    "critical_isolated",
    "dead_instance_removed", "duplicates_bounded", "fast_fail_from_spec", "fast_fails_while_open", "graceful_stop_loses_nothing", "judged",
    "lag_recovers", "latency_passes_through", "membership_converges", "no_message_lost", "opens_after_threshold",
    "overflow_rejected_fast", "partial_within_budget", "policy_from_spec", "recovers", "recovers_complete", "rejects_bad_tokens",
    "retry_amplification", "serves_stale", "serves_through_registry_outage", "stays_closed_under_sparse_failures",
    "takes_traffic", "unknown", "verdict",
]
