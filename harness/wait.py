"""The one way the harness waits: poll with a deadline, never sleep for it.

``wait_until(attempt, ...)`` calls ``attempt`` every ``interval_s`` until it
returns a true value, which it hands back. An attempt that is not there yet
returns a false value or raises ``NotYet`` (or one of the ``retry``
exceptions) with what it saw. At the deadline the error says what was waited
for, for how long, the last thing seen, what to do, and the last lines of the
waited-for service's log.
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

from .errors import HarnessError, WaitTimeout

T = TypeVar("T")
LOG_TAIL_LINES = 20


class NotYet(Exception):
    """Raised by an attempt that has not succeeded yet; its text is what it saw."""


def wait_until(
    attempt: Callable[[], T],
    *,
    what: str,
    timeout_s: float,
    interval_s: float = 0.05,
    hint: str = "",
    log_tail: Callable[[], str] | None = None,
    retry: tuple[type[BaseException], ...] = (),
    error: type[HarnessError] = WaitTimeout,
) -> T:
    """The first true value `attempt` returns; `error` at the deadline.

    Exceptions other than NotYet and `retry` end the wait at once (e.g. a
    service that exited: waiting longer cannot help)."""
    deadline = time.monotonic() + timeout_s
    last = "no attempt yet"
    while True:
        try:
            value = attempt()
            if value:
                return value
            last = f"got {value!r}"
        except (NotYet, *retry) as exc:
            last = str(exc) or type(exc).__name__
        if time.monotonic() >= deadline:
            raise error(timed_out(what, timeout_s=timeout_s, last=last, hint=hint, log_tail=log_tail))
        time.sleep(interval_s)  # the poll interval: the one sleep a wait may have


def timed_out(what: str, *, timeout_s: float, last: str, hint: str = "", log_tail: Callable[[], str] | None = None) -> str:
    """The text of a wait that ran out: what, how long, last seen, hint, log tail."""
    text = f"{what}: not within {timeout_s:.1f}s (last: {last})."
    if hint:
        text += f" {hint}"
    if log_tail is not None:
        text += f" Log tail:\n{tail_of(log_tail)}"
    return text


def tail_of(log_tail: Callable[[], str]) -> str:
    """The last lines of a log, or why there are none (a log that cannot be read must not hide the timeout)."""
    try:
        lines = log_tail().splitlines()
    except Exception as exc:
        return f"(log unreadable: {type(exc).__name__}: {exc})"
    return "\n".join(lines[-LOG_TAIL_LINES:]) or "(empty log)"
