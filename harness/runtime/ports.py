"""Ports on 127.0.0.1 for the services and servers a run starts."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port the kernel says is free on 127.0.0.1 now (not reserved: bind it soon)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
