"""How a topology's services are wired: the variables and command an
instance gets, and the order they are taken down in.

Every link's client gets ``<KEY>_ADDR`` and ``<KEY>_URL`` (the first proxy)
and ``<KEY>_URLS`` (every server instance's proxy); every instance gets
``PORT``, ``SERVICE_NAME``, ``INSTANCE`` and ``DATA_DIR``; a service's own
env may refer to any of these as ``${NAME}``. ``<KEY>_DIRECT_ADDR`` and ``_URL`` are the
first server's own address, past the proxy: no real client should use it;
it exists so the suite can prove that the harness notices a client that
ignores its proxy (every fault on that link is then a no-op).
"""

from __future__ import annotations

import string

from ..errors import ServiceError
from ..topology import Service, Topology
from .backend import Instance

PLACEHOLDERS = ("python", "target", "port", "data")


def link_env(topology: Topology, client: str, listens: dict[str, list[str]],
             direct: dict[str, list[str]] | None = None) -> dict[str, str]:
    """The variables that tell `client` where its links' proxies listen (link name -> proxy
    addresses), and where the servers themselves are (link name -> upstream addresses)."""
    env: dict[str, str] = {}
    for link in topology.links_from(client):
        addrs = listens[link.name]
        env[f"{link.env_key}_ADDR"] = addrs[0]
        env[f"{link.env_key}_URL"] = f"http://{addrs[0]}"
        env[f"{link.env_key}_URLS"] = ",".join(f"http://{a}" for a in addrs)
        if direct and direct.get(link.name):
            env[f"{link.env_key}_DIRECT_ADDR"] = direct[link.name][0]
            env[f"{link.env_key}_DIRECT_URL"] = f"http://{direct[link.name][0]}"
    return env


def instance_env(svc: Service, inst: Instance, links: dict[str, str], labels: dict[str, str]) -> dict[str, str]:
    """Everything the instance's process gets: the harness's variables, then the service's own
    (with ${NAME} filled from those), then the run's labels."""
    base = {"PORT": inst.places["port"], **inst.env, "SERVICE_NAME": svc.name, "INSTANCE": str(inst.index),
            "DATA_DIR": inst.places["data"], **links}
    own = {k: string.Template(v).safe_substitute(base) for k, v in svc.env.items()}
    return {"PYTHONUNBUFFERED": "1", **base, **own, **labels}


def command(svc: Service, inst: Instance, source: str) -> list[str] | None:
    """The service's command with {python} {target} {port} {data} filled in; None keeps an image's own."""
    try:
        return [part.format(**inst.places) for part in svc.command] or None
    except (KeyError, IndexError) as exc:
        known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
        raise ServiceError(f"{source}: services.{svc.name}.command has an unknown placeholder {exc}; "
                           f"known: {known}") from None


def stop_order(topology: Topology) -> list[str]:
    """Services clients first: a service goes before every service it calls, so
    nothing is left calling a server that is gone. Services in a cycle keep the file's order."""
    callers = {name: {l.client for l in topology.links if l.server == name and l.client != name}
               for name in topology.services}
    order: list[str] = []
    left = list(topology.services)
    while left:
        ready = [s for s in left if callers[s] <= set(order)] or left[:1]
        order.append(ready[0])
        left.remove(ready[0])
    return order
