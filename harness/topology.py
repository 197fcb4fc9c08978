"""Targets: services, links, variants and spec, from a TOML file or Python.

A topology file (``targets/<pattern>/topology.toml``)::

    name = "chained"
    entry = "a"                       # the service load is driven against

    [services.b]
    command = ["{python}", "{target}/service.py"]   # {python} {target} {port}
    health = "/health"                # an HTTP path, or "tcp"
    instances = 1
    env = { DOWNSTREAM_URL = "${C_URL}" }           # ${X_URL} from links

    [[links]]                         # client -> server, each via a proxy
    client = "b"
    server = "c"
    # label = "reports"               # a second link to the same server: REPORTS_URL ...
    # protocol = "http"               # what the harness's canary speaks: http, postgres, amqp, nats, tcp

    [variants.no-timeouts]
    broken = true
    description = "..."
    env = { VARIANT = "no-timeouts" }          # for every service
    services.b.env = { EXTRA = "1" }           # or for one

    [spec]                            # the figures the checks use
    budget_ms = 800

For every link the client gets ``<SERVER>_URL`` (http://127.0.0.1:<proxy
port>), ``<SERVER>_ADDR`` (127.0.0.1:<port>) and, with several instances,
``<SERVER>_URLS`` (comma-separated); a labelled link uses ``<LABEL>_`` instead.
Every instance gets ``PORT``, ``SERVICE_NAME``, ``INSTANCE`` and ``DATA_DIR``
(its own folder in the run's folder, for a database's files); commands may
use the placeholders ``{python}``, ``{target}``, ``{port}`` and ``{data}``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import TopologyError
from .landing.canary import PROTOCOLS

TARGETS_DIR = Path(__file__).resolve().parent.parent / "targets"
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(frozen=True)
class Service:
    """One program with one or more instances."""

    name: str
    command: tuple[str, ...] = ()
    image: str | None = None
    instances: int = 1
    env: dict[str, str] = field(default_factory=dict)
    health: str = "/health"
    ready_timeout_s: float = 20.0


@dataclass(frozen=True)
class Link:
    """A directed dependency; all its traffic passes one Toxiproxy proxy per server instance."""

    client: str
    server: str
    label: str = ""  # tells apart two links between the same pair (two pools)
    protocol: str = "http"  # what the harness's canary sends through its proxy (landing/canary.py)

    @property
    def name(self) -> str:
        base = f"{self.client}->{self.server}"
        return f"{base}:{self.label}" if self.label else base

    @property
    def env_key(self) -> str:
        """Prefix of the variables the client gets: <KEY>_URL, <KEY>_ADDR, <KEY>_URLS."""
        return (self.label or self.server).upper().replace("-", "_")


@dataclass(frozen=True)
class Variant:
    name: str
    broken: bool = False
    description: str = ""
    env: dict[str, str] = field(default_factory=dict)
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Topology:
    name: str
    services: dict[str, Service]
    links: tuple[Link, ...] = ()
    entry: str = ""
    variants: dict[str, Variant] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)
    folder: Path | None = None
    source: str = "<python>"
    variant: str = "correct"

    def __post_init__(self) -> None:
        validate(self)

    def link(self, name: str) -> Link:
        for link in self.links:
            if link.name == name:
                return link
        known = ", ".join(l.name for l in self.links) or "none"
        raise TopologyError(f"{self.source}: no link {name!r} in target {self.name!r} (links: {known})")

    def service(self, name: str) -> Service:
        if name not in self.services:
            known = ", ".join(self.services)
            raise TopologyError(f"{self.source}: no service {name!r} in target {self.name!r} (services: {known})")
        return self.services[name]

    def links_from(self, client: str) -> list[Link]:
        return [l for l in self.links if l.client == client]

    def with_variant(self, name: str) -> "Topology":
        """The same target with one variant's environment applied."""
        if name not in self.variants:
            known = ", ".join(self.variants) or "none"
            raise TopologyError(f"{self.source}: unknown variant {name!r} of target {self.name!r} (variants: {known})")
        v = self.variants[name]
        services = {
            s.name: replace(s, env={**s.env, **v.env, **v.service_env.get(s.name, {})})
            for s in self.services.values()
        }
        return replace(self, services=services, variant=name)

    def describe(self) -> dict[str, Any]:
        """The shape the timeline and the report keep."""
        return {
            "services": [{"name": s.name, "instances": s.instances} for s in self.services.values()],
            "links": [{"name": l.name, "client": l.client, "server": l.server, "protocol": l.protocol}
                      for l in self.links],
            "entry": self.entry,
        }


def validate(t: Topology) -> None:
    src = t.source
    if not t.services:
        raise TopologyError(f"{src}: [services] is empty; a target needs at least one service")
    for s in t.services.values():
        where = f"{src}: services.{s.name}"
        if not NAME_RE.match(s.name):
            raise TopologyError(f"{where}: a service name is lower-case letters, digits, '-' or '_'")
        if not s.command and not s.image:
            raise TopologyError(f"{where}: give a 'command' (local runtime) or an 'image' (docker runtime)")
        if s.instances < 1:
            raise TopologyError(f"{where}.instances: must be at least 1, got {s.instances}")
        if s.health != "tcp" and not s.health.startswith("/"):
            raise TopologyError(f"{where}.health: an HTTP path starting with '/' or \"tcp\", got {s.health!r}")
    for i, l in enumerate(t.links):
        for end in ("client", "server"):
            if getattr(l, end) not in t.services:
                raise TopologyError(f"{src}: links[{i}].{end} = {getattr(l, end)!r} is not a service")
        if l.label and not NAME_RE.match(l.label):
            raise TopologyError(f"{src}: links[{i}].label = {l.label!r}: lower-case letters, digits, '-' or '_'")
        if l.protocol not in PROTOCOLS:
            raise TopologyError(f"{src}: links[{i}].protocol = {l.protocol!r}: one of {', '.join(PROTOCOLS)} "
                                "(what the harness's canary speaks to check that a fault on the link took effect)")
        for j, other in enumerate(t.links[:i]):
            if other.client == l.client and other.env_key == l.env_key:
                raise TopologyError(
                    f"{src}: links[{j}] and links[{i}] both give {l.client} the variables {l.env_key}_*; "
                    "give one of them a distinct 'label'"
                )
    if t.entry not in t.services:
        raise TopologyError(f"{src}: entry = {t.entry!r} is not a service (services: {', '.join(t.services)})")
    for v in t.variants.values():
        for svc in v.service_env:
            if svc not in t.services:
                raise TopologyError(f"{src}: variants.{v.name}.services.{svc} is not a service")


def _str_dict(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise TopologyError(f"{where}: expected a table of strings, got {type(value).__name__}")
    return {str(k): str(v) for k, v in value.items()}


def _service(name: str, raw: Any, src: str) -> Service:
    where = f"{src}: services.{name}"
    if not isinstance(raw, dict):
        raise TopologyError(f"{where}: expected a table")
    allowed = {"command", "image", "instances", "env", "health", "ready_timeout_s"}
    unknown = set(raw) - allowed
    if unknown:
        raise TopologyError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    command = raw.get("command", ())
    if isinstance(command, str):
        command = command.split()
    if not isinstance(command, (list, tuple)) or not all(isinstance(c, str) for c in command):
        raise TopologyError(f"{where}.command: expected a list of strings")
    instances = raw.get("instances", 1)
    if not isinstance(instances, int):
        raise TopologyError(f"{where}.instances: expected an integer, got {instances!r}")
    return Service(
        name=name,
        command=tuple(command),
        image=raw.get("image"),
        instances=instances,
        env=_str_dict(raw.get("env", {}), f"{where}.env"),
        health=str(raw.get("health", "/health")),
        ready_timeout_s=float(raw.get("ready_timeout_s", 20.0)),
    )


def _variant(name: str, raw: Any, src: str) -> Variant:
    where = f"{src}: variants.{name}"
    if not isinstance(raw, dict):
        raise TopologyError(f"{where}: expected a table")
    per_service = raw.get("services", {})
    if not isinstance(per_service, dict):
        raise TopologyError(f"{where}.services: expected a table of service tables")
    return Variant(
        name=name,
        broken=bool(raw.get("broken", False)),
        description=str(raw.get("description", "")),
        env=_str_dict(raw.get("env", {}), f"{where}.env"),
        service_env={s: _str_dict(v.get("env", {}), f"{where}.services.{s}.env") for s, v in per_service.items()},
    )


def parse(data: dict[str, Any], *, source: str, folder: Path | None) -> Topology:
    """Builds a Topology from the parsed TOML document."""
    allowed = {"name", "description", "entry", "services", "links", "variants", "spec"}
    unknown = set(data) - allowed
    if unknown:
        raise TopologyError(f"{source}: unknown top-level key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    services_raw = data.get("services")
    if not isinstance(services_raw, dict) or not services_raw:
        raise TopologyError(f"{source}: [services] is missing or empty")
    links = []
    for i, raw in enumerate(data.get("links", [])):
        if not isinstance(raw, dict) or "client" not in raw or "server" not in raw:
            raise TopologyError(f"{source}: links[{i}] needs 'client' and 'server'")
        unknown = set(raw) - {"client", "server", "label", "protocol"}
        if unknown:
            raise TopologyError(f"{source}: links[{i}]: unknown key(s) {sorted(unknown)}; "
                                "allowed: client, server, label, protocol")
        links.append(Link(client=str(raw["client"]), server=str(raw["server"]), label=str(raw.get("label", "")),
                          protocol=str(raw.get("protocol", "http"))))
    variants = {n: _variant(n, v, source) for n, v in data.get("variants", {}).items()}
    variants.setdefault("correct", Variant(name="correct"))
    return Topology(
        name=str(data.get("name") or (folder.name if folder else "target")),
        services={n: _service(n, raw, source) for n, raw in services_raw.items()},
        links=tuple(links),
        entry=str(data.get("entry", next(iter(services_raw)))),
        variants=variants,
        spec=dict(data.get("spec", {})),
        folder=folder,
        source=source,
    )


def load_topology(path: str | Path) -> Topology:
    """Loads a topology file, or a target by name: "chained" is targets/chained/topology.toml,
    "messaging/rabbitmq" is targets/messaging/rabbitmq.toml."""
    p = Path(path)
    if not p.suffix and not p.exists():  # a target by name, or another file of one: "messaging/rabbitmq"
        named = TARGETS_DIR / str(path)
        p = named / "topology.toml" if named.is_dir() or not named.with_suffix(".toml").exists() else named.with_suffix(".toml")
    elif p.is_dir():
        p = p / "topology.toml"
    if not p.exists():
        known = sorted(d.name for d in TARGETS_DIR.iterdir() if (d / "topology.toml").exists()) if TARGETS_DIR.exists() else []
        raise TopologyError(f"{p}: no such topology file (known targets: {', '.join(known) or 'none'})")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TopologyError(f"{p}: not valid TOML: {exc}") from None
    return parse(data, source=str(p), folder=p.parent.resolve())
