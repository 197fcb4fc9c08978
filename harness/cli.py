"""`harness up|run|report|images`: parses arguments, makes one library call."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import HarnessError
from .runtime import RUNTIMES


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="harness", description="Chaos harness: prove microservice patterns under failure.")
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="stand a target up, print its addresses and the Toxiproxy API, hold until Ctrl-C")
    up.add_argument("target", help="a target name (targets/<name>) or a topology file")
    up.add_argument("--variant", default="correct")
    up.add_argument("--runtime", choices=RUNTIMES, default="local")
    up.add_argument("--reports-dir", type=Path, default=Path("reports"))
    run = sub.add_parser("run", help="run experiments with pytest; writes reports/<run-id>/")
    run.add_argument("--runtime", choices=RUNTIMES, default="local")
    report = sub.add_parser("report", help="render a run folder's HTML again from its saved timelines")
    report.add_argument("folder", type=Path)
    images = sub.add_parser("images", help="build the docker images of targets (default: all) before a docker run")
    images.add_argument("targets", nargs="*", help="target names or topology files")
    return p


def main(argv: list[str] | None = None) -> int:
    args, rest = _parser().parse_known_args(argv)
    try:
        if args.command == "up":
            from .runtime.teardown import install_signal_handlers
            from .session import hold

            install_signal_handlers()  # SIGTERM and SIGHUP take it down like Ctrl-C
            hold(args.target, variant=args.variant, runtime=args.runtime, reports_dir=args.reports_dir.resolve())
            return 0
        if args.command == "run":
            import pytest

            return int(pytest.main([*rest, "--runtime", args.runtime]))
        if rest:
            _parser().error(f"unrecognized arguments: {' '.join(rest)}")
        if args.command == "images":
            from .runtime.docker.prebuild import prebuild

            print("\n".join(prebuild(args.targets)))
            return 0
        from .report import rerender

        print(rerender(args.folder))
        return 0
    except HarnessError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
