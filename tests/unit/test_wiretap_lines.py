"""tshark's lines as calls and answers: ids from the headers, answers paired, canaries left out."""

from __future__ import annotations

from harness.wiretap import epoch_ns, message_event

HEADERS = r"Host: x\r\n,Accept-Encoding: gzip, deflate\r\n,X-Request-Id: r-1\r\n,Connection: close\r\n"


def line(*cols: str) -> list[str]:
    return list(cols) + [""] * (9 - len(cols))


def test_a_request_and_its_answer_are_paired_by_frame():
    pending: dict = {}
    call = message_event(line("4", "1796215290.770128139", "0", "GET", "/orders?x=1", HEADERS), "x-request-id:", pending)
    assert call == {"t_ns": 1796215290770128139, "event": "arrival", "method": "GET", "path": "/orders?x=1",
                    "stream": "0", "request_id": "r-1", "via": "wire"}
    answer = message_event(line("6", "1796215290.772964034", "0", "", "", "", "503", "4", "0.002835895"),
                           "x-request-id:", pending)
    assert answer and answer["status"] == 503 and answer["duration_ms"] == 2.836 and answer["request_id"] == "r-1"
    assert pending == {}


def test_canaries_odd_lines_and_requests_without_an_id():
    pending: dict = {}
    assert message_event(line("1", "1.5", "0", "HARNESS-CANARY", ""), "x-request-id:", pending) is None
    assert message_event(["2", "1.5"], "x-request-id:", pending) is None
    assert message_event(line("3", "soon", "0", "GET", "/"), "x-request-id:", pending) is None
    call = message_event(line("5", "2", "1", "POST", "/", r"Host: x\r\n"), "x-request-id:", pending)
    assert call and call["request_id"] is None and call["t_ns"] == 2 * 10**9
    orphan = message_event(line("9", "3", "1", "", "", "", "200", "77", "0.001"), "x-request-id:", pending)
    assert orphan and orphan["request_id"] is None and orphan["status"] == 200


def test_epoch_stamps_keep_their_nanoseconds():
    assert epoch_ns("1796215290.770128139") == 1796215290770128139
    assert epoch_ns("1796215290.5") == 1796215290500000000
    assert epoch_ns("x.1") is None and epoch_ns("") is None
