"""when(): a fault applied once the target is in a state, or at its deadline anyway."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any, Iterator

import pytest

from harness.errors import FaultError
from harness.faults import field_set, when

from .test_scale_stop_faults import Part


def test_the_fault_is_applied_once_the_condition_holds():
    log: list[str] = []
    answers = iter([False, False, True])

    def condition(runtime: Any) -> bool:
        log.append("asked")
        return next(answers)

    fault = when(Part("consumer", log), condition, said="busy", within_s=5)
    fault.apply(None)
    assert log == ["asked", "asked", "asked", "apply consumer"]
    fault.revert(None)
    assert log[-1] == "revert consumer"


def test_a_condition_that_never_holds_or_raises_still_applies_the_fault_at_the_deadline(capsys):
    log: list[str] = []

    def condition(runtime: Any) -> bool:
        raise ConnectionError("not answering yet")

    when(Part("consumer", log), condition, said="the consumer is busy", within_s=0.05).apply(None)
    assert log == ["apply consumer"]
    assert "the consumer is busy did not hold within 0.05 s" in capsys.readouterr().err


def test_it_is_described_as_the_fault_with_the_condition_among_its_parameters():
    fault = when(Part("consumer", [], params={"signal": "KILL"}), lambda r: True, said="busy")
    described = fault.describe()
    assert (described.kind, described.on, described.params) == ("part", "consumer", {"signal": "KILL", "when": "busy"})
    assert fault.on == "consumer"


@pytest.mark.parametrize("within_s", [0, -1, float("inf"), float("nan")])
def test_a_deadline_that_is_not_a_finite_positive_number_is_refused(within_s):
    with pytest.raises(FaultError, match="when: within_s must be a finite number"):
        when(Part("c", []), lambda r: True, said="x", within_s=within_s)


@pytest.fixture
def state_server() -> Iterator[tuple[SimpleNamespace, dict[str, Any]]]:
    """A real HTTP server whose /admin/state answers whatever the test puts in `state`."""
    state: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(state).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    runtime = SimpleNamespace(url=lambda service, instance=0: f"http://127.0.0.1:{server.server_port}")
    try:
        yield runtime, state
    finally:
        server.shutdown()
        server.server_close()


def test_field_set_reads_a_dotted_field_of_the_services_json(state_server):
    runtime, state = state_server
    busy = field_set("consumer", "/admin/state", "work.in_process")
    state.update(work={"in_process": None})
    assert busy(runtime) is False
    state.update(work={"in_process": "order-7"})
    assert busy(runtime) is True
    busy.close()
    assert busy(runtime) is True  # a closed condition opens a new client when asked again
    busy.close()
