"""The images the harness builds on the base image, each cached by what went into it.

A target's image is three layers of images, so that a change to a target's
code rebuilds only its own small layer:

1. Debian packages, when the target's Dockerfile names them in
   ``ARG DEBS="postgresql-15"``: ``chaos-harness/debs-<names>``, built once
   per package list and base (apt-get against the base image's Debian
   mirror, over the host's network).
2. Python: ``chaos-harness/python-<wheels>``, from the one build fragment
   below: a venv at /opt/venv with the wheels the Dockerfile names in
   ``ARG WHEELS="httpx==0.28.1"`` (downloaded on the host, wheels.py),
   PATH, PYTHONPATH=/opt/kit, WORKDIR /target, /data; its ONBUILD lines copy
   the target kit and the target's folder into whatever is built on it.
3. The target: its own Dockerfile, ``FROM ${BASE}`` with BASE the image
   of step 2, holding only what is the target's own (its CMD, a
   STOPSIGNAL).

``HARNESS_BASE_IMAGE=python:3.11-slim-bookworm`` builds the same chain on a
public image where a registry answers. Toxiproxy's image is the host's
binary on the base.
"""

from __future__ import annotations

import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import SetupError
from .. import kit
from .builder import Staged, build, files_below
from .wheels import requirements, wheel_folder

if TYPE_CHECKING:
    import docker

PYTHON_DOCKERFILE = """\
ARG BASE
FROM ${BASE}
COPY wheels/ /wheels/
RUN python3 -m venv /opt/venv \\
 && if [ -s /wheels/requirements.txt ]; then \\
        /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels -r /wheels/requirements.txt; \\
    fi \\
 && rm -rf /wheels
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PYTHONPATH={kit}
WORKDIR /target
RUN mkdir -p /data
ONBUILD COPY kit/ {kit}/
ONBUILD COPY target/ /target/
"""

TOXIPROXY_DOCKERFILE = """\
ARG BASE
FROM ${BASE}
COPY toxiproxy-server /usr/local/bin/toxiproxy-server
ENTRYPOINT ["/usr/local/bin/toxiproxy-server"]
CMD ["-host", "0.0.0.0", "-port", "8474", "-proxy-metrics"]
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


def _slug(names: list[str]) -> str:
    return re.sub(r"[^a-z0-9]+", "-", "-".join(names).lower())[:60].strip("-") or "none"


def packages_image(client: "docker.DockerClient", packages: list[str], *, base: str, needed_by: str) -> str:
    """The base image plus Debian packages, built when missing; cached by package list and base image."""
    with tempfile.TemporaryDirectory(prefix="harness-debs-") as tmp:
        dockerfile, script = Path(tmp) / "Dockerfile", Path(tmp) / "install-debs.sh"
        dockerfile.write_text(DEBS_DOCKERFILE.replace("{packages}", " ".join(packages)))
        script.write_text(INSTALL_DEBS)
        hint = ("apt-get in the build fetches from the base image's Debian mirror (its apt sources) "
                "over the host's network: check that the host reaches it, or set HARNESS_BASE_IMAGE to an image "
                f"that has {' '.join(packages)} already")
        return build(client, f"chaos-harness/debs-{_slug(packages)}", [("Dockerfile", dockerfile), ("install-debs.sh", script)],
                     base=base, what=f"image with the Debian packages {' '.join(packages)} ({needed_by})",
                     network_mode="host", hint=hint)


def python_image(client: "docker.DockerClient", reqs: list[str], *, base: str, nocache: bool = False) -> str:
    """The base plus a venv with `reqs` installed from wheels, and the ONBUILD steps every target image takes."""
    wheels = wheel_folder(reqs)
    with tempfile.TemporaryDirectory(prefix="harness-python-") as tmp:
        dockerfile, listed = Path(tmp) / "Dockerfile", Path(tmp) / "requirements.txt"
        dockerfile.write_text(PYTHON_DOCKERFILE.replace("{kit}", kit.IMAGE_PATH))
        listed.write_text("".join(f"{r}\n" for r in reqs))
        files: Staged = [("Dockerfile", dockerfile), ("wheels/requirements.txt", listed)]
        files += [(f"wheels/{p.name}", p) for p in sorted(wheels.glob("*.whl"))]
        return build(client, f"chaos-harness/python-{_slug(reqs)}", files, base=base,
                     what=f"Python image with {' '.join(reqs) or 'no wheels'}", nocache=nocache)


def target_image(client: "docker.DockerClient", folder: Path, *, base: str, nocache: bool = False) -> str:
    """The image of a target folder that holds a Dockerfile, built when missing
    (or, with nocache, built again, Debian packages apart: for the benchmark)."""
    dockerfile = folder / "Dockerfile"
    if not dockerfile.is_file():
        raise SetupError(f"{folder}: no Dockerfile, and a service without 'image' needs one for the docker runtime "
                         f"(see targets/chained/Dockerfile for the shape)")
    debs = debian_packages(dockerfile)
    if debs:
        base = packages_image(client, debs, base=base, needed_by=f"ARG DEBS of {dockerfile}")
    base = python_image(client, requirements(dockerfile), base=base, nocache=nocache)
    files = [("Dockerfile", dockerfile), *files_below(folder, "target"), *files_below(kit.PACKAGE, f"kit/{kit.PACKAGE.name}")]
    name = f"chaos-harness/target-{folder.name.replace('_', '-').lower()}"
    return build(client, name, files, base=base, what=f"target image of {folder}", nocache=nocache)


def toxiproxy_image(client: "docker.DockerClient", binary: str, *, base: str) -> str:
    """Toxiproxy's image: the host's toxiproxy-server binary on the base image."""
    with tempfile.TemporaryDirectory(prefix="harness-toxiproxy-") as tmp:
        dockerfile = Path(tmp) / "Dockerfile"
        dockerfile.write_text(TOXIPROXY_DOCKERFILE)
        return build(client, "chaos-harness/toxiproxy", [("Dockerfile", dockerfile), ("toxiproxy-server", Path(binary))],
                     base=base, what="Toxiproxy image")


def build_images(client: "docker.DockerClient", folders: list[Path], *, base: str, toxiproxy: str,
                 workers: int = 3) -> list[str]:
    """Toxiproxy's image and every folder's target image, several at a time (their
    Debian packages download side by side): what a docker run would build first."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = [pool.submit(toxiproxy_image, client, toxiproxy, base=base)]
        jobs += [pool.submit(target_image, client, folder, base=base) for folder in folders]
        return [job.result() for job in jobs]
