"""Figures for the docker runtime, printed beside the local runtime's.

    .venv/bin/python bench/bench_docker.py [--cold] [--repeat N] [--targets chained messaging/rabbitmq.toml ...]

A target is a folder of targets/ (its topology.toml), a topology file in one
(messaging/rabbitmq.toml: the same image, another broker), or any folder.

1. base image: ensure_base_image() when cached (a tag lookup); with --cold
   also a full build (debootstrap from the Debian mirror, tar, docker import).
2. target images: built again from nothing (no layer cache: venv + wheels +
   copy) and cached (the tag's hash matches, nothing is sent to the engine).
3. cold start: runtime.up() of each target on local and on docker (images
   already built), median and worst of N, and the teardown (down()).

Figures, not pass/fail: a target that cannot run on a runtime prints why.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.errors import HarnessError  # noqa: E402
from harness.runtime import make_runtime, make_toxiproxy  # noqa: E402
from harness.runtime.docker import engine  # noqa: E402
from harness.runtime.docker.builds import target_image  # noqa: E402
from harness.runtime.docker.images import BaseRecipe, build_base_image, ensure_base_image  # noqa: E402
from harness.runtime.labels import new_run_id  # noqa: E402
from harness.topology import load_topology  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def base_figures(*, cold: bool) -> None:
    client = engine.client()
    if cold:
        print(f"base image, cold (debootstrap + import): {timed(lambda: build_base_image(client, BaseRecipe())):7.1f} s")
    ensure_base_image(client)
    print(f"base image, cached (tag lookup):          {timed(lambda: ensure_base_image(client)) * 1000:7.1f} ms")


def folder_of(target: Path) -> Path:
    return target if target.is_dir() else target.parent


def label(target: Path) -> str:
    return target.name if target.is_dir() else f"{target.parent.name}/{target.stem}"


def image_figures(targets: list[Path]) -> None:
    client = engine.client()
    base = ensure_base_image(client)
    for folder in dict.fromkeys(folder_of(t) for t in targets):  # one image per folder
        if not (folder / "Dockerfile").exists():
            print(f"target image {folder.name}: no Dockerfile")
            continue
        fresh = timed(lambda: target_image(client, folder, base=base, nocache=True))
        cached = timed(lambda: target_image(client, folder, base=base))
        print(f"target image {folder.name:<16} from nothing {fresh:6.1f} s   cached {cached * 1000:6.1f} ms")


def start_figures(runtime: str, targets: list[Path], repeat: int) -> None:
    run_id = new_run_id()
    with tempfile.TemporaryDirectory(prefix="bench-docker-") as tmp:
        host = make_toxiproxy(runtime, run_id=run_id, log_path=Path(tmp) / "toxiproxy.log")
        toxiproxy_s = timed(host.start)
        try:
            print(f"{runtime:>6}: Toxiproxy up (first run also builds its image) {toxiproxy_s:5.2f} s")
            for target in targets:
                _start_target(runtime, target, host, run_id, Path(tmp), repeat)
        finally:
            host.stop()


def _start_target(runtime: str, target: Path, host: object, run_id: str, tmp: Path, repeat: int) -> None:
    topo = load_topology(target).with_variant("correct")
    name, slug = label(target), label(target).replace("/", "-")
    ups, downs = [], []
    try:
        for i in range(repeat + 1):  # the first one builds images on docker: left out
            rt = make_runtime(runtime, topo, run_id=run_id, toxiproxy=host.client, log_dir=tmp / f"{slug}-{i}",
                              prefix=f"{run_id}.{slug}.{i}")
            up = timed(rt.up)
            downs.append(timed(rt.down))
            ups.append(up)
    except HarnessError as exc:
        print(f"{runtime:>6}: {name:<20} cannot start: {str(exc).splitlines()[0][:160]}")
        return
    ups, downs = ups[1:], downs[1:]
    print(f"{runtime:>6}: {name:<20} cold start median {statistics.median(ups) * 1000:6.0f} ms, worst "
          f"{max(ups) * 1000:6.0f} ms; down median {statistics.median(downs) * 1000:6.0f} ms  ({len(ups)} runs)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cold", action="store_true", help="also build the base image from nothing (about 80 s)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--targets", nargs="*", default=["chained", "circuit_breaker", "bulkhead", "messaging",
                                                     "messaging/rabbitmq.toml", "gateway", "discovery"])
    args = p.parse_args()
    ok, why = engine.available()
    if not ok:
        sys.exit(f"no Docker engine: {why}")
    targets = [ROOT / "targets" / t if (ROOT / "targets" / t).exists() else Path(t).resolve() for t in args.targets]
    base_figures(cold=args.cold)
    image_figures(targets)
    for runtime in ("local", "docker"):
        start_figures(runtime, targets, args.repeat)


if __name__ == "__main__":
    main()
