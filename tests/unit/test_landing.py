"""Fault evidence: the canary's outcomes on real sockets, Toxiproxy's and the kernel's
counters as read, and the gate that turns a verdict without evidence into unknown."""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path
from typing import Callable, Iterator

import pytest

from harness.checks import check, verdict
from harness.landing.canary import send_canary
from harness.landing.sockets import parse_ss
from harness.landing.traffic import ProxyBytes, parse_metrics
from harness.timeline import Recorder, load_frames

from .landing import record_landed

T0, S = 1_700_000_000_000_000_000, 1_000_000_000


@pytest.fixture
def server() -> Iterator[Callable[[Callable[[socket.socket], None]], str]]:
    """A listening socket on 127.0.0.1 whose accepted connections get `handle`; yields its address."""
    made: list[socket.socket] = []

    def start(handle: Callable[[socket.socket], None]) -> str:
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        made.append(srv)

        def serve() -> None:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            handle(conn)

        threading.Thread(target=serve, daemon=True).start()
        return f"127.0.0.1:{srv.getsockname()[1]}"

    yield start
    for srv in made:
        srv.close()


def test_a_canary_tells_reply_closed_reset_stalled_and_refused(server):
    def answer(conn: socket.socket) -> None:
        conn.recv(100)
        conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
        conn.close()

    def hang_up(conn: socket.socket) -> None:
        conn.recv(100)
        conn.close()

    def reset(conn: socket.socket) -> None:
        conn.recv(100)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    held: list[socket.socket] = []
    assert send_canary(server(answer), "http").outcome == "reply"
    assert send_canary(server(hang_up), "http").outcome == "closed"
    assert send_canary(server(reset), "http").outcome == "reset"
    stalled = send_canary(server(held.append), "http", stall_s=0.2)
    assert stalled.outcome == "stalled" and stalled.sent_bytes == len(b"HARNESS-CANARY\r\n\r\n")
    gone = socket.socket()
    gone.bind(("127.0.0.1", 0))
    port = gone.getsockname()[1]
    gone.close()
    assert send_canary(f"127.0.0.1:{port}", "http").outcome == "refused"
    for conn in held:
        conn.close()


def test_a_greeting_protocol_sends_nothing_and_waits_for_the_server(server):
    got: list[bytes] = []

    def greet(conn: socket.socket) -> None:
        conn.sendall(b"INFO {}\r\n")
        conn.settimeout(0.5)
        try:
            got.append(conn.recv(100))
        except OSError:
            got.append(b"")
        conn.close()

    result = send_canary(server(greet), "nats")
    assert result.outcome == "reply" and result.sent_bytes == 0


def test_metrics_are_read_per_proxy_and_listen_port_summed_over_upstreams():
    text = "\n".join([
        "# HELP toxiproxy_proxy_received_bytes_total x",
        'toxiproxy_proxy_received_bytes_total{direction="upstream",listener="127.0.0.1:2001",proxy="p",upstream="a:1"} 10',
        'toxiproxy_proxy_received_bytes_total{direction="upstream",listener="127.0.0.1:2001",proxy="p",upstream="b:1"} 5',
        'toxiproxy_proxy_received_bytes_total{direction="downstream",listener="127.0.0.1:2001",proxy="p",upstream="a:1"} 7',
        'toxiproxy_proxy_received_bytes_total{direction="upstream",listener="127.0.0.1:2002",proxy="p",upstream="a:1"} 99',
        'toxiproxy_proxy_sent_bytes_total{direction="upstream",listener="127.0.0.1:2001",proxy="p",upstream="a:1"} 1000',
    ])
    seen = parse_metrics(text)
    assert seen[("p", "2001")] == ProxyBytes(upstream=15, downstream=7)
    assert seen[("p", "2002")] == ProxyBytes(upstream=99, downstream=0)


def test_open_connections_are_read_from_ss_output():
    text = ("0      0      127.0.0.1:18611 127.0.0.1:55810\n"
            "\t bbr wscale:10,10 rto:208 bytes_sent:150 bytes_acked:150 bytes_received:150 segs_out:4\n"
            "0      0      127.0.0.1:18611 127.0.0.1:55812\n"
            "\t cubic rto:204\n")
    assert parse_ss(text) == {("127.0.0.1:18611", "127.0.0.1:55810"): 150, ("127.0.0.1:18611", "127.0.0.1:55812"): 0}


@check("always-passes")
def always_passes(frames) -> object:
    return verdict("always-passes", True, "held")


@check("steady-passes", steady=True)
def steady_passes(frames) -> object:
    return verdict("steady-passes", True, "held")


def timeline(folder: Path, *, fault: bool = True, landed: object = "absent") -> Path:
    with Recorder(folder) as rec:
        rec.record("experiment", t_ns=T0, name="x", target="t", variant="correct")
        if fault:
            rec.record("fault", t_ns=T0 + S, fault="latency", on="b->c", params={}, edge="start")
            if landed != "absent":
                record_landed(rec, "latency", "b->c", t_ns=T0 + 2 * S, landed=landed,  # type: ignore[arg-type]
                              reason=None if landed else "no traffic of b went through b->c's proxies")
            rec.record("fault", t_ns=T0 + 3 * S, fault="latency", on="b->c", params={}, edge="end")
        rec.record("end", t_ns=T0 + 4 * S)
    return folder


def test_a_pass_stands_only_when_the_fault_was_seen(tmp_path):
    landed = always_passes(load_frames(timeline(tmp_path / "1", landed=True)))
    assert landed.status == "pass" and landed.figures["fault_landed"] is True
    missed = always_passes(load_frames(timeline(tmp_path / "2", landed=False)))
    assert missed.status == "unknown" and missed.explanation.startswith("fault not observed: no traffic of b")
    assert missed.figures["status_if_landed"] == "pass"
    unrecorded = always_passes(load_frames(timeline(tmp_path / "3")))
    assert unrecorded.status == "unknown" and "no evidence of latency on b->c was recorded" in unrecorded.explanation


def test_a_malformed_effect_is_left_out_and_said_never_taken_for_a_landing(tmp_path):
    folder = timeline(tmp_path, landed="absent")
    lines = (folder / "timeline.jsonl").read_text().splitlines()
    lines.insert(2, '{"kind": "fault_effect", "t_ns": %d, "fault": "latency", "on": "b->c", "landed": "yes"}' % (T0 + 2 * S))
    lines.insert(3, '{"kind": "lifecycle", "t_ns": "soon"}')
    (folder / "timeline.jsonl").write_text("\n".join(lines) + "\n")
    frames = load_frames(folder)  # the rest of the timeline still loads
    assert len(frames.faults) == 1 and frames.effects.empty and frames.complete
    assert [line.split(" left out")[0] for line in frames.skipped] == ["event 4 of timeline.jsonl", "fault_effect event 3 of timeline.jsonl"]
    v = always_passes(frames)
    assert v.status == "unknown" and "the evidence could not be read (fault_effect event 3" in v.explanation


def test_an_unverifiable_fault_keeps_the_verdict_and_says_so(tmp_path):
    v = always_passes(load_frames(timeline(tmp_path, landed=None)))
    assert v.status == "pass" and "fault effect not verified" in v.explanation and v.figures["fault_landed"] is None


def test_steady_checks_and_fault_free_runs_are_not_gated(tmp_path):
    assert steady_passes(load_frames(timeline(tmp_path / "1", landed=False))).status == "pass"
    assert always_passes(load_frames(timeline(tmp_path / "2", fault=False))).status == "pass"
