"""The harness's own connection through a proxy, or to a port: what happened to it.

A canary opens one TCP connection, sends a few bytes the server's protocol
answers before any application code runs (a malformed HTTP request line
gets a 400 from the server's framework, PostgreSQL answers an SSLRequest
with one byte, RabbitMQ answers any bytes with its protocol header, NATS
greets unasked), and records the outcome: the first byte and when it
came, a reset, a close with no data, a refusal, or silence. A canary never
reaches a request handler, so it adds no arrival a check would count.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Literal

Outcome = Literal["reply", "reset", "closed", "refused", "stalled", "unreachable"]

# What each protocol is sent; b"" waits for a greeting.
PAYLOADS: dict[str, bytes] = {
    "http": b"HARNESS-CANARY\r\n\r\n",
    "postgres": bytes.fromhex("0000000804d2162f"),  # SSLRequest: answered 'S' or 'N'
    "amqp": b"HARNESS-CANARY\r\n",  # answered with "AMQP" 0 0 9 1, then closed
    "nats": b"",  # the server sends INFO first
    "tcp": b"",  # no reply expected: a live server leaves the connection open (stalled)
}
PROTOCOLS = tuple(PAYLOADS)


@dataclass(frozen=True)
class CanaryResult:
    """One canary: its outcome, ms from sending to that outcome, and bytes it sent."""

    outcome: Outcome
    elapsed_ms: float
    sent_bytes: int
    detail: str = ""

    def to_json(self) -> dict[str, object]:
        return {"outcome": self.outcome, "elapsed_ms": round(self.elapsed_ms, 1), "sent_bytes": self.sent_bytes,
                **({"detail": self.detail} if self.detail else {})}


def send_canary(address: str, protocol: str = "http", *, stall_s: float = 1.0, connect_s: float = 2.0) -> CanaryResult:
    """Dials address (host:port), sends the protocol's bytes, waits up to stall_s for the first byte."""
    payload = PAYLOADS[protocol]
    host, port = address.rsplit(":", 1)
    started = time.monotonic()

    def result(outcome: Outcome, sent: int, detail: str = "") -> CanaryResult:
        return CanaryResult(outcome, (time.monotonic() - started) * 1000, sent, detail)

    try:
        sock = socket.create_connection((host, int(port)), timeout=connect_s)
    except ConnectionRefusedError:
        return result("refused", 0)
    except OSError as exc:  # no route, a connect that never completes
        return result("unreachable", 0, f"{type(exc).__name__}: {exc}")
    with sock:
        sent = 0
        started = time.monotonic()  # from the send: the connect is not the path under test
        try:
            if payload:
                sock.sendall(payload)
                sent = len(payload)
            sock.settimeout(stall_s)
            first = sock.recv(1)
        except socket.timeout:
            return result("stalled", sent)
        except ConnectionResetError:
            return result("reset", sent)
        except OSError as exc:
            return result("reset", sent, f"{type(exc).__name__}: {exc}")
        return result("reply" if first else "closed", sent)
