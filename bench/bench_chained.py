"""Figures for the harness core on the chained target, printed side by side.

    .venv/bin/python bench/bench_chained.py [--quick]

1. cold start: runtime.up() of A -> B -> C (proxies, processes, readiness).
2. fault actuation, from the start of the API call (Toxiproxy, or the
   signal): to the start of the first request sent after it that shows the
   fault (four client threads keep the entry busy, so the resolution is
   about one request's spacing, printed), and to the first failed answer a
   client sees (errors only; a pause shows after B's hop timeout). Requests
   in flight at the call that show the fault are counted.
3. Toxiproxy pass-through overhead: C called directly and through the b->c
   proxy, one keep-alive client, p50 and p99.
4. load generators on one core each: Locust (the harness's load, one
   process, every request recorded) and wrk (-t1) as the ceiling, against
   the entry A and against the leaf C.

Figures, not pass/fail: the machine's other work shows in them. Run it on a
quiet machine and read them side by side.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.checks.windows import percentile  # noqa: E402
from harness.faults import injected, make_fault  # noqa: E402
from harness.load import LoadRun, LoadSpec  # noqa: E402
from harness.runtime.labels import new_run_id  # noqa: E402
from harness.runtime import Deployment, make_runtime  # noqa: E402
from harness.runtime.toxiproxy_hosts import LocalToxiproxy  # noqa: E402
from harness.topology import load_topology  # noqa: E402
from harness.toxiproxy import ToxiproxyClient  # noqa: E402


def runtime_for(toxiproxy: ToxiproxyClient, run_id: str, folder: Path, prefix: str) -> Deployment:
    return make_runtime("local", load_topology("chained").with_variant("correct"), run_id=run_id,
                        toxiproxy=toxiproxy, log_dir=folder / prefix, prefix=prefix)


# -- 1. cold start ------------------------------------------------------------------

def cold_start(toxiproxy: ToxiproxyClient, run_id: str, folder: Path, reps: int) -> list[float]:
    times = []
    for i in range(reps):
        rt = runtime_for(toxiproxy, run_id, folder, f"cold{i}")
        started = time.perf_counter()
        rt.up()
        try:
            assert httpx.get(rt.entry_url(), timeout=5).status_code == 200
            times.append((time.perf_counter() - started) * 1000)
        finally:
            rt.down()
    return times


# -- 2. fault actuation ---------------------------------------------------------------

@dataclass
class Sample:
    start: float
    end: float
    status: int


class Traffic:
    """Client threads that keep the entry busy and keep every sample."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]

    def _loop(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    status = client.get(self.url).status_code
                except httpx.HTTPError:
                    status = 0
                self.samples.append(Sample(start, time.perf_counter(), status))

    def __enter__(self) -> "Traffic":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)


def wait_for(predicate: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.01)  # poll


FAULTS = {
    "latency 300 ms on b->c": (lambda: make_fault("latency", "b->c", latency=300), "slow"),
    "reset_peer on b->c": (lambda: make_fault("reset_peer", "b->c"), "error"),
    "link_down b->c": (lambda: make_fault("link_down", "b->c"), "error"),
    "crash c (SIGKILL)": (lambda: make_fault("crash", "c"), "error"),
    "pause c (SIGSTOP)": (lambda: make_fault("pause", "c"), "error"),
}


@dataclass
class Actuation:
    to_new_request_ms: list[float]
    to_seen_error_ms: list[float]
    in_flight_hit: list[int]
    call_ms: list[float]


def actuation(rt: Deployment, reps: int) -> tuple[dict[str, Actuation], float]:
    """Per fault, over reps: how soon requests show it, and the API call's duration."""
    found = {name: Actuation([], [], [], []) for name in FAULTS}
    with Traffic(rt.entry_url()) as traffic:
        wait_for(lambda: len(traffic.samples) > 50, 10)
        healthy = [s.end - s.start for s in traffic.samples[-50:]]
        slow_ms = statistics.median(healthy) * 1000 + 150
        for _ in range(reps):
            for name, (make, effect) in FAULTS.items():
                fault = make()
                before = len(traffic.samples)
                called = time.perf_counter()
                with injected(fault, rt):
                    found[name].call_ms.append((time.perf_counter() - called) * 1000)
                    wait_for(lambda: _first_new(_hits(traffic.samples[before - 8:], called, effect, slow_ms), called), 10)
                hits = _hits(traffic.samples[before - 8:], called, effect, slow_ms)
                found[name].to_new_request_ms.append((_first_new(hits, called).start - called) * 1000)
                found[name].in_flight_hit.append(sum(1 for s in hits if s.start < called))
                if effect == "error":
                    found[name].to_seen_error_ms.append((min(s.end for s in hits) - called) * 1000)
                wait_for(lambda: _healthy_again(traffic.samples), 15)
        spacing_ms = _spacing_ms(traffic.samples)
    return found, spacing_ms


def _hits(samples: list[Sample], since: float, effect: str, slow_ms: float) -> list[Sample]:
    """Requests that ended after `since` and show the effect."""
    return [
        s for s in samples
        if s.end > since and (s.status != 200 if effect == "error" else (s.end - s.start) * 1000 > slow_ms)
    ]


def _first_new(hits: list[Sample], since: float) -> Sample | None:
    new = [s for s in hits if s.start >= since]
    return min(new, key=lambda s: s.start) if new else None


def _healthy_again(samples: list[Sample]) -> bool:
    recent = samples[-20:]
    return len(recent) == 20 and all(s.status == 200 and s.end - s.start < 0.1 for s in recent)


def _spacing_ms(samples: list[Sample]) -> float:
    starts = sorted(s.start for s in samples)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    return statistics.median(gaps) * 1000 if gaps else float("nan")


# -- 3. Toxiproxy pass-through overhead --------------------------------------------------

def overhead(rt: Deployment, n: int) -> dict[str, list[float]]:
    direct = rt.url("c")
    (proxy,) = rt.link_proxies("b->c")
    results = {}
    for label, url in (("direct", direct), ("via toxiproxy", f"http://{proxy.listen}")):
        with httpx.Client(timeout=5) as client:
            for _ in range(50):
                client.get(url + "/")  # warm the connection
            times = []
            for _ in range(n):
                started = time.perf_counter()
                client.get(url + "/")
                times.append((time.perf_counter() - started) * 1000)
        results[label] = times
    return results


# -- 4. load generators ----------------------------------------------------------------

def locust_rps(url: str, folder: Path, run_id: str, seconds: int, users: int) -> float:
    spec = LoadSpec(users=users, spawn_rate=users, duration_s=seconds, timeout_s=5)
    folder.mkdir(parents=True, exist_ok=True)
    with LoadRun(spec, host_url=url, requests_file=folder / "requests.jsonl", log_dir=folder, run_id=run_id) as run:
        run.wait(timeout_s=seconds + 30)
    return float(run.summary().get("rps", 0.0))


def wrk_rps(url: str, seconds: int, connections: int) -> float | None:
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    out = subprocess.run([wrk, "-t1", f"-c{connections}", f"-d{seconds}s", url + "/"],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(found.group(1)) if found else None


# -- report ------------------------------------------------------------------------------

def row(label: str, values: list[float], unit: str = "ms") -> str:
    return (f"  {label:<28} median {statistics.median(values):8.1f} {unit}   "
            f"min {min(values):8.1f}   max {max(values):8.1f}   (n={len(values)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, shorter load (a smoke run)")
    args = parser.parse_args()
    reps, n, seconds = (2, 500, 3) if args.quick else (5, 3000, 10)
    run_id = new_run_id()
    folder = Path(tempfile.mkdtemp(prefix="bench-chained-"))
    try:
        with LocalToxiproxy(run_id=run_id, log_path=folder / "toxiproxy.log") as toxiproxy:
            print(f"chained bench, run {run_id}, {reps} repetitions")
            print("\n1. cold start of A -> B -> C (proxies, 3 processes, readiness)")
            print(row("runtime.up()", cold_start(toxiproxy, run_id, folder, reps)))

            rt = runtime_for(toxiproxy, run_id, folder, "main")
            with rt:
                print("\n2. fault actuation, from the start of the API call (medians)")
                found, spacing = actuation(rt, reps)
                print(f"  {'fault':<26} {'apply call':>10} {'-> new request hit':>19} {'-> error seen':>14} {'in-flight hit':>14}")
                for name, a in found.items():
                    seen = f"{statistics.median(a.to_seen_error_ms):11.1f} ms" if a.to_seen_error_ms else "          -   "
                    print(f"  {name:<26} {statistics.median(a.call_ms):7.1f} ms {statistics.median(a.to_new_request_ms):16.1f} ms"
                          f" {seen} {statistics.median(a.in_flight_hit):14.0f}")
                print(f"  (resolution: requests start every {spacing:.1f} ms)")

                print("\n3. Toxiproxy pass-through overhead, GET C, one keep-alive client")
                res = overhead(rt, n)
                for label, times in res.items():
                    print(f"  {label:<28} p50 {percentile(times, 50):6.2f} ms   p99 {percentile(times, 99):6.2f} ms")
                print(f"  {'added by the proxy':<28} p50 {percentile(res['via toxiproxy'], 50) - percentile(res['direct'], 50):6.2f} ms"
                      f"   p99 {percentile(res['via toxiproxy'], 99) - percentile(res['direct'], 99):6.2f} ms")

                print(f"\n4. requests/s, one core per generator, {seconds} s, 50 connections/users")
                for label, url in (("entry A (A->B->C)", rt.entry_url()), ("leaf C", rt.url("c"))):
                    locust = locust_rps(url, folder / f"locust-{label[:4].strip()}", run_id, seconds, 50)
                    wrk = wrk_rps(url, seconds, 50)
                    wrk_text = f"{wrk:8.0f}" if wrk is not None else "   (no wrk: apt-get install wrk)"
                    print(f"  {label:<20} locust {locust:8.0f}   wrk {wrk_text}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
