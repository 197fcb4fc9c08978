"""The base image: Debian from Debian's packages, since no registry answers.

``debootstrap`` builds the recipe into a folder, ``docker import`` turns it
into an image tagged ``chaos-harness/base:<recipe hash>`` and labelled with
the hash, so it is built once and again only when the recipe changes.
Set ``HARNESS_BASE_IMAGE`` to use an image of your own instead (e.g.
``python:3.11-slim-bookworm`` where a registry is reachable).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ...errors import SetupError
from .buildlock import image_lock

if TYPE_CHECKING:
    import docker

RECIPE_LABEL = "harness.recipe"
DEFAULT_MIRROR = "http://deb.debian.org/debian"


@dataclass(frozen=True)
class BaseRecipe:
    """What goes into the base image; its hash names the image."""

    suite: str = "bookworm"
    variant: str = "minbase"
    # python3-venv brings ensurepip, so Dockerfiles make a venv and pip-install wheels into it.
    packages: tuple[str, ...] = ("python3", "python3-venv")
    changes: tuple[str, ...] = ('CMD ["/bin/bash"]', "ENV LANG=C.UTF-8")

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    @property
    def tag(self) -> str:
        return f"chaos-harness/base:{self.digest}"


def apt_mirror(suite: str, sources: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt uses for the suite (debootstrap needs one)."""
    files = [sources / "sources.list", *sorted((sources / "sources.list.d").glob("*.sources")),
             *sorted((sources / "sources.list.d").glob("*.list"))]
    for f in files:
        text = f.read_text(errors="replace") if f.is_file() else ""
        for stanza in re.split(r"\n\s*\n", text):  # deb822: URIs/Suites per stanza
            uris, suites = re.search(r"^URIs:\s*(\S+)", stanza, re.M), re.search(r"^Suites:(.*)$", stanza, re.M)
            if uris and suites and suite in suites.group(1).split():
                return uris.group(1)
        for m in re.finditer(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", text, re.M):  # one-line format
            if m.group(2) == suite:
                return m.group(1)
    return DEFAULT_MIRROR


def ensure_base_image(client: "docker.DockerClient", recipe: BaseRecipe = BaseRecipe(), *,
                      say: Callable[[str], None] = lambda _: None) -> str:
    """The base image's tag, built first when no image carries the recipe's hash."""
    own = os.environ.get("HARNESS_BASE_IMAGE")
    if own:
        return own
    with image_lock(recipe.tag.split(":")[0]):
        if not has_image(client, recipe.tag, RECIPE_LABEL, recipe.digest):
            say(f"building the base image {recipe.tag} with debootstrap (once per recipe, about 1-2 min)")
            build_base_image(client, recipe)
    return recipe.tag


def has_image(client: "docker.DockerClient", tag: str, label: str, value: str) -> bool:
    """True when the tag exists and carries label=value. By tag, since images
    built FROM another inherit its labels."""
    from docker.errors import ImageNotFound

    try:
        return client.images.get(tag).labels.get(label) == value
    except ImageNotFound:
        return False


def build_base_image(client: "docker.DockerClient", recipe: BaseRecipe, *, mirror: str | None = None) -> None:
    """debootstrap into a temporary folder, tar it, docker import it with the recipe's label."""
    if shutil.which("debootstrap") is None:
        raise SetupError("debootstrap not found: it builds the base image. Run `make docker-engine` "
                         "(or apt-get install debootstrap), or set HARNESS_BASE_IMAGE to an image you have.")
    mirror = mirror or apt_mirror(recipe.suite)
    with tempfile.TemporaryDirectory(prefix="harness-base-") as tmp:
        root, tar = Path(tmp) / "root", Path(tmp) / "root.tar"
        _run(["debootstrap", f"--variant={recipe.variant}", f"--include={','.join(recipe.packages)}",
              recipe.suite, str(root), mirror], what=f"debootstrap {recipe.suite} from {mirror}", log=Path(tmp) / "log")
        for deb in (root / "var" / "cache" / "apt" / "archives").glob("*.deb"):
            deb.unlink()  # 40 MB the image does not need
        _run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(tar), "."], what="tar the base root", log=Path(tmp) / "log")
        changes = [*recipe.changes, f"LABEL {RECIPE_LABEL}={recipe.digest}"]
        repo, tag = recipe.tag.split(":")
        client.api.import_image(src=str(tar), repository=repo, tag=tag, changes=changes)
    if not has_image(client, recipe.tag, RECIPE_LABEL, recipe.digest):
        raise SetupError(f"docker import of the base image {recipe.tag} left no image labelled {RECIPE_LABEL}={recipe.digest}")


def _run(cmd: list[str], *, what: str, log: Path) -> None:
    with log.open("ab") as out:
        code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise SetupError(f"{what} failed (exit {code}; it needs root and the Debian mirror). Command: {' '.join(cmd)}\n{tail}")
