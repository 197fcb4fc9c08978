"""A client that only ever talks to its own Toxiproxy server, and where the server binary is.

toxiproxy-python keeps the server address in class attributes of its
``APIConsumer`` (process-global), sends no timeout and checks only 400, 404
and 409. ``ToxiproxyClient`` therefore makes every call through
``APIConsumer`` under one lock with the address pinned to its own server,
passes a timeout, and checks every status itself, so one run never
addresses another run's server and no failure passes silently. Where a
run's server lives (a process, a container) is runtime/toxiproxy_hosts.py.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from .errors import SetupError, ToxiproxyError

if TYPE_CHECKING:
    from .toxiproxy_log import ServerLog

TOXIPROXY_VERSION = "v2.12.0"
_API_LOCK = threading.Lock()


def find_server_binary() -> str:
    """$HARNESS_TOXIPROXY, then the venv's bin, then PATH."""
    explicit = os.environ.get("HARNESS_TOXIPROXY")
    candidates = [explicit] if explicit else []
    candidates.append(str(Path(sys.executable).parent / "toxiproxy-server"))
    found = shutil.which("toxiproxy-server")
    if found:
        candidates.append(found)
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    raise SetupError(
        "toxiproxy-server not found (looked at $HARNESS_TOXIPROXY, the venv's bin and PATH). "
        f"Run `make setup`, which builds it with `go install github.com/Shopify/toxiproxy/v2/cmd/server@{TOXIPROXY_VERSION}`."
    )


class ToxiproxyClient:
    """Proxies and toxics on one server, every call checked and timed out."""

    def __init__(self, host: str, port: int, *, timeout_s: float = 10.0) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self.netns_pid: int | None = None  # a process in the server's network namespace; None: this host's
        self.log: ServerLog | None = None  # the server's log as it runs (toxiproxy_log.py), when the harness started it

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _call(self, method: str, path: str, what: str, **body: Any) -> Any:
        kwargs: dict[str, Any] = {"timeout": self.timeout_s, "headers": {"User-Agent": "chaos-harness"}}
        if body:
            kwargs["json"] = body
        with _API_LOCK:
            APIConsumer.host, APIConsumer.port = self.host, self.port
            try:
                response = getattr(APIConsumer, method)(path, **kwargs)
            except (ProxyExists, NotFound, InvalidToxic) as exc:
                raise ToxiproxyError(f"{what}: {type(exc).__name__}: {_text(exc.args[0] if exc.args else '')}") from None
            except requests.RequestException as exc:
                raise ToxiproxyError(f"{what}: Toxiproxy API {self.api_url} did not answer: {exc}") from None
        if response.status_code >= 300:
            raise ToxiproxyError(f"{what}: Toxiproxy answered {response.status_code}: {_text(response.content)}")
        return response.json() if response.content else None

    def new_listen(self) -> str:
        """The listen address to ask for a new proxy: any free port on 127.0.0.1."""
        return "127.0.0.1:0"

    def reachable_at(self, listen: str) -> str:
        """Where clients dial a proxy that listens on `listen` (as the server reports it)."""
        return listen

    def canary_address(self, listen: str) -> str:
        """Where the harness itself dials a proxy (its canaries): here, where clients do."""
        return self.reachable_at(listen)

    def metrics(self) -> str:
        """Prometheus text of GET /metrics (the server runs with -proxy-metrics): bytes per proxy and direction."""
        kwargs: dict[str, Any] = {"timeout": self.timeout_s, "headers": {"User-Agent": "chaos-harness"}}
        try:
            response = requests.get(f"{self.api_url}/metrics", **kwargs)
        except requests.RequestException as exc:
            raise ToxiproxyError(f"read metrics: Toxiproxy API {self.api_url} did not answer: {exc}") from None
        if response.status_code != 200:
            raise ToxiproxyError(f"read metrics: Toxiproxy answered {response.status_code} "
                                 "(it serves /metrics only when started with -proxy-metrics)")
        return response.text

    def version(self) -> str:
        return str(self._call("get", "/version", "version"))

    def create_proxy(self, name: str, *, upstream: str, listen: str = "127.0.0.1:0") -> dict[str, Any]:
        return self._call("post", "/proxies", f"create proxy {name} -> {upstream}", name=name, upstream=upstream, listen=listen, enabled=True)

    def delete_proxy(self, name: str) -> None:
        self._call("delete", f"/proxies/{name}", f"delete proxy {name}")

    def set_enabled(self, name: str, enabled: bool) -> None:
        state = self._call("post", f"/proxies/{name}", f"{'enable' if enabled else 'disable'} proxy {name}", enabled=enabled)
        if state is None or state.get("enabled") is not enabled:
            raise ToxiproxyError(f"proxy {name}: asked enabled={enabled}, server says {state}")

    def set_upstream(self, name: str, upstream: str) -> None:
        self._call("post", f"/proxies/{name}", f"point proxy {name} at {upstream}", upstream=upstream)

    def add_toxic(self, proxy: str, *, type: str, name: str, stream: str, toxicity: float, attributes: dict[str, Any]) -> None:
        self._call(
            "post", f"/proxies/{proxy}/toxics", f"add {type} toxic {name!r} to proxy {proxy}",
            name=name, type=type, stream=stream, toxicity=toxicity, attributes=attributes,
        )

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("delete", f"/proxies/{proxy}/toxics/{name}", f"remove toxic {name!r} from proxy {proxy}")

    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        return self._call("get", f"/proxies/{proxy}/toxics", f"list toxics of proxy {proxy}")

    def proxies(self) -> dict[str, Any]:
        return self._call("get", "/proxies", "list proxies")


def _text(raw: Any) -> str:
    return (raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)).strip()[:300]
