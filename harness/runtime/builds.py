"""Images built on the base image: a target's (from its Dockerfile) and Toxiproxy's.

Each build context is staged in a temporary folder: ``Dockerfile``,
``target/`` (the target's folder) and ``wheels/`` (see wheels.py). The tag
carries a hash of everything in the context plus the base image, so an
unchanged target is not built again; ``BASE`` is a build argument, so the
same Dockerfile builds on ``python:3.11-slim-bookworm`` where a registry
answers.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from ..errors import SetupError
from .images import has_image
from .wheels import requirements, wheel_folder

if TYPE_CHECKING:
    import docker

CONTEXT_LABEL = "harness.context"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "*.data", "*.log")
_lock = threading.Lock()

TOXIPROXY_DOCKERFILE = """\
ARG BASE
FROM ${BASE}
COPY toxiproxy-server /usr/local/bin/toxiproxy-server
ENTRYPOINT ["/usr/local/bin/toxiproxy-server"]
CMD ["-host", "0.0.0.0", "-port", "8474"]
"""


def target_image(client: "docker.DockerClient", folder: Path, *, base: str, nocache: bool = False) -> str:
    """The image of a target folder that holds a Dockerfile, built when missing
    (or, with nocache, built again from nothing: for the benchmark)."""
    dockerfile = folder / "Dockerfile"
    if not dockerfile.is_file():
        raise SetupError(f"{folder}: no Dockerfile, and a service without 'image' needs one for the docker runtime "
                         f"(see targets/chained/Dockerfile for the shape)")
    wheels = wheel_folder(requirements(dockerfile))
    files = [(f"target/{p.relative_to(folder)}", p) for p in _files(folder)]
    files += [(f"wheels/{p.name}", p) for p in sorted(wheels.glob("*.whl"))]
    files.append(("Dockerfile", dockerfile))
    name = f"chaos-harness/target-{folder.name.replace('_', '-').lower()}"
    return _build(client, name, files, base=base, what=f"target image of {folder}", nocache=nocache)


def toxiproxy_image(client: "docker.DockerClient", binary: str, *, base: str) -> str:
    """Toxiproxy's image: the host's toxiproxy-server binary on the base image."""
    with tempfile.TemporaryDirectory(prefix="harness-toxiproxy-") as tmp:
        dockerfile = Path(tmp) / "Dockerfile"
        dockerfile.write_text(TOXIPROXY_DOCKERFILE)
        return _build(client, "chaos-harness/toxiproxy", [("Dockerfile", dockerfile), ("toxiproxy-server", Path(binary))],
                      base=base, what="Toxiproxy image")


def _files(folder: Path) -> Iterable[Path]:
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and not any(_IGNORE(str(folder), [part]) for part in rel.parts):
            yield p


def _digest(files: list[tuple[str, Path]], base_id: str) -> str:
    h = hashlib.sha256(base_id.encode())
    for arcname, path in files:
        h.update(arcname.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def _build(client: "docker.DockerClient", name: str, files: list[tuple[str, Path]], *, base: str, what: str,
           nocache: bool = False) -> str:
    from docker.errors import APIError, BuildError

    base_id = _base_id(client, base, what)
    digest = _digest(files, base_id)
    tag = f"{name}:{digest}"
    with _lock:
        if not nocache and has_image(client, tag, CONTEXT_LABEL, digest):
            return tag
        with tempfile.TemporaryDirectory(prefix="harness-build-") as ctx:
            for arcname, path in files:
                dest = Path(ctx) / arcname
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest)
            try:
                client.images.build(path=ctx, tag=tag, buildargs={"BASE": base}, labels={CONTEXT_LABEL: digest},
                                    rm=True, forcerm=True, pull=False, nocache=nocache)
            except BuildError as exc:
                log = "".join(str(x.get("stream") or x.get("error") or "") for x in exc.build_log)
                raise SetupError(f"building the {what} ({tag}) failed: {exc.msg}\n{log[-1500:]}") from None
            except APIError as exc:
                raise SetupError(f"building the {what} ({tag}): the engine refused: {exc.explanation}") from None
        _prune(client, name, keep=tag)
    return tag


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
    try:
        client.images.prune(filters={"dangling": True, "label": CONTEXT_LABEL})  # a tag built again leaves one
    except APIError:
        pass  # another prune is running
