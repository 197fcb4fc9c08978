"""The `harness` command as a user runs it: a real subprocess, real signals."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from harness.runtime.labels import OWNER_ENV, process_labels
from harness.wait import NotYet, wait_until

CLI = [sys.executable, "-m", "harness.cli"]


def owned_pids(owner: int) -> list[int]:
    """Live processes labelled as started by the given harness process."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            labels = process_labels(int(entry.name))
            if labels and labels.get(OWNER_ENV) == str(owner):
                found.append(int(entry.name))
    return found


def read_until(proc: subprocess.Popen[str], marker: str, timeout_s: float) -> list[str]:
    """Lines of proc's stdout up to the one containing marker (deadline-bound)."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    seen: list[str] = []

    def printed() -> bool:
        while not lines.empty():
            seen.append(lines.get())
            if marker in seen[-1]:
                return True
        if proc.poll() is not None and lines.empty():
            raise AssertionError(f"harness exited with {proc.returncode} before printing {marker!r}: {''.join(seen)}")
        raise NotYet("".join(seen[-3:]) or "nothing printed yet")

    wait_until(printed, what=f"{marker!r} printed", timeout_s=timeout_s)
    return seen


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_up_prints_addresses_serves_and_cleans_up_when_stopped(tmp_path, stop):
    with subprocess.Popen([*CLI, "up", "chained", "--reports-dir", str(tmp_path)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        _hold_and_interrupt(proc, stop)
    assert owned_pids(proc.pid) == []


def _hold_and_interrupt(proc: subprocess.Popen[str], stop: signal.Signals) -> None:
    try:
        lines = read_until(proc, "Ctrl-C", timeout_s=60)
        entry = next(line.split("entry:")[1].strip() for line in lines if "entry:" in line)
        assert entry.startswith("http://127.0.0.1:")
        assert any("Toxiproxy API: http://127.0.0.1:" in line for line in lines)
        answer = httpx.get(entry, timeout=5)
        assert answer.status_code == 200 and answer.json()["path"] == ["a", "b", "c"]
        assert owned_pids(proc.pid), "no labelled processes while the target is up"
        proc.send_signal(stop)
        assert proc.wait(timeout=30) in (0, 128 + stop)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_up_unknown_target_names_it_and_exits_2(tmp_path):
    done = subprocess.run([*CLI, "up", "no-such-pattern", "--reports-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "no-such-pattern" in done.stderr


def test_report_of_a_missing_folder_is_a_clear_error(tmp_path):
    done = subprocess.run([*CLI, "report", str(tmp_path / "nope")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "nope" in done.stderr and "holds no saved run" in done.stderr


def test_report_renders_a_saved_run_again(tmp_path):
    run = tmp_path / "20260101-000000-abcdef"
    (run / "experiments").mkdir(parents=True)
    (run / "verdicts.json").write_text("[]")
    done = subprocess.run([*CLI, "report", str(run)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (run / "index.html").is_file() and (tmp_path / "index.html").is_file()
