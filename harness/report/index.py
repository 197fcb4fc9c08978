"""The list of runs under reports/, and the `latest` link to the newest one.

The index reads only first lines and verdicts, not request rows, so it stays
fast however many runs pile up.
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path

from harness.report.page import RUN_PAGE, document, when
from harness.report.runfolder import EXPERIMENTS_DIR, VERDICTS_FILE, RunSummary, summarise

LATEST = "latest"
INDEX_PAGE = "index.html"


def run_dirs(reports_root: Path) -> list[Path]:
    """Folders that look like runs: real directories holding experiments or verdicts."""
    root = Path(reports_root)
    if not root.is_dir():
        return []
    return [
        p for p in root.iterdir()
        if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
        and ((p / EXPERIMENTS_DIR).is_dir() or (p / VERDICTS_FILE).exists())
    ]


def _newest_first(runs: list[RunSummary]) -> list[RunSummary]:
    def key(r: RunSummary) -> tuple[int, str]:
        return (r.started_ns if r.started_ns is not None else r.folder.stat().st_mtime_ns, r.run_id)

    return sorted(runs, key=key, reverse=True)


def point_latest(reports_root: Path, run_dir: Path) -> Path:
    """Makes reports_root/latest a relative symlink to run_dir, swapped in atomically."""
    link = Path(reports_root) / LATEST
    tmp = Path(reports_root) / f".{LATEST}.{os.getpid()}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(os.path.relpath(run_dir, reports_root), tmp, target_is_directory=True)
    os.replace(tmp, link)  # rename(2) over the old link: readers never see it missing
    return link


def _row(r: RunSummary, latest: bool) -> str:
    total = r.expected + r.unexpected
    if r.unexpected:
        tag = f"<span class='tag bad'>{r.unexpected} not as expected</span>"
    elif total:
        tag = "<span class='tag good'>all as expected</span>"
    else:
        tag = "<span class='tag'>no checks</span>"
    if r.incomplete:
        tag += f" <span class='tag incomplete'>{r.incomplete} unfinished</span>"
    page = f"{r.run_id}/{RUN_PAGE}"
    link = f"<a href='{escape(page)}'>{escape(r.run_id)}</a>"
    if not (r.folder / RUN_PAGE).exists():
        link += " <span class='muted'>(page not rendered)</span>"
    if latest:
        link += " <span class='tag variant'>latest</span>"
    if r.note:
        link += f" <span class='tag bad'>{escape(r.note)}</span>"
    return (
        f"<tr class='{'bad' if r.unexpected or r.incomplete else 'ok'}'>"
        f"<td>{link}</td><td>{escape(when(r.started_ns))}</td>"
        f"<td class='num'>{r.experiments}</td><td class='num'>{r.expected}</td>"
        f"<td class='num'>{r.unexpected}</td><td>{tag}</td></tr>"
    )


def _latest_css(runs: list[RunSummary]) -> str:
    if not runs or not runs[0].expected + runs[0].unexpected + runs[0].incomplete:
        return "none"
    return "bad" if runs[0].unexpected or runs[0].incomplete else "good"


def _latest_text(runs: list[RunSummary]) -> str:
    """The newest run's outcome in one line, so the colour is never the only signal."""
    if not runs:
        return "No runs yet"
    r = runs[0]
    total = r.expected + r.unexpected
    text = f"Latest run: {r.unexpected} of {total} checks not as expected" if r.unexpected else (
        f"Latest run: all {total} checks as expected" if total else "Latest run: no checks recorded"
    )
    if r.incomplete:
        text += f" · {r.incomplete} experiment{'s' * (r.incomplete != 1)} unfinished or unreadable"
    return text


def index_page(runs: list[RunSummary]) -> str:
    if runs:
        body = "".join(_row(r, i == 0) for i, r in enumerate(runs))
        table = (
            "<table><thead><tr><th>run</th><th>started</th><th>experiments</th><th>checks as expected</th>"
            f"<th>not as expected</th><th>outcome</th></tr></thead><tbody>{body}</tbody></table>"
        )
    else:
        table = "<p class='muted'>No runs yet.</p>"
    head = (
        f"<header class='summary {_latest_css(runs)}'><h1>Chaos harness reports</h1>"
        f"<div class='big'>{escape(_latest_text(runs))}</div>"
        f"<div class='counts'>{len(runs)} run{'s' * (len(runs) != 1)}"
        + (f" · latest: <a href='{LATEST}/{RUN_PAGE}'>{escape(runs[0].run_id)}</a>" if runs else "")
        + "</div></header>"
    )
    return document("Chaos harness reports", head + table)


def _summary(run_dir: Path) -> RunSummary:
    """A run that cannot be read is still listed, with nothing counted."""
    try:
        return summarise(run_dir)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        return RunSummary(run_dir.name, run_dir, None, 0, 0, 0, note=f"unreadable: {exc}")


def render_index(reports_root: Path) -> Path:
    """Writes reports_root/index.html (newest run first) and points `latest` at the newest run."""
    root = Path(reports_root)
    root.mkdir(parents=True, exist_ok=True)
    runs = _newest_first([_summary(d) for d in run_dirs(root)])
    out = root / INDEX_PAGE
    tmp = out.with_name(f".{INDEX_PAGE}.tmp")
    tmp.write_text(index_page(runs), encoding="utf-8")
    tmp.replace(out)
    if runs:
        link = root / LATEST
        if link.is_symlink() or not link.exists():
            point_latest(root, runs[0].folder)
    return out
