"""The typed result of a check: pass, fail, or unknown with the reason."""

from __future__ import annotations

import functools
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from ..jsonform import field_of, json_object
from .windows import MissingData

Status = Literal["pass", "fail", "unknown"]
STATUSES = ("pass", "fail", "unknown")


@dataclass(frozen=True)
class Verdict:
    """What a check concluded, with the figures that let a red test explain itself."""

    check: str
    status: Status
    explanation: str
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "status": self.status, "figures": dict(self.figures), "explanation": self.explanation}

    @classmethod
    def from_json(cls, data: Any) -> "Verdict":
        data = json_object(data, "verdict")
        status = field_of(data, "status", str, "verdict")
        if status not in STATUSES:
            raise ValueError(f"verdict: status is {status!r}, not pass, fail or unknown")
        return cls(check=field_of(data, "check", str, "verdict"), status=status,  # type: ignore[arg-type]
                   explanation=field_of(data, "explanation", str, "verdict"),
                   figures=dict(field_of(data, "figures", dict, "verdict")))

    def __str__(self) -> str:
        return f"{self.check}: {self.status.upper()} - {self.explanation}"


def verdict(check: str, ok: bool, explanation: str, **figures: Any) -> Verdict:
    return Verdict(check=check, status="pass" if ok else "fail", explanation=explanation, figures=figures)


def judged(check: str, clauses: dict[str, bool], explanation: str, **figures: Any) -> Verdict:
    """A verdict from named clauses: pass only when every clause holds. The figures
    list the clauses judged and the ones that failed, so a broken variant is
    counted as caught only by the clause it must break."""
    failed = [name for name, held in clauses.items() if not held]
    return Verdict(check=check, status="fail" if failed else "pass", explanation=explanation,
                   figures={**figures, "clauses": list(clauses), "failed": failed})


def unknown(check: str, reason: str, **figures: Any) -> Verdict:
    return Verdict(check=check, status="unknown", explanation=reason, figures=figures)


def check(name: str, *, steady: bool = False) -> Callable[[Callable[..., Verdict]], Callable[..., Verdict]]:
    """Names a check and turns missing data, or a crash inside it, into 'unknown', never a pass.

    A check judges the promise under the run's fault unless it is `steady`
    (it holds with or without one): its verdict then stands only if the
    harness saw the fault take effect (checks/landed.py), and is 'unknown:
    fault not observed' otherwise. The timeline is its first argument."""

    def wrap(fn: Callable[..., Verdict]) -> Callable[..., Verdict]:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Verdict:
            try:
                result = fn(*args, **kwargs)
            except MissingData as exc:  # the timeline lacks what the check needs: say what
                return unknown(name, str(exc))
            except Exception as exc:  # a broken check must not take the run down
                tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
                return unknown(name, f"the check crashed: {tb}")
            if steady:
                return result
            from .landed import gated  # landed reads the timeline, which imports nothing of checks

            frames = args[0] if args else kwargs.get("frames")
            return gated(result, frames) if frames is not None else result

        run.check_name = name  # type: ignore[attr-defined]
        run.steady = steady  # type: ignore[attr-defined]
        return run

    return wrap
