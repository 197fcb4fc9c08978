"""One instance of the discovered service: it registers itself and answers
with its own name, so clients see which instance served them.

    GET /            {"instance": "web-1", ...} after WORK_MS of work
    GET /health      200 while serving (registered or not: an instance that
                     starts during a registry outage is healthy, just unknown)
    GET /admin/state what it did with the registry, with timestamped events

On SIGTERM it leaves the registry first, keeps serving until no request has
come for QUIET_S (the balancer has dropped it; at most DRAIN_S), then
closes: a graceful stop costs no request.

Environment: PORT, BIND_HOST, INSTANCE, SERVICE_NAME, REGISTRY_URL (the
link to etcd), PREFIX, TTL_S, HEARTBEAT_S, DRAIN_S, WORK_MS, VARIANT
(correct | no-ttl | anything the balancer's variants use), ADVERTISE_HOST
(default: the address this host uses to reach the registry).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from etcdlink import Etcd
from registration import Registration


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        sys.exit(f"web: configuration error: {name} must be a number, got {raw!r}")
    if value < 0:
        sys.exit(f"web: configuration error: {name} must be >= 0, got {raw!r}")
    return value


def advertised_host(registry_url: str) -> str:
    """The local address on the route to the registry: 127.0.0.1 on the local
    runtime, the container's address on the run's network under docker."""
    given = os.environ.get("ADVERTISE_HOST", "").strip()
    if given:
        return given
    parts = urlsplit(registry_url)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((socket.gethostbyname(parts.hostname or "127.0.0.1"), parts.port or 2379))
        return probe.getsockname()[0]


QUIET_S = 0.3


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    instance = "web"
    work_s = 0.0
    registration: Registration | None = None
    last_request_s = 0.0

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        if not path.startswith(("/health", "/admin/")):
            Handler.last_request_s = time.monotonic()
        if path == "/health":
            self.reply(200, {"status": "ok", "instance": self.instance,
                             "registered": bool(self.registration and self.registration.record.registered)})
        elif path == "/admin/state":
            rec = self.registration.record if self.registration else None
            self.reply(200, {"instance": self.instance, "registered": int(bool(rec and rec.registered)),
                             "registrations": rec.registrations if rec else 0,
                             "heartbeats": rec.heartbeats if rec else 0,
                             "failures": rec.failures if rec else 0, "events": list(rec.events) if rec else []})
        else:
            if self.work_s:
                time.sleep(self.work_s)  # the instance's work: a request takes this long
            self.reply(200, {"instance": self.instance, "path": path, "t_ns": time.time_ns()})

    def reply(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        head = (f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: keep-alive\r\n\r\n")
        try:
            self.wfile.write(head.encode("latin-1") + payload)
        except OSError:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 1024  # a paused instance must not fill its backlog (see the README)
    daemon_threads = True


def main() -> int:
    port = int(_number("PORT", 0))
    registry_url = os.environ.get("REGISTRY_URL", "").strip()
    if not port or not registry_url:
        sys.exit("web: configuration error: PORT and REGISTRY_URL are required (REGISTRY_URL comes from a link to the registry)")
    variant = os.environ.get("VARIANT", "correct").strip() or "correct"
    name = f"{os.environ.get('SERVICE_NAME', 'web')}-{os.environ.get('INSTANCE', '0')}"
    prefix = os.environ.get("PREFIX", "/services/web/")
    ttl_s, heartbeat_s = _number("TTL_S", 2), _number("HEARTBEAT_S", 0.5)
    drain_s, bind = _number("DRAIN_S", 1.0), os.environ.get("BIND_HOST", "").strip() or "127.0.0.1"
    if int(ttl_s) != ttl_s or ttl_s < 1 or not 0 < heartbeat_s < ttl_s:
        sys.exit(f"web: configuration error: TTL_S must be a whole number >= 1 and 0 < HEARTBEAT_S < TTL_S (got {ttl_s}, {heartbeat_s})")
    try:
        server = Server((bind, port), Handler)
    except OSError as exc:
        print(f"web: cannot listen on {bind}:{port}: {exc}", file=sys.stderr)
        return 1
    host = advertised_host(registry_url)
    etcd = Etcd(registry_url)
    registration = Registration(etcd, key=prefix + name, ttl_s=int(ttl_s), heartbeat_s=heartbeat_s,
                                use_lease=variant != "no-ttl",
                                value={"instance": name, "host": host, "port": port})
    Handler.instance, Handler.work_s, Handler.registration = name, _number("WORK_MS", 5) / 1000, registration
    stopping = threading.Event()

    def leave_then_close() -> None:
        left = registration.leave()
        print(f"web {name}: {'deregistered' if left else 'could not deregister'}; draining (at most {drain_s:g} s)",
              file=sys.stderr, flush=True)
        left_at = time.monotonic()
        deadline = left_at + drain_s
        while time.monotonic() < deadline and time.monotonic() - max(Handler.last_request_s, left_at) < QUIET_S:
            time.sleep(0.05)  # poll: until the balancer has stopped sending (no request for QUIET_S)
        server.shutdown()

    def on_signal(_signum: int, _frame: object) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=leave_then_close, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    registration.start()
    print(f"web {name} ({variant}) on {bind}:{port}, registering as {host}:{port} under {prefix}",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        etcd.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
