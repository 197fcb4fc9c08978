"""HTTP for the bulkhead app: GET only, JSON always, one socket write per response.

One write matters because a Toxiproxy latency toxic delays every chunk: a
separate header and body write would count the injected latency twice.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           500: "Internal Server Error", 503: "Service Unavailable", 504: "Gateway Timeout"}


class Router(Protocol):
    def route(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]: ...


class JsonHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive; the answer comes from `router` (set on the class by main())."""

    protocol_version = "HTTP/1.1"
    server_version = "bulkhead-app"
    router: Router

    def do_GET(self) -> None:
        if not self._drain_body():
            return
        url = urlsplit(self.path)
        try:
            status, body = self.router.route(url.path, parse_qs(url.query))
        except Exception as exc:  # a bug here must still answer JSON
            self.log_error("route failed: %r", exc)
            status, body = 500, {"error": "internal", "detail": f"{type(exc).__name__}: {exc}"[:200]}
        self._send(status, body)

    do_POST = do_GET  # the fault switch (/admin/slow_reports) is a POST; routes ignore the method

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Replace http.server's HTML error page: errors are always JSON."""
        self.close_connection = True
        self._send(code, {"error": message or REASONS.get(code, "error"), "status": code})

    def _drain_body(self) -> bool:
        """Read and drop a request body, so the next keep-alive request parses."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "bad Content-Length")
            return False
        if length > 0:
            self.rfile.read(length)
        return True

    def _send(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        reason = REASONS.get(status) or self.responses.get(status, ("",))[0]
        head = (f"HTTP/1.1 {status} {reason}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n"
                f"Connection: {'close' if self.close_connection else 'keep-alive'}\r\n\r\n")
        try:
            self.wfile.write(head.encode("latin-1") + payload)
        except OSError:
            self.close_connection = True  # the client left; nothing to tell it

    def log_message(self, format: str, *args: Any) -> None:
        """No per-request lines: the harness records requests itself."""

    def log_error(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"[bulkhead app] error: {format % args}\n")


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer with a real listen backlog and threads that never block exit.

    socketserver's default backlog is 5: while this process is paused, the
    kernel completes handshakes into the backlog until it is full, then new
    connects hang in SYN retries, and Toxiproxy (v2.12) dials its upstream
    inside its accept loop, so one hung dial stalls the whole proxy.
    """

    request_queue_size = 1024
    daemon_threads = True
