"""A fault the service itself enacts, through an endpoint of its own:
e.g. "make report queries slow" (POST /admin/slow_reports?ms=1500, undone
with ?ms=0). For faults no proxy or signal can cause, in services that offer
such a switch; the harness only calls the run's own instances."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import httpx

from ..errors import FaultError
from ..runtime.base import Runtime
from .base import FaultBase, service_instance
from .registry import register


@register
@dataclass(frozen=True)
class ServiceCall(FaultBase):
    kind: ClassVar[str] = "service_call"
    apply_path: str = ""
    revert_path: str = ""
    method: str = "POST"
    timeout_s: float = 5.0
    # How the harness verifies the effect (landing/choose.py): GET verify_path on the
    # instance must take at least verify_min_ms once the fault is on. Without one the
    # verdicts say the fault was not verified.
    verify_path: str = ""
    verify_min_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.verify_path and not self.verify_path.startswith("/"):
            raise FaultError(f"{self.kind} on {self.on}: verify_path must be a path starting with '/', "
                             f"got {self.verify_path!r}")
        for name in ("apply_path", "revert_path"):
            if not getattr(self, name).startswith("/"):
                raise FaultError(f"{self.kind} on {self.on}: {name} must be a path starting with '/', "
                                 f"got {getattr(self, name)!r}")

    def _call(self, runtime: Runtime, path: str) -> None:
        service, index = service_instance(runtime, self.on, self.kind)
        url = runtime.url(service, index) + path
        try:
            httpx.request(self.method, url, timeout=self.timeout_s, trust_env=False).raise_for_status()
        except httpx.HTTPError as exc:
            raise FaultError(f"{self.kind}: {self.method} {url} on {self.on} failed: {exc}") from None

    def apply(self, runtime: Runtime) -> None:
        self._call(runtime, self.apply_path)

    def revert(self, runtime: Runtime) -> None:
        self._call(runtime, self.revert_path)
