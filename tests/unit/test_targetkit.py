"""The target kit (targets/targetkit) in this process: the environment readers'
messages, the main wrapper, and the JSON handler's answers on a real socket."""

from __future__ import annotations

import importlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from harness.runtime import kit


@pytest.fixture
def targetkit(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The kit, imported as a service imports it (its folder on the path)."""
    monkeypatch.syspath_prepend(str(kit.PACKAGE.parent))
    return importlib.import_module("targetkit")


@pytest.fixture
def envconfig(targetkit: ModuleType) -> ModuleType:
    return importlib.import_module("targetkit.envconfig")


@pytest.mark.parametrize("call, message", [
    (lambda e: e.integer({}, "PORT", None, minimum=1), "PORT is required"),
    (lambda e: e.integer({"N": "x"}, "N", 1, minimum=1), "N must be an integer, got 'x'"),
    (lambda e: e.integer({"N": "0"}, "N", 1, minimum=1), "N must be >= 1, got 0"),
    (lambda e: e.integer({"N": "9"}, "N", 1, minimum=1, maximum=5), "N must be between 1 and 5, got 9"),
    (lambda e: e.port({"PORT": "70000"}), "PORT must be between 1 and 65535, got 70000"),
    (lambda e: e.number({"T": "soon"}, "T", 1.0, minimum=0), "T must be a number, got 'soon'"),
    (lambda e: e.number({"T": "1.5"}, "T", 1, minimum=0, whole=True), "T must be an integer, got '1.5'"),
    (lambda e: e.number({"T": "inf"}, "T", 1.0, minimum=0), "T must be >= 0, got 'inf'"),
    (lambda e: e.seconds({"S": "x"}, "S", 1.0), "S must be a number of seconds, got 'x'"),
    (lambda e: e.seconds({"S": "0"}, "S", 1.0), "S must be a positive number of seconds, got '0'"),
    (lambda e: e.text({}, "NAME", hint="a, b or c"), "NAME is required (a, b or c)"),
    (lambda e: e.name({"Q": "a b"}, "Q"), "Q must be letters, digits, '-' or '_', got 'a b'"),
    (lambda e: e.variant({"VARIANT": "bogus"}, ("correct", "broken")),
     "unknown VARIANT 'bogus'; expected one of correct, broken"),
    (lambda e: e.url({}, "DEP_URL"), "DEP_URL is required"),
    (lambda e: e.url({"DEP_URL": "https://x"}, "DEP_URL"), "DEP_URL must be an http:// URL, got 'https://x'"),
    (lambda e: e.address({}, "DB", hint="of the database"), "DB is required (of the database)"),
    (lambda e: e.address({"DB": "127.0.0.1"}, "DB"), "DB must be host:port, got '127.0.0.1'"),
    (lambda e: e.data_dir({}), "DATA_DIR is required (the runtime sets it: a folder that outlives restarts)"),
])
def test_a_bad_value_is_refused_naming_the_variable(envconfig: ModuleType, call: Any, message: str) -> None:
    with pytest.raises(envconfig.ConfigError) as caught:
        call(envconfig)
    assert str(caught.value) == message


def test_good_values_and_defaults(envconfig: ModuleType, tmp_path: Path) -> None:
    env = {"PORT": " 8000 ", "URL": "http://h:1/", "ADDR": "db:5432", "KIND": "", "DATA_DIR": str(tmp_path / "d")}
    assert envconfig.port(env) == 8000
    assert envconfig.url(env, "URL") == "http://h:1"
    assert envconfig.url(env, "NONE", "", schemes=("http", "https")) == ""
    assert envconfig.address(env, "ADDR") == ("db", 5432)
    assert envconfig.choice(env, "KIND", ("nats", "rabbitmq"), "nats") == "nats"
    assert envconfig.variant({}, ("correct",)) == "correct"
    assert envconfig.seconds({}, "S", 2.5) == 2.5 and envconfig.number({"T": "3"}, "T", 1.0, minimum=0) == 3.0
    assert envconfig.data_dir(env).is_dir()


def test_run_exits_2_on_a_bad_environment_and_starts_nothing(targetkit: ModuleType,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    program = importlib.import_module("targetkit.program")
    envconfig = importlib.import_module("targetkit.envconfig")
    started: list[Any] = []

    def load(env: Any) -> int:
        return envconfig.integer({"PORT": "http"}, "PORT", None, minimum=1)

    assert program.run("demo", load, started.append) == 2
    assert started == []
    assert capsys.readouterr().err == "demo: configuration error: PORT must be an integer, got 'http'\n"
    assert program.run("demo", lambda env: 7, lambda config: config * 2) == 14


@pytest.fixture
def serving(targetkit: ModuleType) -> ModuleType:
    return importlib.import_module("targetkit.serving")


@pytest.fixture
def serve_handler(serving: ModuleType) -> Iterator[Any]:
    """serve_handler(handler class) -> (port, writes): a kit Server in a thread; writes counts
    the handler's socket writes per request."""
    servers: list[Any] = []

    def start(handler: type) -> tuple[int, list[int]]:
        writes: list[int] = []

        class Counting(handler):  # type: ignore[misc, valid-type]
            def setup(self) -> None:
                super().setup()
                raw = self.wfile

                class Writer:
                    def write(self, data: bytes) -> int:
                        writes.append(len(data))
                        return raw.write(data)

                    def flush(self) -> None:
                        raw.flush()

                self.wfile = Writer()

        server = serving.Server(("127.0.0.1", 0), Counting)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        servers.append(server)
        return server.server_address[1], writes

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def exchange(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(raw)
        conn.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_an_answer_is_json_in_one_write_and_errors_are_json_too(serving: ModuleType, serve_handler: Any) -> None:
    class Hello(serving.JsonHandler):
        service_name = "hello"

        def do_GET(self) -> None:
            if self.drain_body():
                self.send_json(200, {"a": 1}, {"X-Extra": "y"})

    port, writes = serve_handler(Hello)
    answer = exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer == (b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\nX-Extra: y\r\n'
                      b'Connection: close\r\n\r\n{"a": 1}')
    assert writes == [len(answer)]  # the head and the body in one write: a latency toxic counts once
    assert exchange(port, b"GARBAGE\r\n\r\n").endswith(
        b'Connection: close\r\n\r\n{"error": "Bad request syntax (\'GARBAGE\')", "service": "hello", "status": 400}')
    assert exchange(port, b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n").endswith(
        b'{"error": "bad Content-Length", "service": "hello", "status": 400}')


def test_a_target_keeps_its_own_details(serving: ModuleType, serve_handler: Any) -> None:
    class Terse(serving.JsonHandler):
        service_name = "terse"
        compact_json = True
        unknown_reason = "Status"
        error_fields = ("error", "service")

        def do_GET(self) -> None:
            self.send_json(299, {"a": 1, "b": [2]})

    port, _ = serve_handler(Terse)
    assert exchange(port, b"GET / HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 299 Status\r\n")
    assert exchange(port, b"GET / HTTP/1.1\r\n\r\n").endswith(b'{"a":1,"b":[2]}')
    assert exchange(port, b"HEAD / HTTP/1.1\r\n\r\n").endswith(
        b'\r\n\r\n{"error":"Unsupported method (\'HEAD\')","service":"terse"}')


def test_the_server_listens_with_a_real_backlog(serving: ModuleType) -> None:
    assert serving.Server.request_queue_size == 1024 and serving.Server.daemon_threads
