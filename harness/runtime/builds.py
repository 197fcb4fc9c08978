"""Images built on the base image: a target's (from its Dockerfile) and Toxiproxy's.

Each build context is staged in a temporary folder: ``Dockerfile``,
``target/`` (the target's folder) and ``wheels/`` (see wheels.py). The tag
carries a hash of everything in the context plus the base image, so an
unchanged target is not built again; ``BASE`` is a build argument, so the
same Dockerfile builds on ``python:3.11-slim-bookworm`` where a registry
answers.

A target that needs Debian packages (a database server, say) names them in
``ARG DEBS="postgresql-15"``. They go into an image of their own built on
the base (``chaos-harness/debs-<names>:<hash>``), which the target is then
built on: only targets that need them pay for them, the apt-get runs once
per package list and base image rather than on every change to the
target's code, and the base image's recipe stays as it is. That build runs
apt-get against the base image's Debian mirror (the one debootstrap used)
over the host's network, so it reaches what the host reaches, NAT or not.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from ..errors import SetupError
from . import kit
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

DEBS_DOCKERFILE = """\
ARG BASE
FROM ${BASE}
COPY install-debs.sh /tmp/install-debs.sh
RUN sh /tmp/install-debs.sh {packages} && rm /tmp/install-debs.sh
"""
# Installs only what is missing: an own HARNESS_BASE_IMAGE may have it all, and then
# needs no network. A file, so a failed build names it rather than a page of shell.
INSTALL_DEBS = """\
#!/bin/sh
set -e
missing=""
for p in "$@"; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing="$missing $p"
done
[ -n "$missing" ] || exit 0
# No package starts its service during the build.
printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
case "$missing" in *postgresql*)  # no cluster of the package's own: a run makes its own
    mkdir -p /etc/postgresql-common/createcluster.d
    echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/harness.conf;;
esac
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /usr/sbin/policy-rc.d
"""
_DEBS_ARG = re.compile(r"""^\s*ARG\s+DEBS=(["']?)(?P<names>[^"'\n]*)\1\s*$""", re.M)
_DEB_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")  # Debian policy 5.6.1


def debian_packages(dockerfile: Path) -> list[str]:
    """The Debian packages a Dockerfile declares in its ARG DEBS default (none without one)."""
    m = _DEBS_ARG.search(dockerfile.read_text(encoding="utf-8"))
    names = m.group("names").split() if m else []
    bad = [n for n in names if not _DEB_NAME.match(n)]
    if bad:
        raise SetupError(f"{dockerfile}: ARG DEBS names {' '.join(bad)}, which are no Debian package names "
                         "(lowercase letters, digits, + - .); list package names separated by spaces")
    return sorted(set(names))


def packages_image(client: "docker.DockerClient", packages: list[str], *, base: str, needed_by: str) -> str:
    """The base image plus Debian packages, built when missing; cached by package list and base image."""
    with tempfile.TemporaryDirectory(prefix="harness-debs-") as tmp:
        dockerfile, script = Path(tmp) / "Dockerfile", Path(tmp) / "install-debs.sh"
        dockerfile.write_text(DEBS_DOCKERFILE.replace("{packages}", " ".join(packages)))
        script.write_text(INSTALL_DEBS)
        slug = re.sub(r"[^a-z0-9]+", "-", "-".join(packages))[:60].strip("-")
        hint = ("apt-get in the build fetches from the base image's Debian mirror (its apt sources) "
                "over the host's network: check that the host reaches it, or set HARNESS_BASE_IMAGE to an image "
                f"that has {' '.join(packages)} already")
        return _build(client, f"chaos-harness/debs-{slug}", [("Dockerfile", dockerfile), ("install-debs.sh", script)],
                      base=base, what=f"image with the Debian packages {' '.join(packages)} ({needed_by})",
                      network_mode="host", hint=hint)


def target_image(client: "docker.DockerClient", folder: Path, *, base: str, nocache: bool = False) -> str:
    """The image of a target folder that holds a Dockerfile, built when missing
    (or, with nocache, built again from nothing: for the benchmark)."""
    dockerfile = folder / "Dockerfile"
    if not dockerfile.is_file():
        raise SetupError(f"{folder}: no Dockerfile, and a service without 'image' needs one for the docker runtime "
                         f"(see targets/chained/Dockerfile for the shape)")
    debs = debian_packages(dockerfile)
    if debs:  # its own cached image; nocache rebuilds only the target's part, as it leaves the base alone
        base = packages_image(client, debs, base=base, needed_by=f"ARG DEBS of {dockerfile}")
    wheels = wheel_folder(requirements(dockerfile))
    files = [(f"target/{p.relative_to(folder)}", p) for p in _files(folder)]
    files += [(f"kit/{kit.PACKAGE.name}/{p.relative_to(kit.PACKAGE)}", p) for p in _files(kit.PACKAGE)]
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
           nocache: bool = False, network_mode: str | None = None, hint: str = "") -> str:
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
                                    rm=True, forcerm=True, pull=False, nocache=nocache, network_mode=network_mode)
            except BuildError as exc:
                log = "".join(str(x.get("stream") or x.get("error") or "") for x in exc.build_log)
                advice = f"\n{hint}" if hint else ""
                raise SetupError(f"building the {what} ({tag}) failed: {exc.msg}{advice}\n{log[-1500:]}") from None
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
