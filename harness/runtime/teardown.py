"""Guaranteed teardown: every live runtime is taken down at exit, and
SIGTERM/SIGHUP become an exception so that every ``finally`` runs.

Context managers and fixtures do the normal work; this catches what they
cannot: an interpreter that exits early, or a signal from outside.
"""

from __future__ import annotations

import atexit
import contextlib
import signal
import threading
from typing import Any, Iterator, Protocol


class _Downable(Protocol):
    def down(self) -> None: ...


_live: list[_Downable] = []
_lock = threading.Lock()


class Terminated(SystemExit):
    """Raised in the main thread when the process is asked to end."""


def register(thing: _Downable) -> None:
    with _lock:
        if thing not in _live:
            _live.append(thing)


def unregister(thing: _Downable) -> None:
    with _lock:
        if thing in _live:
            _live.remove(thing)


def down_all() -> None:
    with _lock:
        things = list(reversed(_live))
    for thing in things:
        try:
            thing.down()
        except Exception:
            pass  # at exit: take down what can be taken down


def _on_signal(signum: int, frame: Any) -> None:
    raise Terminated(128 + signum)


def install_signal_handlers() -> dict[int, Any]:
    """SIGTERM and SIGHUP unwind the stack like Ctrl-C does (main thread only,
    and only where nobody set a handler of their own). Returns what to restore."""
    previous: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            previous[sig] = signal.signal(sig, _on_signal)
    return previous


@contextlib.contextmanager
def unwinding_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind while the block runs; the handlers before it come back after."""
    previous = install_signal_handlers()
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


atexit.register(down_all)
