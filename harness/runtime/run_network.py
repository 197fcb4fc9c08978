"""A docker run's own network, with the run's Toxiproxy in a container on it.

Takes the place of ``ToxiproxyServer`` when the runtime is docker: start()
sweeps what dead runs left, creates the network ``h-<run id>`` (no NAT to
the outside: services reach each other and nothing else), starts Toxiproxy
on it under the alias ``toxiproxy`` and publishes its API on 127.0.0.1
only. Proxies listen inside the network, on ports handed out here, so
services reach them as ``toxiproxy:<port>``. stop() saves Toxiproxy's log
and removes everything labelled with the run, also containers a failed
deployment left.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from pathlib import Path

from ..errors import SetupError, ToxiproxyError
from ..toxiproxy import ToxiproxyClient, find_server_binary, free_port
from . import engine
from .builds import toxiproxy_image
from .containers import ROLE, remove_run, run_labels, sweep_dead_runs
from .docker_errors import translated
from .images import ensure_base_image

ALIAS = "toxiproxy"
API_PORT = 8474
FIRST_PROXY_PORT = 20000  # below the ephemeral range, so a disabled proxy gets its port back


class NetworkToxiproxy(ToxiproxyClient):
    """A client of the run's Toxiproxy container that also knows the network it serves."""

    def __init__(self, host: str, port: int, *, network: str, alias: str, timeout_s: float = 5.0) -> None:
        super().__init__(host, port, timeout_s=timeout_s)
        self.network, self.alias = network, alias
        self._ports = itertools.count(FIRST_PROXY_PORT)
        self._ports_lock = threading.Lock()

    def next_listen(self) -> str:
        """A listen address for a new proxy, inside the Toxiproxy container."""
        with self._ports_lock:
            return f"0.0.0.0:{next(self._ports)}"


class RunNetwork:
    """The network and Toxiproxy container of one run; a context manager."""

    def __init__(self, *, run_id: str, log_path: Path) -> None:
        self.run_id, self.log_path = run_id, Path(log_path)
        self.network = f"h-{run_id}"
        self.client: NetworkToxiproxy | None = None
        self._docker = None

    def start(self, *, timeout_s: float = 30.0) -> NetworkToxiproxy:
        docker = self._docker = engine.client()
        sweep_dead_runs(docker, keep_run=self.run_id)
        try:
            image = toxiproxy_image(docker, find_server_binary(), base=ensure_base_image(docker, say=_say))
            labels = run_labels(self.run_id)
            with translated(f"create the run's network {self.network}"):
                docker.networks.create(self.network, driver="bridge", labels=labels, check_duplicate=True,
                                       options={"com.docker.network.bridge.enable_ip_masquerade": "false"})
            port = free_port()
            with translated(f"start the run's Toxiproxy container from {image}"):
                docker.containers.run(
                    image, name=f"h-{self.run_id}-toxiproxy", detach=True, labels={**labels, ROLE: "toxiproxy"},
                    network=self.network, ports={f"{API_PORT}/tcp": ("127.0.0.1", port)},
                    networking_config={self.network: docker.api.create_endpoint_config(aliases=[ALIAS])},
                )
            self.client = self._wait(port, timeout_s)
            return self.client
        except BaseException:
            self.stop()
            raise

    def _wait(self, port: int, timeout_s: float) -> NetworkToxiproxy:
        probe = ToxiproxyClient("127.0.0.1", port, timeout_s=1.0)
        deadline, last = time.monotonic() + timeout_s, "no answer yet"
        while time.monotonic() < deadline:
            try:
                probe.version()
                return NetworkToxiproxy("127.0.0.1", port, network=self.network, alias=ALIAS)
            except ToxiproxyError as exc:
                last = str(exc)
            time.sleep(0.05)  # poll
        raise ToxiproxyError(f"the Toxiproxy container of run {self.run_id} did not answer GET /version on "
                             f"127.0.0.1:{port} within {timeout_s:.0f}s (last: {last}). Log:\n{self._log()[-2000:]}")

    def _log(self) -> str:
        from docker.errors import DockerException

        try:
            return self._docker.containers.get(f"h-{self.run_id}-toxiproxy").logs().decode(errors="replace")
        except (DockerException, AttributeError):
            return "(no log)"

    def stop(self) -> None:
        """Saves Toxiproxy's log, removes every container and the network of the run."""
        if self._docker is None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.write_text(self._log())
        remove_run(self._docker, self.run_id)
        self._docker = None

    down = stop  # what the teardown registry calls at exit

    def __enter__(self) -> NetworkToxiproxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _say(text: str) -> None:
    print(f"harness: {text}", file=sys.stderr, flush=True)


def require(toxiproxy: ToxiproxyClient) -> NetworkToxiproxy:
    """The docker runtime needs a Toxiproxy on the run's network, not one on the host."""
    if not isinstance(toxiproxy, NetworkToxiproxy):
        raise SetupError("the docker runtime needs the run's Toxiproxy container (HarnessRun(runtime='docker') "
                         "starts it; in your own code use harness.runtime.run_network.RunNetwork)")
    return toxiproxy
