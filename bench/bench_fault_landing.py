"""How long each fault kind takes from apply to the harness's evidence that it landed.

    .venv/bin/python bench/bench_fault_landing.py [reports/<run-id>]   # default: reports/latest

Reads the `fault_effect` events of every experiment of a run (written by
harness.landing while the fault was on) and prints, per fault kind: how
many windows were watched, how many landed, were not seen or could not be
verified, and the median and worst `seen_after_ms`. A latency toxic's
figure includes the toxic's own latency (the canary's answer is that late
by design). Figures, not pass/fail.
"""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.events import FaultEffect  # noqa: E402
from harness.timeline import TIMELINE_FILE, read_jsonl  # noqa: E402


def effects_of(run: Path) -> list[FaultEffect]:
    found = []
    for timeline in sorted(run.glob(f"experiments/*/{TIMELINE_FILE}")):
        found += [FaultEffect.from_json(e) for e in read_jsonl(timeline) if e.get("kind") == FaultEffect.kind]
    return found


def main(argv: list[str]) -> int:
    run = Path(argv[0]) if argv else Path("reports/latest")
    effects = effects_of(run.resolve())
    if not effects:
        print(f"no fault_effect events under {run}/experiments (a run made before the harness watched faults?)")
        return 1
    by_kind: dict[str, list[FaultEffect]] = defaultdict(list)
    for e in effects:
        by_kind[e.fault.kind].append(e)
    print(f"run {run.resolve().name}: {len(effects)} fault windows watched")
    print(f"{'fault kind':<22}{'windows':>8}{'landed':>8}{'not seen':>9}{'unverif.':>9}{'p50 ms':>9}{'max ms':>9}")
    for kind, rows in sorted(by_kind.items()):
        seen = [float(e.figures["seen_after_ms"]) for e in rows if e.landed and "seen_after_ms" in e.figures]
        p50 = f"{statistics.median(seen):.0f}" if seen else "-"
        worst = f"{max(seen):.0f}" if seen else "-"
        print(f"{kind:<22}{len(rows):>8}{sum(e.landed is True for e in rows):>8}{sum(e.landed is False for e in rows):>9}"
              f"{sum(e.landed is None for e in rows):>9}{p50:>9}{worst:>9}")
    for e in effects:
        if e.landed is False:
            print(f"  not seen: {e.fault.kind} on {e.fault.on}: {e.reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
