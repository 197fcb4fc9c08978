"""HTTP plumbing the gateway and the backends share (standard library only).

- Every answer is JSON, written with one ``sendall``: a Toxiproxy latency
  toxic delays each chunk, so a separate header write would count it twice.
- The listen backlog is 1024, not socketserver's 5: while a backend is
  paused the kernel keeps completing handshakes into the backlog, and once
  it is full Toxiproxy (which dials its upstream inside its accept loop)
  stalls the whole proxy long after the resume.
- No line per request is logged: the harness records requests itself.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from envconfig import ConfigError

Config = TypeVar("Config")

STATUS_TEXT = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
               405: "Method Not Allowed", 500: "Internal Server Error", 502: "Bad Gateway",
               503: "Service Unavailable", 504: "Gateway Timeout"}


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive; subclasses answer with ``reply``."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else delayed ACKs add 40 ms to keep-alive answers
    service_name = "service"

    def read_body(self) -> bool:
        """Drain a request body so keep-alive stays in step; False (and 400 sent) if unreadable."""
        raw = self.headers.get("Content-Length", "0") or "0"
        if not raw.isdigit() or int(raw) > 1 << 20:
            self.reply(400, {"error": "bad Content-Length"})
            return False
        if int(raw):
            self.rfile.read(int(raw))
        return True

    def reply(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        lines = [f"HTTP/1.1 {status} {STATUS_TEXT.get(status, 'Status')}",
                 "Content-Type: application/json", f"Content-Length: {len(payload)}",
                 *(f"{k}: {v}" for k, v in (headers or {}).items()),
                 f"Connection: {'close' if self.close_connection else 'keep-alive'}"]
        try:
            self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)
        except OSError:
            self.close_connection = True  # the client is gone

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, ...) as JSON too."""
        self.close_connection = True
        self.reply(code, {"error": message or STATUS_TEXT.get(code, "error"), "service": self.service_name})

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def log_error(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"[{self.service_name}] {format % args}\n")


class Server(ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True


def serve(handler: type[Handler], port: int, banner: str, on_stop: Callable[[], None] = lambda: None) -> int:
    """Serve on BIND_HOST (default 127.0.0.1) until SIGTERM/SIGINT: 0, or 1 if it cannot listen."""
    host = os.environ.get("BIND_HOST", "").strip() or "127.0.0.1"
    try:
        server = Server((host, port), handler)
    except OSError as exc:
        print(f"{handler.service_name}: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1

    def stop(_signum: int, _frame: object) -> None:  # shutdown() blocks: not in the serving thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"{banner} on {host}:{port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        on_stop()
    return 0


def run(program: str, load: Callable[[Mapping[str, str]], Config], start: Callable[[Config], int]) -> int:
    """A program's main: its config from the environment (exit 2 naming the
    variable when it is bad), then whatever `start` serves."""
    try:
        config = load(os.environ)
    except ConfigError as exc:
        print(f"{program}: configuration error: {exc}", file=sys.stderr)
        return 2
    return start(config)
