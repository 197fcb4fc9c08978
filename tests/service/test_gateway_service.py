"""The gateway target's services, run for real: a gateway and three backend processes.

No Toxiproxy here: the gateway's <NAME>_URL points straight at a backend,
at a closed port (connection refused) or at a socket that accepts and never
answers (a hang). Tokens are minted with harness.patterns.gateway, independent
of the gateway's own token code. Evidence is taken from both sides: what
the client got, and what each backend says arrived (/admin/arrivals).
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.patterns.gateway import b64url, bad_tokens, claims_for, mint, spoofed_identity
from harness.runtime.ports import free_port
from harness.topology import load_topology

from .launcher import Launcher, Proc, wait_for

TOPOLOGY = load_topology("gateway")
SPEC = TOPOLOGY.spec
GATEWAY_ENV = TOPOLOGY.services["gateway"].env
KEY = GATEWAY_ENV["JWT_KEY"].encode()
GATEWAY_KEY = GATEWAY_ENV["GATEWAY_KEY"]
BACKENDS = tuple(SPEC["backends"])
ROUTES = ("/api/profile", *(f"/api/{b}" for b in BACKENDS))


def claims(subject: str = "alice", **changes: Any) -> dict[str, Any]:
    base = claims_for(subject, issuer=SPEC["jwt_issuer"], audience=SPEC["jwt_audience"], now_s=time.time())
    return {**base, **changes}


def bearer(subject: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(claims(subject), KEY)}"}


class Stack:
    """Backends and gateways on the shared launcher."""

    def __init__(self, launcher: Launcher) -> None:
        self.launcher, self.http = launcher, launcher.http

    @property
    def procs(self) -> list[Proc]:
        return self.launcher.procs

    def start(self, script: str, name: str, **env: Any) -> Proc:
        return self.launcher.program("gateway", script, name, **{"SERVICE_NAME": name, **env})

    def backend(self, name: str, work_ms: int = 5) -> Proc:
        return self.start("backend.py", name, GATEWAY_KEY=GATEWAY_KEY, WORK_MS=work_ms)

    def gateway(self, urls: dict[str, str], variant: str = "correct", **env: Any) -> Proc:
        own = {**GATEWAY_ENV, "VARIANT": variant, **{f"{n.upper()}_URL": u for n, u in urls.items()}, **env}
        return self.start("gateway.py", "gateway", **own)

    def up(self, variant: str = "correct", work_ms: int = 5, **env: Any) -> tuple[Proc, dict[str, Proc]]:
        backends = {n: self.backend(n, work_ms) for n in BACKENDS}
        gateway = self.gateway({n: p.url for n, p in backends.items()}, variant, **env)
        self.ready(gateway, *backends.values())
        return gateway, backends

    def ready(self, *procs: Proc) -> None:
        self.launcher.healthy(*procs)

    def get(self, proc: Proc, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.http.get(f"{proc.url}{path}", headers=headers)

    def arrivals(self, proc: Proc) -> dict[str, Any]:
        return self.get(proc, "/admin/arrivals").json()

    def stop(self, proc: Proc) -> int:
        return self.launcher.stop(proc)


@pytest.fixture
def stack(launcher: Launcher) -> Stack:
    return Stack(launcher)


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A backend address that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def timed(stack: Stack, proc: Proc, path: str, headers: dict[str, str]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    resp = stack.get(proc, path, headers)
    return resp, (time.monotonic() - started) * 1000


def test_topology_env_agrees_with_spec() -> None:
    env = GATEWAY_ENV
    assert env["BACKENDS"].split(",") == SPEC["backends"] and env["OPTIONAL"] == SPEC["optional"]
    for name in BACKENDS:
        assert int(env[f"{name.upper()}_TIMEOUT_MS"]) == SPEC["timeouts_ms"][name]
        assert float(env[f"{name.upper()}_TTL_S"]) == SPEC["ttl_s"][name]
        assert TOPOLOGY.services[name].env["GATEWAY_KEY"] == GATEWAY_KEY
    assert (env["JWT_ISSUER"], env["JWT_AUDIENCE"]) == (SPEC["jwt_issuer"], SPEC["jwt_audience"])
    assert SPEC["budget_ms"] == max(SPEC["timeouts_ms"].values())
    assert {l.name for l in TOPOLOGY.links} == {f"gateway->{b}" for b in BACKENDS}
    assert {n: v.broken for n, v in TOPOLOGY.variants.items()} == {
        "correct": False, "sequential-no-timeout": True, "auth-bypass": True, "no-cache": True,
        "never-readmits": True, "shared-cache": True, "trusts-client-identity": True, "bypasses-proxy": False}


def test_a_good_token_gets_the_whole_profile_then_cached_parts(stack: Stack) -> None:
    gateway, backends = stack.up()
    first = stack.get(gateway, "/api/profile", {**bearer(), "X-Request-Id": "req-1"})
    body = first.json()
    assert first.status_code == 200 and first.headers["x-request-id"] == "req-1"
    assert body | {"partial": False, "missing": [], "stale": [], "request_id": "req-1",
                   "sources": {"users": "live", "orders": "live", "recommendations": "live"}} == body
    assert body["parts"]["users"]["user"] == "alice" and body["parts"]["orders"]["kind"] == "orders"
    second = stack.get(gateway, "/api/profile", bearer()).json()
    assert second["sources"] == {"users": "cache", "orders": "cache", "recommendations": "live"}
    assert second["parts"] == body["parts"]
    assert stack.get(gateway, "/api/profile", bearer("bob")).json()["sources"]["users"] == "live"  # per user
    users = stack.arrivals(backends["users"])
    assert users["count"] == 2 and users["rejected"] == 0
    assert [(a["request_id"], a["user"], a["trusted"]) for a in users["arrivals"]][0] == ("req-1", "alice", True)
    assert stack.arrivals(backends["recommendations"])["count"] == 3
    state = stack.get(gateway, "/admin/state").json()
    assert state["cache"]["fresh_hits"] == 2 and state["served"]["users"] == {"live": 2, "cache": 1, "stale": 0,
                                                                               "missing": 0}


def test_every_bad_token_on_every_route_is_refused_before_any_backend(stack: Stack) -> None:
    gateway, backends = stack.up()
    tokens = bad_tokens(key=KEY, claims=claims("mallory"), seed=7, fuzzed=12)
    assert len({t.kind for t in tokens}) == len(tokens) >= 30
    for token in tokens:
        for route in ROUTES:
            headers = {"Authorization": token.authorization} if token.authorization else {}
            resp = stack.get(gateway, route, headers)
            assert resp.status_code == 401, (token.kind, route, resp.text)
            assert resp.headers["www-authenticate"].startswith('Bearer realm="gateway"'), token.kind
            assert resp.json()["error"] in ("missing token", "invalid token")
    assert all(stack.arrivals(b)["count"] == 0 for b in backends.values())
    state = stack.get(gateway, "/admin/state").json()
    assert state["unauthorized"] == len(tokens) * len(ROUTES)
    assert set(state["refusals"]) >= {"missing", "malformed", "algorithm", "signature", "expired",
                                      "not-yet-valid", "claims"}


def test_token_edge_cases(stack: Stack) -> None:
    gateway, _ = stack.up()
    now = time.time()
    leeway = float(GATEWAY_ENV["JWT_LEEWAY_S"])  # configuration, not spec

    def status(token: str, scheme: str = "Bearer") -> int:
        return stack.get(gateway, "/api/users", {"Authorization": f"{scheme} {token}"}).status_code

    good = mint(claims(), KEY)
    assert status(good) == 200 and status(good, "bearer") == 200  # the scheme is case-insensitive
    assert status(mint(claims(exp=now - leeway / 2), KEY)) == 200  # within the clock-skew leeway
    assert status(mint(claims(exp=now - leeway - 2), KEY)) == 401
    assert status(mint(claims(nbf=now + leeway + 5), KEY)) == 401
    assert status(mint(claims(aud=["other", SPEC["jwt_audience"]]), KEY)) == 200
    assert status(mint(claims(exp=True), KEY)) == 401  # a bool is not a time
    assert status(mint(claims(sub="alice\r\nX-Evil: 1"), KEY)) == 401  # the sub becomes a header
    assert status(mint(claims(), KEY, header={"alg": "HS256", "typ": "JWT", "crit": ["exp"]})) == 401
    assert status(good + "=") == 401  # padding: not base64url as JWS writes it
    head, payload, sig = good.split(".")
    twin = sig[:-1] + ("B" if sig[-1] == "A" else "A")  # same bytes to a lenient decoder when only the spare bits differ
    assert status(f"{head}.{payload}.{twin}") == 401
    dup = b64url(b'{"sub":"alice","sub":"admin","iss":"%s","aud":"%s","exp":%d}'
                 % (SPEC["jwt_issuer"].encode(), SPEC["jwt_audience"].encode(), int(now + 60)))
    assert status(mint_raw(head, dup)) == 401  # duplicate keys: which sub would a backend believe?
    assert status("x" * 5000) == 401
    two = stack.http.get(f"{gateway.url}/api/users", headers=[("Authorization", f"Bearer {good}")] * 2)
    assert two.status_code == 401


def mint_raw(head: str, payload: str) -> str:
    """A correctly signed token around a payload written by hand."""
    import hashlib
    import hmac

    signature = hmac.new(KEY, f"{head}.{payload}".encode(), hashlib.sha256).digest()
    return f"{head}.{payload}.{b64url(signature)}"


def test_backends_serve_only_the_gateway_and_count_the_rest(stack: Stack) -> None:
    users = stack.backend("users")
    stack.ready(users)
    assert stack.get(users, "/data", {"X-User": "alice"}).status_code == 403
    assert stack.get(users, "/data", {"X-User": "alice", "X-Gateway-Key": GATEWAY_KEY + "x"}).status_code == 403
    assert stack.get(users, "/data", {"X-Gateway-Key": GATEWAY_KEY}).status_code == 400
    ok = stack.get(users, "/data", {"X-User": "alice", "X-Gateway-Key": GATEWAY_KEY, "X-Request-Id": "r9"})
    assert ok.status_code == 200 and ok.json()["data"]["user"] == "alice"
    seen = stack.arrivals(users)
    assert (seen["count"], seen["rejected"]) == (4, 2)
    assert [a["trusted"] for a in seen["arrivals"]] == [False, False, True, True]
    stamps = [a["t_ns"] for a in seen["arrivals"]]
    assert stamps == sorted(stamps) and stack.get(users, "/admin/arrivals?since_ns=x").status_code == 400
    assert stack.get(users, f"/admin/arrivals?since_ns={stamps[1]}").json()["arrivals"][0]["request_id"] is None


def test_parallel_calls_cost_the_slowest_and_sequential_the_sum(stack: Stack) -> None:
    work_ms = 150
    parallel, _ = stack.up(work_ms=work_ms)
    sequential, _ = stack.up("sequential-no-timeout", work_ms=work_ms)
    for proc in (parallel, sequential):  # warm up (imports, first connections); fresh users below skip the cache
        stack.get(proc, "/api/profile", bearer("warm"))
    fast = [timed(stack, parallel, "/api/profile", bearer(f"p{i}"))[1] for i in range(3)]
    slow = [timed(stack, sequential, "/api/profile", bearer(f"s{i}"))[1] for i in range(3)]
    print(f"profile with 3 backends of {work_ms} ms: parallel {min(fast):.0f} ms, sequential {min(slow):.0f} ms")
    assert work_ms <= min(fast) < 2 * work_ms
    assert min(slow) >= 3 * work_ms


def test_a_hanging_optional_backend_makes_a_partial_answer_within_its_timeout(stack: Stack, black_hole: str) -> None:
    users, orders = stack.backend("users"), stack.backend("orders")
    gateway = stack.gateway({"users": users.url, "orders": orders.url, "recommendations": black_hole})
    stack.ready(users, orders, gateway)
    resp, ms = timed(stack, gateway, "/api/profile", bearer())
    body = resp.json()
    assert resp.status_code == 200 and body["partial"] is True and body["missing"] == ["recommendations"]
    assert body["parts"]["recommendations"] is None and body["errors"] == {"recommendations": "timeout"}
    timeout_ms = SPEC["timeouts_ms"]["recommendations"]
    assert timeout_ms <= ms < timeout_ms + SPEC["margin_ms"], ms
    alone = stack.get(gateway, "/api/recommendations", bearer()).json()
    assert alone["partial"] is True and alone["missing"] == ["recommendations"]


def test_a_required_backend_missing_is_an_error_naming_its_hop(stack: Stack, black_hole: str) -> None:
    orders, recs = stack.backend("orders"), stack.backend("recommendations")
    refused = stack.gateway({"users": f"http://127.0.0.1:{free_port()}", "orders": orders.url,
                             "recommendations": recs.url})
    hanging = stack.gateway({"users": black_hole, "orders": orders.url, "recommendations": recs.url})
    stack.ready(orders, recs, refused, hanging)
    bad = stack.get(refused, "/api/profile", bearer())
    assert bad.status_code == 502 and bad.json() | {"error": "backend unavailable", "hop": "gateway->users",
                                                    "missing": ["users"]} == bad.json()
    slow, ms = timed(stack, hanging, "/api/profile", bearer())
    assert slow.status_code == 504 and slow.json()["hop"] == "gateway->users"
    assert SPEC["timeouts_ms"]["users"] <= ms < SPEC["timeouts_ms"]["users"] + SPEC["margin_ms"]


@pytest.mark.parametrize("variant, stale", [("correct", True), ("no-cache", False)])
def test_a_down_backend_is_served_stale_from_the_cache(stack: Stack, variant: str, stale: bool) -> None:
    gateway, backends = stack.up(variant, USERS_TTL_S=0.2)
    warm = stack.get(gateway, "/api/profile", bearer()).json()
    assert warm["sources"]["users"] == "live"
    stored = time.monotonic()
    backends["users"].signal(signal.SIGKILL)
    backends["users"].popen.wait()
    while time.monotonic() - stored < 0.2:  # the entry is fresh, then expires: poll past its TTL
        time.sleep(0.02)  # poll
    resp = stack.get(gateway, "/api/profile", bearer())
    body = resp.json()
    if stale:
        assert resp.status_code == 200 and body["stale"] == ["users"] and body["sources"]["users"] == "stale"
        assert body["parts"]["users"] == warm["parts"]["users"] and body["partial"] is False
        assert stack.get(gateway, "/admin/state").json()["cache"]["stale_hits"] == 1
    else:
        assert resp.status_code == 502 and body["missing"] == ["users"]
    assert stack.get(gateway, "/api/profile", bearer("nobody-cached")).status_code == 502


def test_auth_bypass_forwards_its_route_unchecked(stack: Stack) -> None:
    gateway, backends = stack.up("auth-bypass", AUTH_BYPASS_ROUTE="/api/orders")
    forged = {"Authorization": f"Bearer {mint(claims('admin'), b'not-the-key' * 4)}", "X-Request-Id": "forged"}
    resp = stack.get(gateway, "/api/orders", forged)
    assert resp.status_code == 200 and resp.json()["parts"]["orders"]["user"] == "admin"
    assert [a["request_id"] for a in stack.arrivals(backends["orders"])["arrivals"]] == ["forged"]
    assert stack.get(gateway, "/api/profile", forged).status_code == 401
    assert stack.get(gateway, "/api/orders", {}).json()["parts"]["orders"]["user"] == "anonymous"


def test_never_readmits_stops_calling_a_backend_after_one_failure(stack: Stack) -> None:
    gateway, backends = stack.up("never-readmits")
    recs = backends["recommendations"]
    recs.signal(signal.SIGSTOP)
    assert stack.get(gateway, "/api/profile", bearer()).json()["missing"] == ["recommendations"]
    recs.signal(signal.SIGCONT)
    wait_for("the abandoned call reaching the resumed backend (read only now)",
             lambda: stack.arrivals(recs)["count"], lambda n: n >= 1, within_s=5)
    for _ in range(3):
        assert stack.get(gateway, "/api/profile", bearer()).json()["missing"] == ["recommendations"]
    assert stack.arrivals(recs)["count"] == 1
    assert stack.get(gateway, "/admin/state").json()["ejected"] == ["recommendations"]


def test_non_api_paths_and_methods(stack: Stack) -> None:
    gateway, _ = stack.up()
    assert stack.get(gateway, "/api/nothing", bearer()).status_code == 404
    assert stack.http.post(f"{gateway.url}/api/profile", headers=bearer(), content=b"{}").status_code == 405
    assert stack.get(gateway, "/health").json() == {"ok": True, "service": "gateway"}
    assert [stack.stop(p) for p in stack.procs] == [0, 0, 0, 0]


@pytest.mark.parametrize("key, value", [
    ("JWT_KEY", "too-short"), ("USERS_TIMEOUT_MS", "fast"), ("ORDERS_TTL_S", "-1"), ("VARIANT", "bogus"),
    ("OPTIONAL", "payments"), ("USERS_URL", ""), ("RECOMMENDATIONS_URL", "ftp://x"), ("GATEWAY_KEY", "short"),
    ("BACKENDS", "Users"), ("PORT", "http"),
])
def test_bad_gateway_env_exits_2_naming_the_variable(stack: Stack, key: str, value: str) -> None:
    urls = {n: f"http://127.0.0.1:{free_port()}" for n in BACKENDS}
    proc = stack.gateway(urls, **{key: value})
    assert proc.popen.wait(timeout=10) == 2
    assert "configuration error" in proc.log_text() and key in proc.log_text()


def test_auth_bypass_needs_its_route_and_backends_need_the_key(stack: Stack) -> None:
    urls = {n: f"http://127.0.0.1:{free_port()}" for n in BACKENDS}
    bypass = stack.gateway(urls, "auth-bypass")
    backend = stack.start("backend.py", "users")
    assert bypass.popen.wait(timeout=10) == 2 and "AUTH_BYPASS_ROUTE" in bypass.log_text()
    assert backend.popen.wait(timeout=10) == 2 and "GATEWAY_KEY" in backend.log_text()


@pytest.mark.parametrize("variant, bob_gets", [("correct", "bob"), ("shared-cache", "alice")])
def test_a_cache_keyed_by_route_serves_one_users_data_to_another(stack: Stack, variant: str, bob_gets: str) -> None:
    gateway, backends = stack.up(variant)
    assert stack.get(gateway, "/api/profile", bearer("alice")).json()["parts"]["users"]["user"] == "alice"
    bob = stack.get(gateway, "/api/profile", {**bearer("bob"), "X-Request-Id": "bob-1"}).json()
    assert {b: bob["parts"][b]["user"] for b in BACKENDS} == {"users": bob_gets, "orders": bob_gets,
                                                              "recommendations": "bob"}  # TTL 0: never cached
    assert bob["sources"]["users"] == ("live" if bob_gets == "bob" else "cache")
    asked = [a["user"] for a in stack.arrivals(backends["users"])["arrivals"] if a["request_id"] == "bob-1"]
    assert asked == (["bob"] if bob_gets == "bob" else [])  # the backends are asked rightly: the cache is wrong


@pytest.mark.parametrize("variant, served", [("correct", "alice"), ("trusts-client-identity", "bob")])
def test_a_client_sent_identity_header_never_overrides_the_token(stack: Stack, variant: str, served: str) -> None:
    gateway, backends = stack.up(variant)
    resp = stack.get(gateway, "/api/profile", {**bearer("alice"), **spoofed_identity("bob"), "X-Request-Id": "spoof"})
    assert resp.status_code == 200 and {p["user"] for p in resp.json()["parts"].values()} == {served}
    for proc in backends.values():
        assert [a["user"] for a in stack.arrivals(proc)["arrivals"] if a["request_id"] == "spoof"] == [served]
    assert stack.get(gateway, "/api/users", spoofed_identity("bob")).status_code == 401  # still no token, no entry
