"""Bytes on the open connections to a proxy's listener, from the kernel (``ss -ti``).

Toxiproxy v2.12 adds a connection's bytes to its metrics only when the
connection closes, so a client on one long-lived connection (a NATS or
PostgreSQL client, an HTTP keep-alive pool) shows nothing there while it
works. The kernel's ``tcp_info`` of each established socket on the proxy's
listening port says how many bytes the proxy received on it so far. For a
Toxiproxy container, ``ss`` runs in the container's network namespace
(``nsenter -t <pid> -n``).
"""

from __future__ import annotations

import re
import shutil
import subprocess

_BYTES = re.compile(r"\bbytes_received:(\d+)")


def open_connections(ports: list[int], *, netns_pid: int | None = None) -> dict[tuple[str, str], int]:
    """(proxy side, client side) -> bytes received from the client, for every established
    connection whose local port is one of `ports`."""
    if not ports:
        return {}
    ss = shutil.which("ss")
    if ss is None:
        raise RuntimeError("ss (Debian package iproute2) is missing; run `make setup`")
    filt = "( " + " or ".join(f"sport = :{p}" for p in ports) + " )"
    command = [ss, "-tinH", "state", "established", filt]
    if netns_pid is not None:
        nsenter = shutil.which("nsenter")
        if nsenter is None:
            raise RuntimeError("nsenter (Debian package util-linux) is missing; run `make setup`")
        command = [nsenter, "-t", str(netns_pid), "-n", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[:300]}")
    return parse_ss(done.stdout)


def parse_ss(text: str) -> dict[tuple[str, str], int]:
    """Reads `ss -tinH` output: a socket line (queues, local, peer) then its info line."""
    found: dict[tuple[str, str], int] = {}
    key: tuple[str, str] | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            fields = line.split()
            key = (fields[-2], fields[-1]) if len(fields) >= 4 else None
            if key is not None:
                found[key] = 0
            continue
        m = _BYTES.search(line)
        if key is not None and m:
            found[key] = int(m.group(1))
    return found
