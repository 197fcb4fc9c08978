"""The RabbitMQ broker of the messaging target: one node with its own epmd, all state in DATA_DIR.

Run as ``python targets/messaging/rabbitmq_broker.py`` (env: README.md).
RabbitMQ is an Erlang node, and an Erlang node registers with epmd, the
port mapper, which the stock scripts start as a daemon on port 4369 shared
by every node on the machine. A daemon would outlive the run (a leaked
process) and a shared one would tie runs together, so this wrapper starts
its own epmd in the foreground on a free loopback port, then the node
(``rabbitmq-server``, which ``exec``s the Erlang VM) pointed at it, and
stays their parent: it forwards SIGTERM and SIGINT, and when either child
ends it ends the other. The runtime signals the whole process tree, so
SIGKILL, SIGSTOP and SIGCONT from the harness reach the VM and epmd too.

Everything the node writes lives in DATA_DIR, which outlives restarts: the
queue and its persistent messages (``mnesia/``), the generated config and
the Erlang cookie (HOME is DATA_DIR). No plugins, no management port: one
AMQP listener on BIND_HOST:PORT, so the runtime's proxies are the only way in.
ERL_SCHEDULERS, when set, caps the VM's scheduler threads: a node booting
on every core of a small machine starves the producer beside it, which
then shows up as the pattern's latency (rabbitmq.toml sets 1). NICE lowers
the node's CPU priority for the same reason: its boot after a crash is
seconds of CPU, and on a shared machine (CI runs experiments side by side)
the producer it serves must not wait for it (rabbitmq.toml sets 10; a real
broker has a host of its own).

The server comes from Debian's ``rabbitmq-server`` package (``make setup``
installs it): ``/usr/lib/rabbitmq/bin/rabbitmq-server`` runs the node as the
calling user (``/usr/sbin/rabbitmq-server`` would switch to the rabbitmq
user, who cannot write DATA_DIR), unless RABBITMQ_SERVER_BIN names another.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping

from targetkit.envconfig import ConfigError
from targetkit.program import run

from config import BrokerConfig, load_broker

INSTALL_HINT = ("install RabbitMQ (Debian: apt-get install rabbitmq-server, or `make setup`), "
                "or set RABBITMQ_SERVER_BIN to its rabbitmq-server script")
SERVER_CANDIDATES = ("/usr/lib/rabbitmq/bin/rabbitmq-server",)
EPMD_CANDIDATES = ("/usr/lib/erlang/bin/epmd",)
EPMD_READY_S = 10.0
STOP_GRACE_S = 15.0  # a node asked to stop flushes its queues; the runtime kills the tree after its own grace


def find_binary(explicit: str, candidates: tuple[str, ...], name: str, hint: str) -> str:
    """explicit, else the first executable candidate, else PATH."""
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise ConfigError(f"{explicit!r} is not an executable file; {hint}")
        return explicit
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return found
    raise ConfigError(f"{name} not found (looked at {', '.join(candidates)} and on PATH); {hint}")


def free_port() -> int:
    """A loopback port nobody holds now, for epmd and the node's distribution listener."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_config(config: BrokerConfig) -> str:
    """rabbitmq.conf: one AMQP listener, guest allowed from the run's network, logs to the console.

    ``loopback_users = none`` lets the default guest user in from another
    container (docker runtime); on the local runtime only 127.0.0.1 reaches
    the listener anyway. A low disk limit keeps a nearly full disk from
    blocking publishers, which would look like a broker outage.
    """
    return "\n".join([
        f"listeners.tcp.1 = {config.host}:{config.port}",
        "loopback_users = none",
        "disk_free_limit.absolute = 10MB",
        "log.console = true",
        "log.console.level = info",
        "log.file = false",
        "heartbeat = 5",
        "",
    ])


def node_env(config: BrokerConfig, *, epmd_port: int, dist_port: int) -> dict[str, str]:
    data = config.data_dir
    (data / "rabbitmq.conf").write_text(node_config(config), encoding="utf-8")
    (data / "enabled_plugins").write_text("[].\n", encoding="utf-8")
    return {
        **os.environ,
        "HOME": str(data),
        "ERL_EPMD_PORT": str(epmd_port),
        "RABBITMQ_NODENAME": f"{config.name}@localhost",
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_MNESIA_BASE": str(data / "mnesia"),
        "RABBITMQ_LOG_BASE": str(data / "log"),
        "RABBITMQ_LOGS": "-",
        "RABBITMQ_CONFIG_FILE": str(data / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(data / "advanced.config"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(data / "enabled_plugins"),
        "RABBITMQ_CONF_ENV_FILE": str(data / "rabbitmq-env.conf"),  # absent: /etc's must not apply
        "RABBITMQ_PID_FILE": str(data / "rabbitmq.pid"),
        # Distribution only on loopback: nothing but this node's own tools may talk to it.
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": " ".join(
            ["-kernel inet_dist_use_interface {127,0,0,1}",
             *([f"+S {config.schedulers}:{config.schedulers}"] if config.schedulers else [])]),
    }


def wait_listening(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    """Poll until the port accepts, or fail naming what did not come up."""
    deadline = time.monotonic() + EPMD_READY_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"{what} exited with status {proc.returncode} before listening on 127.0.0.1:{port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise ConfigError(f"{what} did not listen on 127.0.0.1:{port} within {EPMD_READY_S:g} s")


def supervise(node: subprocess.Popen[bytes], epmd: subprocess.Popen[bytes]) -> int:
    """Forward SIGTERM/SIGINT to the node; when either child ends, end the other; return the node's status."""
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if node.poll() is None:
            node.send_signal(signal.SIGTERM)  # the Erlang VM stops cleanly on SIGTERM

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while node.poll() is None and epmd.poll() is None:
        try:
            node.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
    if node.poll() is None:  # epmd died under a live node: a broken broker, say so by ending
        print(f"rabbitmq broker: epmd exited ({epmd.returncode}); stopping the node", file=sys.stderr, flush=True)
        node.send_signal(signal.SIGTERM)
    try:
        node.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        node.kill()
        node.wait()
    if epmd.poll() is None:
        epmd.terminate()
        epmd.wait()
    return 0 if stopping else (node.returncode or 1)


def load(env: Mapping[str, str]) -> tuple[BrokerConfig, str, str]:
    """The contract, and the node's and epmd's binaries it names (or the usual places have)."""
    config = load_broker(env, bin_key="RABBITMQ_SERVER_BIN")
    server = find_binary(config.server_bin, SERVER_CANDIDATES, "rabbitmq-server", INSTALL_HINT)
    epmd_bin = find_binary(env.get("EPMD_BIN", "").strip(), EPMD_CANDIDATES, "epmd",
                           "install Erlang (Debian: apt-get install erlang-base, a dependency of rabbitmq-server)")
    return config, server, epmd_bin


def start(setup: tuple[BrokerConfig, str, str]) -> int:
    config, server, epmd_bin = setup
    epmd_port, dist_port = free_port(), free_port()
    env = node_env(config, epmd_port=epmd_port, dist_port=dist_port)
    epmd = subprocess.Popen([epmd_bin, "-port", str(epmd_port), "-address", "127.0.0.1"], env=env)
    try:
        wait_listening(epmd_port, epmd, f"epmd ({epmd_bin})")
    except ConfigError as exc:
        epmd.kill()
        epmd.wait()
        print(f"rabbitmq broker: {exc}", file=sys.stderr)
        return 2
    print(f"rabbitmq broker {config.name}: {server} on {config.host}:{config.port} "
          f"(epmd 127.0.0.1:{epmd_port}, data {config.data_dir})", file=sys.stderr, flush=True)
    node = subprocess.Popen([server], env=env, preexec_fn=(lambda: os.nice(config.nice)) if config.nice else None)
    return supervise(node, epmd)


if __name__ == "__main__":
    sys.exit(run("rabbitmq broker", load, start))
