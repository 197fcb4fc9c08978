"""What load to drive: plain frozen values, validated once, serialised as
JSON into the Locust child (which cannot import the harness safely)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
HEADER_NAME = re.compile(r"^[A-Za-z0-9-]+$")
TAG_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
# what the load writes into every row itself: no tag or body field may take these names
ROW_FIELDS = frozenset({"t_ns", "t_s", "end_s", "name", "method", "latency_ms", "status", "ok", "error", "hop",
                        "reason", "length", "request_id"})


@dataclass(frozen=True)
class RequestSpec:
    """One kind of request a user sends; picked at random by weight.

    tags are copied as they are into the row of every request of this kind:
    what the load knew when it sent it (e.g. whose token it carries), so a
    check can judge the answer against it.
    """

    method: str = "GET"
    path: str = "/"
    name: str | None = None
    weight: int = 1
    headers: dict[str, str] = field(default_factory=dict, hash=False)
    body: str | None = None
    tags: dict[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"RequestSpec.method {self.method!r} is not one of {sorted(METHODS)}")
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise ValueError(f"RequestSpec.path {self.path!r} must start with '/' (the host comes from the run)")
        if self.name is not None and not self.name:
            raise ValueError("RequestSpec.name must be None or a non-empty string")
        if isinstance(self.weight, bool) or not isinstance(self.weight, int) or self.weight < 1:
            raise ValueError(f"RequestSpec.weight must be an int >= 1, got {self.weight!r}")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.headers.items()):
            raise ValueError(f"RequestSpec.headers must map str to str, got {self.headers!r}")
        if self.body is not None and not isinstance(self.body, str):
            raise ValueError(f"RequestSpec.body must be a str or None, got {type(self.body).__name__}")
        bad_tags = [k for k, v in self.tags.items() if not (isinstance(k, str) and TAG_NAME.match(k)
                                                            and k not in ROW_FIELDS and isinstance(v, str))]
        if bad_tags:
            raise ValueError(f"RequestSpec.tags {bad_tags!r}: names must be lower-case identifiers, not one of "
                             f"the row's own fields, with str values")

    @property
    def label(self) -> str:
        """The name rows and stats are grouped under."""
        return self.name or self.path


@dataclass(frozen=True)
class Stage:
    """One step of a load shape: hold `users` for `duration_s`."""

    duration_s: float
    users: int
    spawn_rate: float

    def __post_init__(self) -> None:
        if not _positive(self.duration_s):
            raise ValueError(f"Stage.duration_s must be > 0, got {self.duration_s!r}")
        if isinstance(self.users, bool) or not isinstance(self.users, int) or self.users < 0:
            raise ValueError(f"Stage.users must be an int >= 0, got {self.users!r}")
        if not _positive(self.spawn_rate):
            raise ValueError(f"Stage.spawn_rate must be > 0, got {self.spawn_rate!r}")


@dataclass(frozen=True)
class LoadSpec:
    """A whole load run.

    rate_per_s is the total request rate across all users: each user gets
    constant_throughput(rate_per_s / users); None means as fast as possible.
    With stages, a load shape drives the user count, duration_s is ignored
    and the run lasts the sum of the stage durations (the per-user rate is
    still rate_per_s / users). Without stages duration_s goes to Locust's
    --run-time, which takes whole seconds only.
    timeout_s is the client's connect timeout and its timeout per network
    read, so a `timeout` toxic cannot hang a user forever (a response that
    keeps trickling bytes can take longer in total).
    request_id_header, when set, gives every request a fresh unique id in
    that header (e.g. X-Request-Id), also kept in its row as ``request_id``:
    a service that passes the id on lets a check tell which request reached
    which dependency.
    """

    users: int = 10
    spawn_rate: float = 100
    rate_per_s: float | None = None
    duration_s: float = 10
    requests: tuple[RequestSpec, ...] = (RequestSpec(),)
    timeout_s: float = 10.0
    stages: tuple[Stage, ...] = ()
    body_fields: tuple[str, ...] = ()  # JSON body fields copied into every request row; "a.b" reads body["a"]["b"]
    request_id_header: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "requests", tuple(self.requests))
        object.__setattr__(self, "stages", tuple(self.stages))
        object.__setattr__(self, "body_fields", tuple(self.body_fields))
        if not all(isinstance(f, str) and f and f not in ROW_FIELDS for f in self.body_fields):
            raise ValueError(f"LoadSpec.body_fields must hold non-empty strings other than the row's own fields, "
                             f"got {self.body_fields!r}")
        clashing = {t for r in self.requests if isinstance(r, RequestSpec) for t in r.tags} & set(self.body_fields)
        if clashing:
            raise ValueError(f"LoadSpec: {sorted(clashing)} are both tags and body_fields; one row field, one source")
        if self.request_id_header is not None and not HEADER_NAME.match(str(self.request_id_header)):
            raise ValueError(f"LoadSpec.request_id_header must be a header name, got {self.request_id_header!r}")
        if isinstance(self.users, bool) or not isinstance(self.users, int) or self.users < 1:
            raise ValueError(f"LoadSpec.users must be an int >= 1, got {self.users!r}")
        if not _positive(self.spawn_rate):
            raise ValueError(f"LoadSpec.spawn_rate must be > 0, got {self.spawn_rate!r}")
        if self.rate_per_s is not None and not _positive(self.rate_per_s):
            raise ValueError(f"LoadSpec.rate_per_s must be > 0 or None, got {self.rate_per_s!r}")
        if not _positive(self.timeout_s):
            raise ValueError(f"LoadSpec.timeout_s must be > 0, got {self.timeout_s!r}")
        if not self.requests:
            raise ValueError("LoadSpec.requests must hold at least one RequestSpec")
        if not all(isinstance(r, RequestSpec) for r in self.requests):
            raise ValueError("LoadSpec.requests must hold RequestSpec values only")
        if not all(isinstance(s, Stage) for s in self.stages):
            raise ValueError("LoadSpec.stages must hold Stage values only")
        if not self.stages:
            if not _positive(self.duration_s):
                raise ValueError(f"LoadSpec.duration_s must be > 0, got {self.duration_s!r}")
            if not float(self.duration_s).is_integer():
                raise ValueError(
                    f"LoadSpec.duration_s={self.duration_s!r}: Locust's --run-time takes whole seconds; "
                    "round it, or give stages for a fractional duration"
                )

    @property
    def total_duration_s(self) -> float:
        """How long the run drives load (spawning included)."""
        if self.stages:
            return float(sum(s.duration_s for s in self.stages))
        return float(self.duration_s)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> LoadSpec:
        raw: dict[str, Any] = json.loads(text)
        raw["requests"] = tuple(RequestSpec(**r) for r in raw.get("requests", ()))
        raw["stages"] = tuple(Stage(**s) for s in raw.get("stages", ()))
        return cls(**raw)


def _positive(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )
