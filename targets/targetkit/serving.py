"""JSON over HTTP for the reference targets: a handler base, the server, the serve loop.

- Every answer is JSON and goes out in ONE socket write: a Toxiproxy latency
  toxic delays every chunk, so a header write and a body write would count
  the injected latency twice.
- The listen backlog is 1024, not socketserver's 5 (see ``Server``).
- No line per request is logged: the harness records requests itself.

What differs between targets (JSON spacing, the fields of an error page, the
status text of an unusual code) is a class attribute, so each target keeps
what its clients have always seen.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

# Status texts of the codes the targets answer; another code gets http.server's own.
REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}


class JsonHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive; every answer is JSON (``send_json``), errors too.

    Class attributes a target may set: ``service_name`` (set by its main),
    ``compact_json`` (no spaces in the JSON), ``unknown_reason`` (the status
    text of a code not in REASONS; None: http.server's), ``error_fields`` (what
    an error page holds, of "error", "service", "status").
    """

    protocol_version = "HTTP/1.1"
    service_name = "?"
    compact_json = False
    unknown_reason: str | None = None
    error_fields: tuple[str, ...] = ("error", "service", "status")

    def send_json(self, status: int, body: Mapping[str, Any] | bytes,
                  headers: Mapping[str, str] | None = None) -> None:
        """Answer with a dict (encoded here) or bytes that already are JSON, in one write."""
        payload = body if isinstance(body, bytes) else self.encode(body)
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (f"HTTP/1.1 {status} {self.reason(status)}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n{extra}"
                f"Connection: {self.connection_header()}\r\n\r\n")
        try:
            self.wfile.write(head.encode("latin-1") + payload)
        except OSError:
            self.close_connection = True  # the client left; nothing to tell it

    def connection_header(self) -> str:
        """The Connection header: close when this answer ends the connection."""
        return "close" if self.close_connection else "keep-alive"

    def encode(self, body: Mapping[str, Any]) -> bytes:
        separators = (",", ":") if self.compact_json else None
        return json.dumps(body, separators=separators).encode()

    def reason(self, status: int) -> str:
        if status in REASONS:
            return REASONS[status]
        if self.unknown_reason is not None:
            return self.unknown_reason
        return self.responses.get(status, ("",))[0]

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Replace http.server's HTML error page: errors are JSON too."""
        self.close_connection = True
        page = {"error": message or REASONS.get(code, "error"), "service": self.service_name, "status": code}
        self.send_json(code, {k: page[k] for k in self.error_fields})

    def read_body(self) -> bytes | None:
        """The request body (b"" if none); None after answering 400 to a bad Content-Length."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "bad Content-Length")
            return None
        return self.rfile.read(length) if length > 0 else b""

    def drain_body(self) -> bool:
        """Read and drop a request body, so the next keep-alive request parses; False after a 400."""
        return self.read_body() is not None

    def since_ns(self, query: str) -> int | None:
        """The ``since_ns`` query parameter (0 if absent); None after answering 400."""
        raw = parse_qs(query).get("since_ns", ["0"])[0]
        try:
            return int(raw)
        except ValueError:
            self.send_json(400, {"error": "since_ns must be an integer", "service": self.service_name})
            return None

    def not_found(self, path: str) -> None:
        self.send_json(404, {"error": "not found", "service": self.service_name, "path": path})

    def log_message(self, format: str, *args: Any) -> None:
        """No line per request: the harness records requests itself."""

    def log_error(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"[{self.service_name}] error: {format % args}\n")


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer with a real listen backlog, and threads that never hold up exit.

    socketserver's default backlog is 5. While a process is paused (SIGSTOP)
    the kernel still completes handshakes into the backlog; once that is full,
    new connects hang in SYN retries, and Toxiproxy (v2.12), which dials its
    upstream inside its accept loop without a timeout, stalls the whole proxy
    until a retry gets through, tens of seconds after the resume. Real servers
    listen with hundreds to thousands (nginx 511, gunicorn 2048).
    """

    request_queue_size = 1024
    daemon_threads = True


def bind_host() -> str:
    """BIND_HOST, default 127.0.0.1: the docker runtime sets 0.0.0.0 inside a container."""
    return os.environ.get("BIND_HOST", "").strip() or "127.0.0.1"


def _nothing() -> None:
    pass


def serve(handler: type[BaseHTTPRequestHandler], port: int, banner: str | Callable[[str], str], *,
          host: str | None = None, name: str | None = None,
          on_start: Callable[[], None] = _nothing,
          on_signal: Callable[[Server], None] = Server.shutdown,
          on_stop: Callable[[], None] = _nothing, says_stopped: bool = True) -> int:
    """Listen on host (default ``bind_host()``) and port until SIGTERM/SIGINT.

    Returns the exit status: 0, or 1 if it cannot listen. ``banner`` is
    printed with " on host:port" after it (a callable gets "host:port" and
    says where). The first signal runs ``on_signal(server)`` in a thread of
    its own (by default ``shutdown()``, which waits for the serving loop and
    so cannot run in it); ``on_start`` runs once listening, ``on_stop`` once
    the server is closed. ``name`` (default the handler's ``service_name``)
    starts the lines "cannot listen" and "stopped".
    """
    name = name or getattr(handler, "service_name", "service")
    host = host or bind_host()
    try:
        server = Server((host, port), handler)
    except OSError as exc:
        print(f"{name}: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    signalled = threading.Event()

    def stop(_signum: int, _frame: object) -> None:
        if not signalled.is_set():
            signalled.set()
            threading.Thread(target=on_signal, args=(server,), daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    on_start()
    at = f"{host}:{port}"
    print(banner(at) if callable(banner) else f"{banner} on {at}", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        on_stop()
    if says_stopped:
        print(f"{name}: stopped", file=sys.stderr, flush=True)
    return 0
