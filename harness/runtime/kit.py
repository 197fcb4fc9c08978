"""Where the target kit lives, and how a service finds it.

``targets/targetkit`` is a package the reference targets share. Local
services get its folder appended to PYTHONPATH (a service's own modules and
the user's own PYTHONPATH still come first); target images get a copy in
/opt/kit (harness/runtime/docker/builds.py).
"""

from __future__ import annotations

import os

from ..topology import TARGETS_DIR

PACKAGE = TARGETS_DIR / "targetkit"
IMAGE_PATH = "/opt/kit"


def python_path(existing: str | None) -> str:
    """PYTHONPATH with the kit's folder appended."""
    parts = [p for p in (existing or "").split(os.pathsep) if p]
    return os.pathsep.join([*parts, str(TARGETS_DIR)])
