"""The one wait primitive: what it returns, when it gives up, and what its error says."""

from __future__ import annotations

import pytest

from harness.errors import ReadinessTimeout, WaitTimeout
from harness.wait import NotYet, wait_until


def test_returns_the_first_true_value_after_not_yet_and_false():
    answers = iter([NotYet("warming up"), False, None, "ready"])

    def attempt():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_until(attempt, what="ready", timeout_s=5, interval_s=0.001) == "ready"


def test_at_the_deadline_the_error_says_what_how_long_the_last_seen_the_hint_and_the_log():
    def attempt():
        raise NotYet("GET /health: 503")

    with pytest.raises(WaitTimeout) as err:
        wait_until(attempt, what="service web[0] healthy", timeout_s=0.05, interval_s=0.01,
                   hint="Check its health path.", log_tail=lambda: "\n".join(f"line {i}" for i in range(30)))
    text = str(err.value)
    assert text.startswith("service web[0] healthy: not within 0.1s (last: GET /health: 503). Check its health path.")
    assert "Log tail:\nline 10\n" in text and text.endswith("line 29")  # the last 20 lines


def test_retry_exceptions_count_as_not_yet_and_the_error_class_is_the_callers():
    calls = []

    def attempt():
        calls.append(1)
        raise ConnectionRefusedError("refused")

    with pytest.raises(ReadinessTimeout, match=r"last: refused"):
        wait_until(attempt, what="x", timeout_s=0.05, interval_s=0.01, retry=(OSError,), error=ReadinessTimeout)
    assert len(calls) >= 2


def test_any_other_exception_ends_the_wait_at_once():
    calls = []

    def attempt():
        calls.append(1)
        raise RuntimeError("exited with code 3")

    with pytest.raises(RuntimeError, match="exited"):
        wait_until(attempt, what="x", timeout_s=5)
    assert calls == [1]


def test_a_log_that_cannot_be_read_does_not_hide_the_timeout():
    def unreadable() -> str:
        raise OSError("gone")

    with pytest.raises(WaitTimeout, match=r"log unreadable: OSError: gone"):
        wait_until(lambda: False, what="x", timeout_s=0.01, interval_s=0.005, log_tail=unreadable)
