"""The HTML report: one page per run, and an index of runs.

Self-contained pages (inline CSS and SVG, no scripts or fonts) so a report
opens from disk, from a CI artifact, or from an air-gapped machine.

    render_run(run_dir)        -> run_dir/index.html
    render_index(reports_root) -> reports_root/index.html, reports_root/latest
    rerender(run_dir)          -> both, from the run's saved timeline files
"""

from pathlib import Path

from harness.errors import ReportError


from harness.report.index import render_index
from harness.report.page import render_run

__all__ = ["render_index", "render_run", "rerender"]


def rerender(run_dir: Path) -> Path:
    """Render a saved run again (after a report change, or on another machine)."""
    run_dir = Path(run_dir).resolve()
    if not (run_dir / "experiments").is_dir() and not (run_dir / "verdicts.json").is_file():
        raise ReportError(
            f"{run_dir} holds no saved run (no experiments/ folder or verdicts.json); "
            "pass a run folder such as reports/latest or reports/<run-id>"
        )
    page = render_run(run_dir)
    render_index(run_dir.parent)
    return page

