"""Figures for the isolation patterns, per fault, on their correct variants:

    .venv/bin/python bench/bench_isolation.py

Circuit breaker: time from the first failed answer to the first fast-fail
(the breaker opening, as a client sees it), fast-fail p50/p99, and how many
calls failed the slow way before it opened.
Bulkhead: checkout p50/p99 in the baseline beside the same during the
saturation of the reports pool, and the rejection p99 of the overflow.

It runs the experiments' own definitions (experiments/test_*.py) through a
HarnessRun into a temporary reports folder. Figures, not pass/fail.
"""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "experiments")]

import test_bulkhead as bulkhead  # noqa: E402
import test_circuit_breaker as breaker  # noqa: E402

from harness.checks.windows import fault_window, percentile, phase  # noqa: E402
from harness.session import HarnessRun  # noqa: E402
from harness.timeline import Frames  # noqa: E402


def breaker_figures(frames: Frames) -> tuple[float, float, float, int]:
    spec = breaker.SPEC
    start, end = fault_window(frames)
    during = frames.requests_in(start, end)
    ff = breaker.FAST_FAIL.of(during)
    failed = during[~ff & ~during["ok"].astype(bool)]
    if failed.empty or not ff.any():
        return math.nan, math.nan, math.nan, len(failed)
    opened = float(during.loc[ff, "t_s"].min())
    first_failure = float(failed["end_s"].min())
    lat = during.loc[ff, "latency_ms"]
    slow_way = int((failed["t_s"] < opened).sum())
    return (opened - first_failure) * 1000, percentile(lat, 50), percentile(lat, 99), slow_way


def bulkhead_figures(frames: Frames) -> tuple[float, float, float, float, float]:
    spec = bulkhead.SPEC
    critical = frames.requests[frames.requests["name"] == spec["critical_request"]]
    reports = frames.requests[frames.requests["name"] == spec["reports_request"]]
    b0, b1 = phase(frames, "baseline")
    f0, f1 = fault_window(frames)
    base = critical[(critical["t_s"] >= b0) & (critical["t_s"] < b1)]["latency_ms"]
    during = critical[(critical["t_s"] >= f0) & (critical["t_s"] < f1)]["latency_ms"]
    overflow = reports[(reports["t_s"] >= f0) & (reports["t_s"] < f1) 
                       & (reports["status"] == spec["reject_status"]) & (reports["reason"] == spec["reject_reason"])]
    return (percentile(base, 50), percentile(base, 99), percentile(during, 50), percentile(during, 99),
            percentile(overflow["latency_ms"], 99))


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="bench-isolation-"))
    run = HarnessRun(reports_dir=folder, runtime="local").open()
    try:
        print("circuit breaker (correct), per fault on front->dep or dep")
        print(f"  {'fault':<10} {'1st failure -> open':>20} {'fast-fail p50':>14} {'p99':>8} {'slow-way failures':>18}")
        for name, fault in breaker.FAULTS.items():
            result = breaker.run(run, f"bench-breaker-{name}", "correct", fault)
            to_open, p50, p99, slow = breaker_figures(result.frames)
            print(f"  {name:<10} {to_open:17.0f} ms {p50:11.1f} ms {p99:5.1f} ms {slow:18d}")

        print("\nbulkhead (correct): checkout latency, baseline beside reports-pool saturation")
        print(f"  {'fault':<13} {'baseline p50/p99':>18} {'saturated p50/p99':>19} {'overflow reject p99':>20}")
        for name, (fault, _) in bulkhead.FAULTS.items():
            result = bulkhead.run(run, f"bench-bulkhead-{name}", "correct", fault)
            b50, b99, f50, f99, reject = bulkhead_figures(result.frames)
            print(f"  {name:<13} {b50:7.1f} / {b99:5.1f} ms {f50:8.1f} / {f99:5.1f} ms {reject:17.0f} ms")
    finally:
        run.close()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
