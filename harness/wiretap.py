"""The harness's own record of the HTTP calls made on a link, from the wire.

A passive capture (Debian's tshark) on the link's proxy ports: each HTTP
request a client sent there, with the time it crossed, its method, path and
request id header, and the answer it got (status, and how long after the
request). Nothing is in the path, so what the client and the server see does
not change (an Envoy hop would answer 503 for a server that is down, where
the client should see its connection refused or reset); bench/bench_arrival_tap.py
measured it beside an Envoy with an access log.

It needs no help from the service, so any HTTP server is judged the same:
calls made through a breaker, calls reaching a leaf per request at the
entry, what a gateway asked each backend for. Requests sent to a crashed or
paused server are recorded too (its own record cannot keep them). The
harness's canaries are left out.

Local runtime: the loopback. Docker: the bridge of the run's network, seen
from the host. tshark needs the right to capture (root, or dumpcap with
CAP_NET_RAW, as Debian's wireshark-common offers).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from .errors import SetupError, WaitTimeout
from .filetail import FileTail
from .probes import Probe
from .runtime.labels import label_env
from .wait import wait_until

# One line per HTTP message, tab-separated, in this order.
FIELDS = ("frame.number", "frame.time_epoch", "tcp.stream", "http.request.method", "http.request.uri",
          "http.request.line", "http.response.code", "http.request_in", "http.time")
CANARY_METHOD = "HARNESS-CANARY"  # landing/canary.py's request line, never a call


def find_tshark() -> str:
    found = shutil.which("tshark")
    if not found:
        raise SetupError("tshark not found: the harness records the calls on a link with it. "
                         "Run `make setup` (it installs Debian's tshark), or apt-get install tshark.")
    return found


def capture_interface(runtime: Any) -> str:
    """Where a link's traffic to its proxies crosses: the loopback, or the run network's bridge."""
    network = getattr(runtime.toxiproxy, "network", None)
    if not network:
        return "lo"
    from .runtime.docker import engine

    attrs = engine.client().networks.get(network).attrs
    return attrs.get("Options", {}).get("com.docker.network.bridge.name") or f"br-{attrs['Id'][:12]}"


class Tap:
    """One tshark capturing HTTP on some TCP ports of one interface, its lines into a file read as they come."""

    def __init__(self, interface: str, ports: list[int], folder: Path, *, run_id: str,
                 request_id_header: str = "X-Request-Id", start_s: float = 20.0) -> None:
        if not ports:
            raise SetupError("a tap needs at least one port to capture")
        self.header = request_id_header.lower() + ":"
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"tap-{interface}-{'-'.join(map(str, ports))}"
        self.out_path, self.err_path = folder / f"{stem}.tsv", folder / f"{stem}.err"
        ports_filter = " or ".join(f"tcp port {p}" for p in ports)
        decode = [arg for p in ports for arg in ("-d", f"tcp.port=={p},http")]
        cmd = [find_tshark(), "-i", interface, "-l", "-n", "-q", "-f", ports_filter, *decode, "-Y", "http",
               "-T", "fields", "-E", "separator=/t", *[arg for f in FIELDS for arg in ("-e", f)]]
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                            env={**os.environ, **label_env(run_id)}, start_new_session=True)
        self._tail = FileTail(self.out_path, from_end=False)
        self.requests: dict[str, dict[str, Any]] = {}  # frame number -> its call, until answered
        try:
            wait_until(self._capturing, timeout_s=start_s, what=f"tshark capturing on {interface} ({ports_filter})",
                       log_tail=lambda: self.err_path.read_text(errors="replace"), error=SetupError)
        except BaseException:
            self.close()
            raise

    def _capturing(self) -> bool:
        code = self.process.poll()
        if code is not None:
            raise SetupError(f"tshark exited with code {code} before capturing: "
                             f"{self.err_path.read_text(errors='replace').strip()[-500:]} "
                             "(it needs root, or dumpcap with CAP_NET_RAW)")
        return "Capturing on" in self.err_path.read_text(errors="replace")

    def new(self) -> list[dict[str, Any]]:
        """The calls and answers written since the last time, as observed events."""
        events = []
        for line in self._tail.new_lines():
            event = message_event(line.decode(errors="replace").split("\t"), self.header, self.requests)
            if event is not None:
                events.append(event)
        return events

    def settle(self, *, quiet_s: float = 0.5, limit_s: float = 3.0) -> None:
        """Until tshark's output stops growing for quiet_s (at most limit_s, then as it is): the capture
        lags the wire by a few hundred ms, and the calls at the end of a run are as much evidence as the others."""
        seen = {"size": -1, "since": time.monotonic()}

        def quiet() -> bool:
            size = self.out_path.stat().st_size
            if size != seen["size"]:
                seen.update(size=size, since=time.monotonic())
            return self.process.poll() is not None or time.monotonic() - seen["since"] >= quiet_s

        try:
            wait_until(quiet, timeout_s=limit_s, what="tshark's output to stop growing")
        except WaitTimeout:  # still writing at the limit: the last round takes what is there
            pass

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._tail.close()


def message_event(cols: list[str], header: str, requests: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """One line of tshark's FIELDS as an observed event: a request is an "arrival" (kept in `requests` by
    its frame until answered), a response an "answer" with its request's id; None for anything else
    (the harness's canaries among them). `header` is the request id header, lower case, with its colon."""
    if len(cols) < len(FIELDS):
        return None
    frame, epoch, stream, method, uri, header_lines, code, request_in, took = cols[: len(FIELDS)]
    t_ns = epoch_ns(epoch)
    if t_ns is None:
        return None
    if method:
        if method == CANARY_METHOD or not uri:
            return None
        call = {"t_ns": t_ns, "event": "arrival", "method": method, "path": uri, "stream": stream,
                "request_id": _header(header_lines, header), "via": "wire"}
        requests[frame] = call
        return call
    if code:
        call = requests.pop(request_in, None)
        return {"t_ns": t_ns, "event": "answer", "status": int(code) if code.isdigit() else None,
                "duration_ms": round(float(took) * 1000, 3) if _number(took) else None, "stream": stream,
                "request_id": call["request_id"] if call else None, "via": "wire"}
    return None


def _header(header_lines: str, header: str) -> str | None:
    for line in header_lines.split("\\r\\n,"):  # tshark joins the header lines, each ending in a literal \r\n
        if line.lower().startswith(header):
            return line.split(":", 1)[1].removesuffix("\\r\\n").strip() or None
    return None


def epoch_ns(text: str) -> int | None:
    """Nanoseconds of tshark's "1796215290.770128139", without a float's rounding."""
    whole, _, fraction = text.strip().partition(".")
    if not whole.isdigit() or (fraction and not fraction.isdigit()):
        return None
    return int(whole) * 10**9 + int((fraction or "0").ljust(9, "0")[:9])


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def http_calls_probe(runtime: Any, link: str, *, name: str | None = None, folder: Path | None = None,
                     request_id_header: str = "X-Request-Id") -> list[Probe]:
    """Every HTTP call the client of `link` made through its proxies, from the wire, as observed
    "arrival" events (time, method, path, request_id) and "answer" events (status, duration_ms),
    under `name` (default: the link's server, as a service's own arrivals probe would be named)."""
    proxies = runtime.link_proxies(link)
    if not proxies:
        raise SetupError(f"link {link!r} has no proxies to capture on")
    ports = sorted({int(p.listen.rsplit(":", 1)[1]) for p in proxies})
    where = folder or Path(getattr(runtime, "log_dir", ".")) / "taps"
    tap = Tap(capture_interface(runtime), ports, where, run_id=runtime.run_id, request_id_header=request_id_header)
    started = time.time_ns()

    def sample() -> dict[str, Any]:
        events = [e for e in tap.new() if e["t_ns"] >= started]
        return {"calls": sum(e["event"] == "arrival" for e in events), "events": events}

    return [Probe(name or link.split("->", 1)[1].split(":", 1)[0], sample, tap.close, tap.settle)]


__all__ = ["Tap", "capture_interface", "epoch_ns", "find_tshark", "http_calls_probe", "message_event"]
