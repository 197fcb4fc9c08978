"""What it costs the harness to record, by itself, every call that reaches a server.

    .venv/bin/python bench/bench_arrival_tap.py [--quick]

Issue 15 asks for a record of arrivals at any HTTP server with no help from
the server, from a real component, chosen by its figures. Two candidates,
each on the chained target's leaf C behind a Toxiproxy proxy, as a link:

- envoy: an Envoy between the link's proxy and the server, with a JSON access
  log (start time, method, path, status, duration, x-request-id). It is one
  more hop: it answers for the server when the server is down (a 503 where the
  client would have seen a refused or reset connection) and pools its own
  connections to it.
- tshark: a passive capture on the loopback, filtered on the server's port,
  the HTTP dissector's requests and responses paired by tshark. It is no hop:
  what the client and server see does not change.

Printed per way: one keep-alive client calling one at a time (p50 and p99
added per call against the bare proxy), wrk's requests/s with 4
connections, the CPU the recorder spent per 1,000 requests, and how many of
the requests that reached the server it recorded. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.checks.windows import percentile  # noqa: E402
from harness.runtime import make_runtime  # noqa: E402
from harness.runtime.labels import new_run_id  # noqa: E402
from harness.runtime.ports import free_port  # noqa: E402
from harness.runtime.toxiproxy_hosts import LocalToxiproxy  # noqa: E402
from harness.topology import load_topology  # noqa: E402
from harness.wait import wait_until  # noqa: E402
from harness.wiretap import Tap  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "targets" / "discovery"))
from balancer import envoy_binary  # noqa: E402

ENVOY_CONFIG = """
static_resources:
  listeners:
  - name: tap
    address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: tap
          generate_request_id: false
          preserve_external_request_id: true
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: {log}
              log_format:
                json_format:
                  start: "%START_TIME(%s.%6f)%"
                  method: "%REQ(:METHOD)%"
                  path: "%REQ(:PATH)%"
                  status: "%RESPONSE_CODE%"
                  duration_ms: "%DURATION%"
                  request_id: "%REQ(X-REQUEST-ID)%"
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                route: {{cluster: server, timeout: 0s}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
              suppress_envoy_headers: true
  clusters:
  - name: server
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: server
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {upstream}}}}}}}
"""


def cpu_s(pid: int) -> float:
    """utime + stime of one process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sequential(url: str, n: int) -> list[float]:
    """Latency of n calls, one at a time on one kept-alive connection, in ms."""
    out = []
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        for i in range(n):
            started = time.perf_counter()
            client.get(url, headers={"X-Request-Id": f"seq-{i}"}).raise_for_status()
            out.append((time.perf_counter() - started) * 1000)
    return out


def wrk(url: str, seconds: int) -> tuple[float, int]:
    """(requests/s, requests) of wrk -t1 -c4 for `seconds`."""
    text = subprocess.run(["wrk", "-t1", "-c4", f"-d{seconds}s", url], capture_output=True, text=True,
                          timeout=seconds + 30).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    return (float(rate.group(1)) if rate else float("nan")), (int(total.group(1)) if total else 0)


class Envoy:
    def __init__(self, folder: Path, upstream: int) -> None:
        self.port, self.log = free_port(), folder / "envoy-access.log"
        config = folder / "envoy-tap.yaml"
        config.write_text(ENVOY_CONFIG.format(port=self.port, log=self.log, upstream=upstream))
        self.process = subprocess.Popen([envoy_binary(), "-c", str(config), "--concurrency", "1",
                                         "--log-level", "warn", "--base-id", str(os.getpid() % 60000)],
                                        stdout=subprocess.DEVNULL, stderr=open(folder / "envoy.err", "wb"))
        wait_until(lambda: _answers(f"http://127.0.0.1:{self.port}/"), timeout_s=20, what="the Envoy tap answering")

    def count(self) -> int:
        return sum(1 for line in self.log.read_text().splitlines() if line.startswith("{")) if self.log.exists() else -1

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def settled(count, what: str) -> int:
    """A recorder's count once it stops growing (the same twice, 1.5 s apart: Envoy flushes its
    access log every second)."""
    seen = [-1]

    def same() -> bool:
        now = count()
        steady, seen[0] = now == seen[0] and now >= 0, now
        return steady

    wait_until(same, timeout_s=30, interval_s=1.5, what=f"{what} to stop growing")
    return seen[0]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0, trust_env=False).status_code < 500
    except httpx.HTTPError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and a shorter wrk")
    args = parser.parse_args()
    calls, seconds = (300, 3) if args.quick else (2000, 10)
    if not shutil.which("wrk") or not shutil.which("tshark"):
        sys.exit("bench_arrival_tap: needs wrk and tshark (apt-get install wrk tshark)")
    run_id, folder = new_run_id(), Path(tempfile.mkdtemp(prefix="bench-tap-"))
    with LocalToxiproxy(run_id=run_id, log_path=folder / "toxiproxy.log") as toxiproxy:
        rt = make_runtime("local", load_topology("chained").with_variant("correct"), run_id=run_id,
                          toxiproxy=toxiproxy, log_dir=folder / "logs", prefix="tap")
        rt.up()
        try:
            c_port = int(rt.url("c").rsplit(":", 1)[1])
            bare = toxiproxy.create_proxy("bare", upstream=f"127.0.0.1:{c_port}")["listen"]
            rows = []
            # bare proxy, then the same with tshark watching C's port
            base = sequential(f"http://{bare}/", calls)
            base_rate, _ = wrk(f"http://{bare}/", seconds)
            rows.append(("proxy only", base, base_rate, None, None))
            tap = Tap("lo", [c_port], folder, run_id=run_id)  # the harness's own (harness/wiretap.py)
            try:
                before = cpu_s(tap.process.pid)
                lat = sequential(f"http://{bare}/", calls)
                rate, total = wrk(f"http://{bare}/", seconds)
                spent = cpu_s(tap.process.pid) - before
                tap.settle(limit_s=30)
                seen = sum(e["event"] == "arrival" for e in tap.new())
                rows.append(("tshark on lo", lat, rate, spent / ((calls + total) / 1000), seen / (calls + total)))
            finally:
                tap.close()
            envoy = Envoy(folder, c_port)
            try:
                tapped = toxiproxy.create_proxy("tapped", upstream=f"127.0.0.1:{envoy.port}")["listen"]
                before = cpu_s(envoy.process.pid)
                lat = sequential(f"http://{tapped}/", calls)
                rate, total = wrk(f"http://{tapped}/", seconds)
                spent = cpu_s(envoy.process.pid) - before
                rows.append(("envoy tap", lat, rate, spent / ((calls + total) / 1000),
                             (settled(envoy.count, "Envoy's access log") - 1) / (calls + total)))  # less the readiness call
            finally:
                envoy.close()
            print(f"arrival recorders on chained's C behind a Toxiproxy proxy ({calls} sequential calls, "
                  f"wrk -t1 -c4 {seconds}s); files in {folder}")
            print(f"{'way':14} {'p50 ms':>8} {'p99 ms':>8} {'+p50':>7} {'+p99':>7} {'req/s':>8} "
                  f"{'cpu ms/1k':>10} {'recorded':>9}")
            b50, b99 = percentile(base, 50), percentile(base, 99)
            for way, lat, rate, cpu, share in rows:
                p50, p99 = percentile(lat, 50), percentile(lat, 99)
                print(f"{way:14} {p50:8.2f} {p99:8.2f} {p50 - b50:+7.2f} {p99 - b99:+7.2f} {rate:8.0f} "
                      + (f"{cpu * 1000:10.0f} {share * 100:8.1f}%" if cpu is not None else f"{'-':>10} {'-':>9}"))
            print(json.dumps({"rows": [{"way": w, "p50_ms": round(percentile(lt, 50), 3),
                                        "p99_ms": round(percentile(lt, 99), 3), "req_per_s": round(r),
                                        "cpu_ms_per_1k": None if c is None else round(c * 1000),
                                        "recorded_share": None if s is None else round(s, 4)}
                                       for w, lt, r, c, s in rows]}))
        finally:
            rt.down()


if __name__ == "__main__":
    main()
