"""Every image a docker run of some targets needs, built before the run, so
that its first experiment starts at once (``harness images``)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ...toxiproxy import find_server_binary
from ...topology import TARGETS_DIR, load_topology
from . import engine
from .builds import build_images
from .images import ensure_base_image


def known_targets() -> list[str]:
    return sorted(d.name for d in TARGETS_DIR.iterdir() if (d / "Dockerfile").is_file())


def prebuild(targets: list[str], *, say: Callable[[str], None] = print) -> list[str]:
    """The tags of the base, Toxiproxy and target images of `targets` (every
    target when none is named), built where missing."""
    client = engine.client()
    base = ensure_base_image(client, say=say)
    folders: list[Path] = []
    for name in targets or known_targets():
        folder = load_topology(name).folder
        if folder is not None and folder not in folders:
            folders.append(folder)
    say(f"building the images of {', '.join(f.name for f in folders)} on {base} (where missing)")
    return [base, *build_images(client, folders, base=base, toxiproxy=find_server_binary())]
