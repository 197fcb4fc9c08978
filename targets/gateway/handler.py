"""The HTTP both gateway programs speak: the kit's JSON handler, with what
the gateway's clients have always seen (compact JSON, Nagle off, a strict
Content-Length and since_ns, error pages that name the service)."""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import parse_qs

from targetkit.serving import JsonHandler

MAX_BODY_BYTES = 1 << 20


class Handler(JsonHandler):
    """HTTP/1.1 keep-alive; subclasses answer with ``send_json``."""

    disable_nagle_algorithm = True  # else delayed ACKs add 40 ms to keep-alive answers
    service_name = "service"
    compact_json = True
    unknown_reason = "Status"
    error_fields = ("error", "service")

    def drain_body(self) -> bool:
        """Drain a request body so keep-alive stays in step; False (and 400 sent) if unreadable."""
        raw = self.headers.get("Content-Length", "0") or "0"
        if not raw.isdigit() or int(raw) > MAX_BODY_BYTES:
            self.send_json(400, {"error": "bad Content-Length"})
            return False
        if int(raw):
            self.rfile.read(int(raw))
        return True

    def since_ns(self, query: str) -> int | None:
        """The ``since_ns`` query parameter (0 if absent), digits with an optional '-'; None after a 400."""
        raw = parse_qs(query).get("since_ns", ["0"])[0]
        if not raw.lstrip("-").isdigit():
            self.send_json(400, {"error": "since_ns must be an integer", "service": self.service_name})
            return None
        return int(raw)

    def log_error(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"[{self.service_name}] {format % args}\n")
