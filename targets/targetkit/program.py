"""A target program's main: read the environment contract, then start."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import TypeVar

from .envconfig import ConfigError

Config = TypeVar("Config")


def run(program: str, load_config: Callable[[Mapping[str, str]], Config], start: Callable[[Config], int], *,
        error_status: int = 2) -> int:
    """The exit status of ``start(load_config(os.environ))``; a ConfigError is
    printed as "<program>: configuration error: ..." (it names the variable)
    and exits ``error_status`` instead, before anything starts."""
    try:
        config = load_config(os.environ)
    except ConfigError as exc:
        print(f"{program}: configuration error: {exc}", file=sys.stderr)
        return error_status
    return start(config)
