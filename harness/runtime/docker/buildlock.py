"""Locks that order image builds across every thread and process of this machine.

``image_lock(name)``: one build of an image at a time; a second builder
waits, then finds it built. ``building()``: held shared by every build, since
a build's image is dangling until it is tagged; ``no_build_running()`` takes
it exclusive without waiting, for the prune of dangling images.
"""

from __future__ import annotations

import contextlib
import fcntl
import re
from pathlib import Path
from typing import Iterator

from .wheels import cache_dir


def _path(name: str) -> Path:
    path = cache_dir() / "locks" / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _flock(name: str, how: int) -> Iterator[None]:
    with _path(name).open("a") as f:
        fcntl.flock(f, how)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def image_lock(name: str) -> contextlib.AbstractContextManager[None]:
    return _flock(f"image-{name}", fcntl.LOCK_EX)


def building() -> contextlib.AbstractContextManager[None]:
    return _flock("builds", fcntl.LOCK_SH)


@contextlib.contextmanager
def no_build_running() -> Iterator[bool]:
    """True (held until the block ends) when no build runs anywhere on this machine, else False."""
    with _path("builds").open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except BlockingIOError:
            alone = False
        try:
            yield alone
        finally:
            if alone:
                fcntl.flock(f, fcntl.LOCK_UN)
