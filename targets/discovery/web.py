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

import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from targetkit import envconfig
from targetkit.envconfig import ConfigError
from targetkit.program import run
from targetkit.serving import JsonHandler, Server, serve

from etcdlink import Etcd
from registration import Registration

QUIET_S = 0.3


@dataclass(frozen=True)
class Config:
    port: int
    registry_url: str
    variant: str
    name: str
    prefix: str
    ttl_s: float
    heartbeat_s: float
    drain_s: float
    work_s: float
    advertise_host: str


def load_config(env: Mapping[str, str]) -> Config:
    """The env contract; numbers are >= 0, the lease a whole number of seconds longer than a heartbeat."""
    port = int(envconfig.number(env, "PORT", 0, minimum=0))
    registry_url = env.get("REGISTRY_URL", "").strip()
    if not port or not registry_url:
        raise ConfigError("PORT and REGISTRY_URL are required (REGISTRY_URL comes from a link to the registry)")
    ttl_s = envconfig.number(env, "TTL_S", 2, minimum=0)
    heartbeat_s = envconfig.number(env, "HEARTBEAT_S", 0.5, minimum=0)
    drain_s = envconfig.number(env, "DRAIN_S", 1.0, minimum=0)
    if int(ttl_s) != ttl_s or ttl_s < 1 or not 0 < heartbeat_s < ttl_s:
        raise ConfigError("TTL_S must be a whole number >= 1 and 0 < HEARTBEAT_S < TTL_S "
                          f"(got {ttl_s}, {heartbeat_s})")
    return Config(port=port, registry_url=registry_url, variant=env.get("VARIANT", "correct").strip() or "correct",
                  name=f"{env.get('SERVICE_NAME', 'web')}-{env.get('INSTANCE', '0')}",
                  prefix=env.get("PREFIX", "/services/web/"), ttl_s=ttl_s, heartbeat_s=heartbeat_s,
                  drain_s=drain_s, work_s=envconfig.number(env, "WORK_MS", 5, minimum=0) / 1000,
                  advertise_host=env.get("ADVERTISE_HOST", "").strip())


def advertised_host(registry_url: str, given: str) -> str:
    """ADVERTISE_HOST if given, else the local address on the route to the registry:
    127.0.0.1 on the local runtime, the container's address on the run's network under docker."""
    if given:
        return given
    parts = urlsplit(registry_url)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((socket.gethostbyname(parts.hostname or "127.0.0.1"), parts.port or 2379))
        return probe.getsockname()[0]


class Handler(JsonHandler):
    """Compact JSON with Nagle off; errors are http.server's own pages, logged nowhere."""

    disable_nagle_algorithm = True
    compact_json = True
    send_error = BaseHTTPRequestHandler.send_error
    log_error = BaseHTTPRequestHandler.log_error  # through log_message: silent
    instance = "web"
    work_s = 0.0
    registration: Registration | None = None
    last_request_s = 0.0

    def connection_header(self) -> str:
        return "keep-alive"  # what web has always said, also when it closes after (HTTP/1.0, Connection: close)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        if not path.startswith(("/health", "/admin/")):
            Handler.last_request_s = time.monotonic()
        if path == "/health":
            self.send_json(200, {"status": "ok", "instance": self.instance,
                                 "registered": bool(self.registration and self.registration.record.registered)})
        elif path == "/admin/state":
            rec = self.registration.record if self.registration else None
            self.send_json(200, {"instance": self.instance, "registered": int(bool(rec and rec.registered)),
                                 "registrations": rec.registrations if rec else 0,
                                 "heartbeats": rec.heartbeats if rec else 0,
                                 "failures": rec.failures if rec else 0, "events": list(rec.events) if rec else []})
        else:
            if self.work_s:
                time.sleep(self.work_s)  # the instance's work: a request takes this long
            self.send_json(200, {"instance": self.instance, "path": path, "t_ns": time.time_ns()})


def start(config: Config) -> int:
    name, drain_s = config.name, config.drain_s
    host = advertised_host(config.registry_url, config.advertise_host)
    etcd = Etcd(config.registry_url)
    registration = Registration(etcd, key=config.prefix + name, ttl_s=int(config.ttl_s),
                                heartbeat_s=config.heartbeat_s, use_lease=config.variant != "no-ttl",
                                value={"instance": name, "host": host, "port": config.port})
    Handler.instance, Handler.work_s, Handler.registration = name, config.work_s, registration

    def leave_then_close(server: Server) -> None:
        left = registration.leave()
        print(f"web {name}: {'deregistered' if left else 'could not deregister'}; draining (at most {drain_s:g} s)",
              file=sys.stderr, flush=True)
        left_at = time.monotonic()
        deadline = left_at + drain_s
        while time.monotonic() < deadline and time.monotonic() - max(Handler.last_request_s, left_at) < QUIET_S:
            time.sleep(0.05)  # poll: until the balancer has stopped sending (no request for QUIET_S)
        server.shutdown()

    def banner(at: str) -> str:
        return f"web {name} ({config.variant}) on {at}, registering as {host}:{config.port} under {config.prefix}"

    return serve(Handler, config.port, banner, name="web", on_start=registration.start,
                 on_signal=leave_then_close, on_stop=etcd.close, says_stopped=False)


if __name__ == "__main__":
    sys.exit(run("web", load_config, start, error_status=1))
