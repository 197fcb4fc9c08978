"""A tiny JSON HTTP server in the test process: the stand-in dependency,
admin endpoint or load target that a test talks to.

A thread, not a process, so unit tests may use it. ``answer(request)``
returns (status, body) or (status, body, headers); a dict or list body is
sent as JSON, bytes as they are. Every request is kept in ``requests``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Union
from urllib.parse import parse_qs, urlsplit

Answer = Union[tuple[int, Any], tuple[int, Any, Mapping[str, str]]]


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with the query, as sent
    headers: Mapping[str, str]  # http.server's: names in any case
    body: bytes

    @property
    def route(self) -> str:
        return urlsplit(self.path).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query)

    def since_ns(self) -> int:
        return int(self.query.get("since_ns", ["0"])[0])


@dataclass
class JsonServer:
    """Serves answer(request) on 127.0.0.1 (a port the kernel picks) until closed."""

    answer: Callable[[Request], Answer]
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True, name="json-server")
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> JsonServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _handler_for(server: JsonServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like a real service
        disable_nagle_algorithm = True  # else delayed ACKs add 40 ms per keep-alive answer

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            request = Request(self.command, self.path, self.headers, body)
            server.requests.append(request)
            status, payload, *rest = server.answer(request)
            raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            for key, value in {"Content-Type": "application/json", **(rest[0] if rest else {})}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
