"""Figures for service discovery (etcd + Envoy), on the correct variant:

    .venv/bin/python bench/bench_discovery.py [--repeat 3] [--runtime local|docker]

Per fault, over the repeats (median, and the range):
- scale-out: registration -> first answer from the new instance, and
  registration -> the balancer lists it;
- crash and pause: fault -> the instance leaves the registry, and the
  balancer; requests failed meanwhile (TTL 2 s, heartbeat 0.5 s);
- graceful stop: deregistration -> process exit (the drain), failed requests;
- registry outage: requests failed while etcd was down; fault end (etcd
  healthy again) -> registry, balancer and clients agree.

It runs the experiments' own definitions (experiments/test_discovery.py)
through a HarnessRun into a temporary reports folder. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "experiments")]

import test_discovery as discovery  # noqa: E402

from harness.checks.discovery import membership_converges  # noqa: E402
from harness.session import HarnessRun  # noqa: E402

FIGURES = {  # fault -> (label, figure name in the fault's own verdict, scale) ...
    "scale-out": [("registered -> first answer", "delay_s", 1000, "ms"),
                  ("registered -> in balancer", "in_balancer_s", None, "ms")],
    "crash": [("fault -> left registry", "registry_left_after_s", 1, "s"),
              ("fault -> left balancer", "balancer_left_after_s", 1, "s"), ("failed requests", "failed_requests", 1, "")],
    "pause": [("fault -> left registry", "registry_left_after_s", 1, "s"),
              ("fault -> left balancer", "balancer_left_after_s", 1, "s"), ("failed requests", "failed_requests", 1, "")],
    "graceful-stop": [("deregistered -> exited", "drain", 1000, "ms"), ("failed requests", "failed_requests", 1, "")],
    "registry-outage": [("failed requests", "failed_requests", 1, ""), ("etcd back -> all agree", "converged", 1, "s")],
}


def figures(fault: str, frames) -> dict[str, float | None]:
    own = discovery.own_check(fault, frames).figures
    out: dict[str, float | None] = {}
    for label, key, scale, _ in FIGURES[fault]:
        if key == "in_balancer_s":
            value = None if own.get("in_balancer_s") is None else (own["in_balancer_s"] - own["registered_s"]) * 1000
        elif key == "drain":
            value = None if None in (own.get("exited_s"), own.get("left_registry_s")) else \
                (own["exited_s"] - own["left_registry_s"]) * 1000
        elif key == "converged":
            value = membership_converges(frames, service=discovery.SERVICE, initial=discovery.SPEC["instances"],
                                         bound_s=discovery.SPEC["converge_bound_s"],
                                         field=discovery.FIELD).figures.get("converged_after_s")
        else:
            value = None if own.get(key) is None else own[key] * scale
        out[label] = value
    return out


def summary(values: list[float | None]) -> str:
    seen = [v for v in values if v is not None]
    if not seen:
        return "never"
    text = f"{statistics.median(seen):.2f}" if max(seen) < 10 else f"{statistics.median(seen):.0f}"
    return text + (f" ({min(seen):.2f}-{max(seen):.2f})" if len(seen) > 1 else "") + \
        (f", {len(values) - len(seen)} never" if len(seen) < len(values) else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--runtime", choices=("local", "docker"), default="local")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-discovery-"))
    run = HarnessRun(reports_dir=folder, runtime=args.runtime).open()
    try:
        print(f"discovery (correct, {args.runtime}), {args.repeat} runs per fault: median (min-max)")
        for fault in FIGURES:
            seen: dict[str, list[float | None]] = {}
            for i in range(args.repeat):
                result = discovery.run(run, fault, "correct", name=f"bench-discovery-{fault}-{i}")
                for label, value in figures(fault, result.frames).items():
                    seen.setdefault(label, []).append(value)
            for (label, _, _, unit), values in zip(FIGURES[fault], seen.values()):
                print(f"  {fault:<16} {label:<28} {summary(values)} {unit}")
    finally:
        run.close()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
