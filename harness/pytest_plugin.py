"""The pytest plugin: options, markers, and the ``harness_run`` fixture.

Thin by design: the fixture opens a ``HarnessRun`` (sweep, Toxiproxy,
run folder) only when a test asks for it, and closes it at the end of the
session, writing verdicts.json and the HTML report, also after failures
and Ctrl-C. Only then does the plugin turn SIGTERM and SIGHUP into an
unwinding exception: a pytest session that runs no experiment keeps its
own signal handling.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from .runtime import RUNTIMES
from .runtime.teardown import unwinding_signals
from .session import HarnessRun


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "chaos harness")
    group.addoption("--runtime", choices=RUNTIMES, default="local", help="what runs the targets' services (default: local)")
    group.addoption("--reports-dir", default=None, metavar="DIR", help="where run folders go (default: <rootdir>/reports)")
    group.addoption("--shard", default=None, metavar="K/N", type=_shard,
                    help="run only the K-th of N shares of the selected tests (every N-th, in collection order), "
                         "so N sessions side by side run them all")


def _shard(text: str) -> tuple[int, int]:
    k, sep, n = text.partition("/")
    if not (sep and k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise pytest.UsageError(f"--shard {text!r}: give K/N with 1 <= K <= N, e.g. --shard 1/2")
    return int(k), int(n)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "experiment: an experiment against a real topology (slow)")
    config.addinivalue_line("markers", "extended: a case of the full matrix that CI leaves out for time "
                                       "(make test deselects it with -m 'not extended'; make demo runs it)")


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected theirs: shares of what will run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard = config.getoption("--shard")
    if shard is None:
        return
    k, n = shard
    kept = [item for i, item in enumerate(items) if i % n == k - 1]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


@pytest.fixture(scope="session")
def harness_run(pytestconfig: pytest.Config) -> Iterator[HarnessRun]:
    """The run every experiment of this session belongs to."""
    reports = pytestconfig.getoption("--reports-dir") or Path(pytestconfig.rootpath) / "reports"
    run = HarnessRun(reports_dir=Path(reports).resolve(), runtime=pytestconfig.getoption("--runtime"))
    with unwinding_signals():  # SIGTERM/SIGHUP unwind like Ctrl-C: faults reverted, report written
        try:
            yield run.open()
        finally:
            run.close()
            terminal = pytestconfig.pluginmanager.get_plugin("terminalreporter")
            if terminal is not None:
                terminal.write_line(f"harness report: {run.folder / 'index.html'}")
