"""The locustfile run by the Locust child process (never imported by the harness).

All configuration comes from two environment variables, so the command
line stays Locust's own:

- HARNESS_LOAD_SPEC: the LoadSpec as JSON (harness.load.spec.LoadSpec.to_json)
- HARNESS_REQUESTS_FILE: the requests.jsonl to append one row per request to

It imports nothing from the harness: the harness package may not be on the
child's path, and would pull in modules that must not be gevent-patched.
Rows are written line-buffered from the request event, so they are on disk
as they happen and a killed run keeps what it sent.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from typing import Any

from locust import FastHttpUser, LoadTestShape, constant, constant_throughput, events, task

SPEC_ENV = "HARNESS_LOAD_SPEC"
REQUESTS_FILE_ENV = "HARNESS_REQUESTS_FILE"
MAX_HOP_BODY_BYTES = 65536
MAX_ERROR_CHARS = 160


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: this locustfile is started by harness.load.LoadRun")
    return value


SPEC: dict[str, Any] = json.loads(_env(SPEC_ENV))
REQUESTS = [dict(r) for r in SPEC["requests"]]
WEIGHTS = [int(r["weight"]) for r in REQUESTS]
STAGES = [dict(s) for s in SPEC.get("stages") or ()]
TIMEOUT_S = float(SPEC["timeout_s"])
RATE_PER_S = SPEC.get("rate_per_s")

_rows = open(_env(REQUESTS_FILE_ENV), "a", buffering=1, encoding="utf-8")  # line-buffered


def _error_text(exception: BaseException | None, status: int) -> str | None:
    if exception is None and status < 400:
        return None
    if status >= 400:
        return f"HTTP {status}"
    if exception is None:
        return "no response"
    original = getattr(exception, "original", None)  # geventhttpclient's RetriesExceeded wraps the cause
    if isinstance(original, BaseException):
        exception = original
    text = f"{type(exception).__name__}: {exception}"
    return text[:MAX_ERROR_CHARS]


BODY_FIELDS = tuple(SPEC.get("body_fields") or ())
REQUEST_ID_HEADER = SPEC.get("request_id_header")


def _body(response: Any, status: int) -> dict[str, Any]:
    """The JSON body of an error answer (its hop and error name the failure)
    or, when the spec asks for body_fields, of any answer; {} otherwise."""
    if response is None or (status < 400 and not BODY_FIELDS):
        return {}
    try:
        content = response.content
        if not content or len(content) > MAX_HOP_BODY_BYTES:
            return {}
        body = json.loads(content)
    except Exception:  # a body that is not JSON names nothing
        return {}
    return body if isinstance(body, dict) else {}


def _field(body: dict[str, Any], key: str) -> Any:
    """A body field; a dotted key ("parts.users.user") walks nested objects,
    so a row keeps one small value of a big answer rather than its cut JSON."""
    if key in body:
        return body[key]
    value: Any = body
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _scalar(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, bool)) else json.dumps(value)[:200]


@events.request.add_listener
def _record(
    request_type: str,
    name: str,
    response_time: float,
    response_length: int,
    response: Any = None,
    exception: BaseException | None = None,
    start_time: float | None = None,
    context: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    status = int(getattr(response, "status_code", 0) or 0)
    body = _body(response, status)
    reason = body.get("error") if status >= 400 else None
    row = {
        "t_ns": int((start_time or 0.0) * 1e9),
        "name": name,
        "method": request_type,
        "latency_ms": float(response_time or 0.0),
        "status": status,
        "ok": exception is None and 0 < status < 400,
        "error": _error_text(exception, status),
        "hop": _scalar(body.get("hop")) if status >= 400 else None,
        "reason": _scalar(reason),
        "length": int(response_length or 0),
    }
    for key, value in ((context or {}).get("tags") or {}).items():
        row.setdefault(key, value)
    for key in BODY_FIELDS:
        row.setdefault(key, _scalar(_field(body, key)))
    if REQUEST_ID_HEADER:
        row["request_id"] = (context or {}).get("request_id")
    _rows.write(json.dumps(row) + "\n")


@events.quitting.add_listener
def _close_rows(**_: Any) -> None:
    _rows.flush()


class HarnessUser(FastHttpUser):
    """Sends the spec's requests, one per task run, never retried."""

    connection_timeout = TIMEOUT_S
    network_timeout = TIMEOUT_S
    max_retries = 0
    wait_time = constant_throughput(RATE_PER_S / SPEC["users"]) if RATE_PER_S else constant(0)

    @task
    def one_request(self) -> None:
        spec = random.choices(REQUESTS, weights=WEIGHTS)[0]
        headers = dict(spec.get("headers") or {})
        context: dict[str, Any] = {"tags": spec.get("tags") or {}}
        if REQUEST_ID_HEADER:
            context["request_id"] = headers[REQUEST_ID_HEADER] = uuid.uuid4().hex
        self.client.request(
            spec["method"],
            spec["path"],
            name=spec.get("name") or spec["path"],
            data=spec.get("body"),
            headers=headers or None,
            context=context,
        )


if STAGES:  # Locust runs any shape class it finds, so define it only when asked

    class HarnessStages(LoadTestShape):
        """Holds each stage's user count for its duration, then stops the run."""

        def tick(self) -> tuple[int, float] | None:
            run_time_s = self.get_run_time()
            end_s = 0.0
            for stage in STAGES:
                end_s += float(stage["duration_s"])
                if run_time_s < end_s:
                    return int(stage["users"]), float(stage["spawn_rate"])
            return None
