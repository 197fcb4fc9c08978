"""HTTP plumbing of producer and consumer: JSON answers, the listening server, the run loop.

The standard library's ThreadingHTTPServer, not aiohttp: one thread per
connection lets a request wait for the asyncio loop (where the NATS client
lives) with a hard ``Future.result(timeout)``, so the bound on a client's
wait holds even when the loop is busy or the NATS client is stuck
reconnecting; and it keeps the target free of another dependency that the
Docker images would have to carry.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found",
           405: "Method Not Allowed", 500: "Internal Server Error", 503: "Service Unavailable"}


class JsonHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive; every answer is JSON, written in one socket write.

    One write, because a Toxiproxy latency toxic delays every chunk: a header
    write and a body write would count the injected latency twice.
    """

    protocol_version = "HTTP/1.1"
    service_name = "?"  # set on the subclass by main()

    def read_body(self) -> bytes | None:
        """The request body (b"" if none); None after answering 400 to a bad length."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "bad Content-Length")
            return None
        return self.rfile.read(length) if length > 0 else b""

    def since_ns(self, query: str) -> int | None:
        """The ``since_ns`` query parameter (0 if absent); None after answering 400."""
        raw = parse_qs(query).get("since_ns", ["0"])[0]
        try:
            return int(raw)
        except ValueError:
            self.send_json(400, {"error": "since_ns must be an integer", "service": self.service_name})
            return None

    def send_json(self, status: int, body: dict[str, Any]) -> None:
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

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Replace http.server's HTML error page: errors are JSON too."""
        self.close_connection = True
        self.send_json(code, {"error": message or REASONS.get(code, "error"),
                              "service": self.service_name, "status": code})

    def not_found(self, path: str) -> None:
        self.send_json(404, {"error": "not found", "service": self.service_name, "path": path})

    def log_message(self, format: str, *args: Any) -> None:
        """No line per request: the harness records requests itself."""

    def log_error(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"[{self.service_name}] error: {format % args}\n")


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer with a listen backlog of 1024 instead of socketserver's 5.

    While a service is paused (SIGSTOP) the kernel keeps completing
    handshakes into the backlog; once it is full, connects hang in SYN
    retries and Toxiproxy, which dials upstream from its accept loop,
    stalls the whole proxy long after the resume.
    """

    request_queue_size = 1024
    daemon_threads = True


def serve(handler: type[JsonHandler], host: str, port: int, banner: str,
          on_stop: Callable[[], None] = lambda: None) -> int:
    """Listen on host:port (127.0.0.1 unless BIND_HOST says otherwise) until SIGTERM/SIGINT;
    exit status 0, or 1 if it cannot listen."""
    name = handler.service_name
    try:
        server = Server((host, port), handler)
    except OSError as exc:
        print(f"{name}: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1

    def stop(signum: int, _frame: object) -> None:
        # shutdown() waits for serve_forever, so it cannot run in the serving thread.
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
