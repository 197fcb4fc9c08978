"""Where a run's Toxiproxy lives: a process on 127.0.0.1, or a container on the
run's own docker network. Both hosts are context managers whose ``start()``
returns the run's client; ``make_toxiproxy`` picks one for a runtime.

The docker host also owns the run's network: ``start()`` sweeps what dead
docker runs left, creates the network ``h-<run id>`` (no NAT to the outside:
services reach each other and nothing else), starts Toxiproxy on it under
the alias ``toxiproxy`` and publishes its API on 127.0.0.1 only. Proxies
listen inside the network on ports handed out here, so services reach them
as ``toxiproxy:<port>``. ``stop()`` saves Toxiproxy's log and removes
everything labelled with the run, also containers a failed deployment left.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Protocol

from ..errors import SetupError, ToxiproxyError
from ..toxiproxy import ToxiproxyClient, find_server_binary
from ..toxiproxy_log import ContainerLog, FileLog
from ..wait import tail_of, wait_until
from .labels import label_env
from .ports import free_port

ALIAS = "toxiproxy"
API_PORT = 8474
FIRST_PROXY_PORT = 20000  # below the ephemeral range, so a disabled proxy gets its port back
RUNTIMES = ("local", "docker")


class ToxiproxyHost(Protocol):
    def start(self) -> ToxiproxyClient: ...
    def stop(self) -> None: ...
    def down(self) -> None: ...


def make_toxiproxy(runtime: str, *, run_id: str, log_path: Path) -> ToxiproxyHost:
    """The Toxiproxy a run of the named runtime needs (not started)."""
    if runtime == "local":
        return LocalToxiproxy(run_id=run_id, log_path=log_path)
    if runtime == "docker":
        return DockerToxiproxy(run_id=run_id, log_path=log_path)
    raise SetupError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")


def _answers(client: ToxiproxyClient) -> bool:
    client.version()
    return True


class LocalToxiproxy:
    """One toxiproxy-server process per run, on 127.0.0.1 and a free API port."""

    def __init__(self, *, run_id: str, log_path: Path, binary: str | None = None) -> None:
        self.run_id, self.log_path = run_id, Path(log_path)
        self.binary = binary or find_server_binary()
        self.process: subprocess.Popen[bytes] | None = None
        self.client: ToxiproxyClient | None = None

    def start(self, *, timeout_s: float = 15.0) -> ToxiproxyClient:
        port = free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "-host", "127.0.0.1", "-port", str(port), "-proxy-metrics"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **label_env(self.run_id)}, start_new_session=True,
            )
        probe = ToxiproxyClient("127.0.0.1", port, timeout_s=2.0)
        try:
            wait_until(lambda: self._alive() and _answers(probe), timeout_s=timeout_s, retry=(ToxiproxyError,),
                       what=f"toxiproxy-server ({self.binary}) answering GET /version on 127.0.0.1:{port}",
                       log_tail=lambda: self.log_path.read_text(errors="replace"), error=ToxiproxyError)
        except BaseException:
            self.stop()
            raise
        self.client = ToxiproxyClient("127.0.0.1", port)
        self.client.log = FileLog(self.log_path)
        return self.client

    def _alive(self) -> bool:
        code = self.process.poll() if self.process else None
        if code is not None:
            raise ToxiproxyError(f"toxiproxy-server ({self.binary}) exited with code {code}. "
                                 f"Log {self.log_path}:\n{tail_of(lambda: self.log_path.read_text(errors='replace'))}")
        return True

    def stop(self) -> None:
        p = self.process
        if p is None or p.poll() is not None:
            return
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=5)

    down = stop  # what the teardown registry calls at exit

    def __enter__(self) -> ToxiproxyClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class NetworkToxiproxy(ToxiproxyClient):
    """A client of the run's Toxiproxy container: proxies listen inside the
    network, on ports handed out here, and clients dial them by the alias."""

    def __init__(self, host: str, port: int, *, network: str, alias: str, timeout_s: float = 5.0) -> None:
        super().__init__(host, port, timeout_s=timeout_s)
        self.network, self.alias = network, alias
        self.address = ""  # the container's IP on the network, for the harness's canaries
        self._ports = itertools.count(FIRST_PROXY_PORT)
        self._ports_lock = threading.Lock()

    def new_listen(self) -> str:
        with self._ports_lock:
            return f"0.0.0.0:{next(self._ports)}"

    def reachable_at(self, listen: str) -> str:
        return f"{self.alias}:{listen.rsplit(':', 1)[1]}"

    def canary_address(self, listen: str) -> str:
        """The host dials a proxy at the container's address on the run's network."""
        if not self.address:
            raise ToxiproxyError(f"the Toxiproxy container's address on {self.network} is not known")
        return f"{self.address}:{listen.rsplit(':', 1)[1]}"


class DockerToxiproxy:
    """The network and Toxiproxy container of one docker run."""

    def __init__(self, *, run_id: str, log_path: Path) -> None:
        self.run_id, self.log_path = run_id, Path(log_path)
        self.network = f"h-{run_id}"
        self.client: NetworkToxiproxy | None = None
        self._docker = None

    def start(self, *, timeout_s: float = 30.0) -> NetworkToxiproxy:
        from .docker import engine
        from .docker.builds import toxiproxy_image
        from .docker.errors import translated
        from .docker.images import ensure_base_image
        from .docker.run_labels import ROLE, run_labels, sweep_dead_containers

        docker = self._docker = engine.client()
        sweep_dead_containers(docker, keep_run=self.run_id)
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
            probe = ToxiproxyClient("127.0.0.1", port, timeout_s=1.0)
            wait_until(lambda: _answers(probe), timeout_s=timeout_s, retry=(ToxiproxyError,), error=ToxiproxyError,
                       what=f"the Toxiproxy container of run {self.run_id} answering GET /version on 127.0.0.1:{port}",
                       log_tail=self._log)
            self.client = NetworkToxiproxy("127.0.0.1", port, network=self.network, alias=ALIAS)
            self.client.address, self.client.netns_pid = self._address()
            self.client.log = ContainerLog(docker, f"h-{self.run_id}-toxiproxy")
            return self.client
        except BaseException:
            self.stop()
            raise

    def _address(self) -> tuple[str, int]:
        """The container's IP on the run's network and its process (whose network namespace
        the harness reads the proxies' sockets in)."""
        from .docker.errors import translated

        with translated(f"inspect the Toxiproxy container of run {self.run_id}"):
            attrs = self._docker.containers.get(f"h-{self.run_id}-toxiproxy").attrs
        return attrs["NetworkSettings"]["Networks"][self.network]["IPAddress"], int(attrs["State"]["Pid"])

    def _log(self) -> str:
        from docker.errors import DockerException

        try:
            return self._docker.containers.get(f"h-{self.run_id}-toxiproxy").logs().decode(errors="replace")
        except (DockerException, AttributeError):
            return "(no log)"

    def stop(self) -> None:
        """Saves Toxiproxy's log, removes every container and the network of the run."""
        from .docker.run_labels import remove_run

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


def network_of(toxiproxy: ToxiproxyClient) -> str:
    """The docker runtime needs a Toxiproxy on the run's network, not one on the host."""
    if not isinstance(toxiproxy, NetworkToxiproxy):
        raise SetupError("the docker runtime needs the run's Toxiproxy container (HarnessRun(runtime='docker') "
                         "starts it; in your own code use harness.runtime.toxiproxy_hosts.DockerToxiproxy)")
    return toxiproxy.network
