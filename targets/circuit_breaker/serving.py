"""The HTTP plumbing front and dep share: JSON answers, the server, the run loop."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


class JsonHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive; every answer is JSON and goes out in one socket write.

    One write because a Toxiproxy latency toxic delays every chunk: a header
    write and a body write would count the injected latency twice.
    """

    protocol_version = "HTTP/1.1"
    service_name = "?"  # set on the subclass by main()

    def drain_body(self) -> bool:
        """Read and drop a request body, so the next keep-alive request parses."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "bad Content-Length")
            return False
        if length > 0:
            self.rfile.read(length)
        return True

    def send_json(self, status: int, body: dict[str, Any] | bytes,
                  headers: dict[str, str] | None = None) -> None:
        """Answer with a dict (encoded here) or bytes that already are JSON."""
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        reason = REASONS.get(status) or self.responses.get(status, ("",))[0]
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (f"HTTP/1.1 {status} {reason}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n{extra}"
                f"Connection: {'close' if self.close_connection else 'keep-alive'}\r\n\r\n")
        try:
            self.wfile.write(head.encode("latin-1") + payload)
        except OSError:
            self.close_connection = True  # the client left; nothing to tell it

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Replace http.server's HTML error page: errors are always JSON."""
        self.close_connection = True
        self.send_json(code, {"error": message or REASONS.get(code, "error"),
                              "service": self.service_name, "status": code})

    def log_message(self, format: str, *args: Any) -> None:
        """No per-request lines: the harness records requests itself."""

    def log_error(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"[{self.service_name}] error: {format % args}\n")


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer with a real listen backlog.

    socketserver's default backlog is 5. While a process is paused (SIGSTOP)
    the kernel still completes handshakes into the backlog; once that is full,
    new connects hang in SYN retries, and Toxiproxy, which dials its upstream
    inside its accept loop, stalls the whole proxy until a retry gets through,
    long after the resume. Real servers listen with hundreds to thousands.
    """

    request_queue_size = 1024
    daemon_threads = True


def serve(handler: type[JsonHandler], port: int, banner: str,
          on_stop: Callable[[], None] = lambda: None) -> int:
    """Listen on BIND_HOST (default 127.0.0.1; the docker runtime sets 0.0.0.0
    inside a container) and port until SIGTERM/SIGINT; exit status 0, or 1
    if it cannot listen."""
    name = handler.service_name
    host = os.environ.get("BIND_HOST", "127.0.0.1")
    try:
        server = Server((host, port), handler)
    except OSError as exc:
        print(f"{name}: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1

    def stop(signum: int, _frame: object) -> None:
        # shutdown() waits for serve_forever, so it cannot run in this (the serving) thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"{banner} on {host}:{port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        on_stop()
    print(f"{name}: stopped", file=sys.stderr, flush=True)
    return 0
