"""An experiment name used twice in one run gets a folder of its own each time."""

from __future__ import annotations

from pathlib import Path

from harness.session import HarnessRun


def test_a_name_used_again_gets_the_next_free_suffix(tmp_path: Path) -> None:
    run = HarnessRun(reports_dir=tmp_path)  # not opened: only the folder naming is used
    assert run._unused_name("crash-correct") == "crash-correct"
    (run.folder / "experiments" / "crash-correct").mkdir(parents=True)
    assert run._unused_name("crash-correct") == "crash-correct-2"
    (run.folder / "experiments" / "crash-correct-2").mkdir()
    assert run._unused_name("crash-correct") == "crash-correct-3"
    assert run._unused_name("crash") == "crash"
