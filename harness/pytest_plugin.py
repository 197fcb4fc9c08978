"""The pytest plugin: options, markers, and the ``harness`` fixture.

Thin by design: the fixture opens a ``HarnessRun`` (sweep, Toxiproxy,
run folder) only when a test asks for it, and closes it at the end of the
session, writing verdicts.json and the HTML report, also after failures
and Ctrl-C.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from .runtime import RUNTIMES
from .runtime.teardown import install_signal_handlers
from .session import HarnessRun


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "chaos harness")
    group.addoption("--runtime", choices=RUNTIMES, default="local", help="what runs the targets' services (default: local)")
    group.addoption("--reports-dir", default=None, metavar="DIR", help="where run folders go (default: <rootdir>/reports)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "experiment: an experiment against a real topology (slow)")
    config.addinivalue_line("markers", "extended: a case of the full matrix that CI leaves out for time "
                                       "(make test deselects it with -m 'not extended'; make demo runs it)")
    install_signal_handlers()


@pytest.fixture(scope="session")
def harness(pytestconfig: pytest.Config) -> Iterator[HarnessRun]:
    """The run every experiment of this session belongs to."""
    reports = pytestconfig.getoption("--reports-dir") or Path(pytestconfig.rootpath) / "reports"
    run = HarnessRun(reports_dir=Path(reports).resolve(), runtime=pytestconfig.getoption("--runtime"))
    try:
        yield run.open()
    finally:
        run.close()
        terminal = pytestconfig.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            terminal.write_line(f"harness report: {run.folder / 'index.html'}")
