"""A tiny service for the docker runtime's tests: GET / answers with the
path of services it went through, calling $UPSTREAM_URL (via httpx, so the
image's wheels are exercised) when set. Listens on $BIND_HOST:$PORT."""

from __future__ import annotations

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

NAME = os.environ.get("SERVICE_NAME", "app")
UPSTREAM = os.environ.get("UPSTREAM_URL")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/health":
            return self._send(200, {"ok": True, "service": NAME})
        if not UPSTREAM:
            return self._send(200, {"service": NAME, "path": [NAME]})
        try:
            r = httpx.get(UPSTREAM + "/", timeout=2.0)
            return self._send(200, {"service": NAME, "path": [NAME, *r.json()["path"]]})
        except Exception as exc:
            return self._send(503, {"service": NAME, "error": f"{type(exc).__name__}: {exc}"})

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True


def main() -> None:
    server = Server((os.environ.get("BIND_HOST", "127.0.0.1"), int(os.environ["PORT"])), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"{NAME} listening on {server.server_address}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
