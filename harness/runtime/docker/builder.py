"""Building one image from staged files, cached by what went into it.

The context is staged in a temporary folder from (name in context, file)
pairs. The tag carries a hash of every staged file, the build arguments and
the base image's id, so an unchanged image is not built again; older builds
of the same image are pruned once they are an hour old.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from ...errors import SetupError
from .buildlock import building, image_lock, no_build_running
from .images import has_image

if TYPE_CHECKING:
    import docker

CONTEXT_LABEL = "harness.context"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "*.data", "*.log")
Staged = list[tuple[str, Path]]


def files_below(folder: Path, into: str) -> Staged:
    """Every file of a folder (no caches, logs or data), staged under `into`/."""
    return [(f"{into}/{p.relative_to(folder)}", p) for p in _files(folder)]


def _files(folder: Path) -> Iterable[Path]:
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and not any(_IGNORE(str(folder), [part]) for part in rel.parts):
            yield p


def _digest(files: Staged, base_id: str, args: dict[str, str]) -> str:
    h = hashlib.sha256(base_id.encode() + repr(sorted(args.items())).encode())
    for arcname, path in files:
        h.update(arcname.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def build(client: "docker.DockerClient", name: str, files: Staged, *, base: str, what: str,
          args: dict[str, str] | None = None, nocache: bool = False, network_mode: str | None = None,
          hint: str = "") -> str:
    """The tag of `name` built from `files` on `base` (build argument BASE), built when missing."""
    from docker.errors import APIError, BuildError

    args = dict(args or {})
    base_id = _base_id(client, base, what)
    digest = _digest(files, base_id, args)
    tag = f"{name}:{digest}"
    with image_lock(name), building():
        if not nocache and has_image(client, tag, CONTEXT_LABEL, digest):
            return tag
        with tempfile.TemporaryDirectory(prefix="harness-build-") as ctx:
            for arcname, path in files:
                dest = Path(ctx) / arcname
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest)
            try:
                client.images.build(path=ctx, tag=tag, buildargs={"BASE": base, **args}, labels={CONTEXT_LABEL: digest},
                                    rm=True, forcerm=True, pull=False, nocache=nocache, network_mode=network_mode)
            except BuildError as exc:
                log = "".join(str(x.get("stream") or x.get("error") or "") for x in exc.build_log)
                advice = f"\n{hint}" if hint else ""
                raise SetupError(f"building the {what} ({tag}) failed: {exc.msg}{advice}\n{log[-1500:]}") from None
            except APIError as exc:
                raise SetupError(f"building the {what} ({tag}): the engine refused: {exc.explanation}") from None
        _prune(client, name, keep=tag)
    _prune_dangling(client)
    return tag


def _prune_dangling(client: "docker.DockerClient") -> None:
    """Removes untagged builds (a tag built again leaves one), unless a build runs anywhere."""
    from docker.errors import APIError

    with no_build_running() as alone:
        if alone:
            try:
                client.images.prune(filters={"dangling": True, "label": CONTEXT_LABEL})
            except APIError:
                pass  # another prune is running


def _base_id(client: "docker.DockerClient", base: str, what: str) -> str:
    """The base image's id (a base rebuilt under the same tag is a new image);
    pulled first when missing, which works only where a registry answers
    (HARNESS_BASE_IMAGE=python:3.11-slim-bookworm, say)."""
    from docker.errors import APIError, ImageNotFound

    try:
        return client.images.get(base).id
    except ImageNotFound:
        pass
    try:
        return client.images.pull(base).id
    except APIError as exc:
        raise SetupError(f"the base image {base} of the {what} is not here and cannot be pulled "
                         f"({exc.explanation}); unset HARNESS_BASE_IMAGE to build the Debian base locally") from None


def _prune(client: "docker.DockerClient", name: str, *, keep: str, older_than_s: float = 3600.0) -> None:
    """Removes older builds of the same image. Only those over an hour old: another
    checkout may be about to start one it just built; one in use stays anyway."""
    from docker.errors import APIError

    now = datetime.now(timezone.utc)
    for image in client.images.list(name=name):
        created = datetime.fromisoformat(image.attrs["Created"][:19]).replace(tzinfo=timezone.utc)
        for tag in image.tags:
            if tag != keep and (now - created).total_seconds() > older_than_s:
                try:
                    client.images.remove(tag)
                except APIError:
                    pass  # in use: the next build tries again

