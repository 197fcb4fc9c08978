"""The registry: one etcd node (Debian's etcd-server), exec'd in place.

It keeps its data in DATA_DIR, so a killed node restarts with the members
and leases it had (etcd then extends every lease by its TTL, so instances
whose heartbeats resume keep their entries). The peer port, needed even by
a single node, is picked once and kept in DATA_DIR: a restarted node must
find its peer address unchanged. ``exec`` makes etcd the process the
runtime signals: a SIGKILL reaches it, not a wrapper.

Environment: PORT, BIND_HOST, DATA_DIR, ETCD_BIN (default: etcd on PATH).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path


def peer_port(data_dir: Path, bind: str) -> int:
    kept = data_dir / "peer-port"
    if kept.exists():
        return int(kept.read_text())
    with socket.socket() as s:
        s.bind((bind if bind != "0.0.0.0" else "127.0.0.1", 0))
        chosen = s.getsockname()[1]
    kept.write_text(str(chosen))
    return chosen


def main() -> int:
    port = os.environ.get("PORT", "").strip()
    data = os.environ.get("DATA_DIR", "").strip()
    if not port.isdigit() or not data:
        sys.exit("registry: configuration error: PORT and DATA_DIR are required")
    binary = os.environ.get("ETCD_BIN", "").strip() or shutil.which("etcd")
    if not binary:
        sys.exit("registry: etcd not found; install Debian's etcd-server (make setup does) or set ETCD_BIN")
    if not os.access(binary, os.X_OK):
        sys.exit(f"registry: etcd not found at ETCD_BIN={binary!r} (not an executable file); fix ETCD_BIN or unset it")
    bind = os.environ.get("BIND_HOST", "").strip() or "127.0.0.1"
    advertise = "127.0.0.1" if bind in ("127.0.0.1", "0.0.0.0") else bind
    data_dir = Path(data)
    data_dir.mkdir(parents=True, exist_ok=True)
    peer = f"http://127.0.0.1:{peer_port(data_dir, bind)}"
    args = [binary, "--name", "registry", "--data-dir", str(data_dir / "etcd"),
            "--listen-client-urls", f"http://{bind}:{port}", "--advertise-client-urls", f"http://{advertise}:{port}",
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"registry={peer}", "--initial-cluster-state", "new",
            "--heartbeat-interval", "100", "--election-timeout", "500", "--log-level", "warn"]
    print("registry: " + " ".join(args), file=sys.stderr, flush=True)
    os.execv(binary, args)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
