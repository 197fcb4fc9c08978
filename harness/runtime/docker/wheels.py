"""The wheel folder target images install from, filled on the host.

Images cannot reach a package index here, so a Dockerfile names what it
needs in ``ARG WHEELS="pkg==x ..."`` and installs it with
``pip install --no-index --find-links /wheels $WHEELS``; the harness fills
that folder first with ``pip download`` (wheels for the image's Python),
pinned by the project's requirements.lock, falling back to ``pip wheel``
on the host for a package published only as a source archive.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

from ...errors import SetupError

IMAGE_PYTHON = "3.11"  # Debian bookworm's python3 (glibc 2.36), what the base image runs
LOCK = Path(__file__).resolve().parents[3] / "requirements.lock"
_WHEELS_ARG = re.compile(r"""^\s*ARG\s+WHEELS=(["']?)(?P<reqs>[^"'\n]*)\1\s*$""", re.M)


def cache_dir() -> Path:
    """$HARNESS_CACHE, else ~/.cache/chaos-harness: wheels and build contexts."""
    return Path(os.environ.get("HARNESS_CACHE") or Path.home() / ".cache" / "chaos-harness")


def requirements(dockerfile: Path) -> list[str]:
    """The requirements a Dockerfile declares in its ARG WHEELS default."""
    m = _WHEELS_ARG.search(dockerfile.read_text(encoding="utf-8"))
    return m.group("reqs").split() if m else []


def wheel_folder(reqs: list[str]) -> Path:
    """A folder holding wheels for reqs and their dependencies, filled once."""
    lock = LOCK.read_bytes() if LOCK.exists() else b""
    key = hashlib.sha256(" ".join(sorted(reqs)).encode() + IMAGE_PYTHON.encode() + lock).hexdigest()[:16]
    folder = cache_dir() / "wheels" / key
    done = folder / ".complete"
    if not reqs or done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    constraints = ["-c", str(LOCK)] if LOCK.exists() else []
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    download = [*pip, "download", "--dest", str(folder), "--only-binary=:all:", "--python-version", IMAGE_PYTHON,
                "--implementation", "cp", "--platform", f"manylinux_2_36_{platform.machine()}", *constraints, *reqs]
    first = subprocess.run(download, capture_output=True, text=True)
    if first.returncode != 0:
        build = [*pip, "wheel", "--wheel-dir", str(folder), *constraints, *reqs]
        second = subprocess.run(build, capture_output=True, text=True)
        if second.returncode != 0:
            raise SetupError(
                f"cannot get wheels for {' '.join(reqs)} (pip download: {first.stderr.strip()[-400:]}; "
                f"pip wheel: {second.stderr.strip()[-400:]}). Check the names in the Dockerfile's ARG WHEELS."
            )
    done.write_text(" ".join(reqs))
    return folder
