"""The harness's own tests: ``unit/`` starts nothing and runs in seconds;
``service/`` runs real processes and containers (marked ``service``)."""

from __future__ import annotations

from pathlib import Path

import pytest

SERVICE_DIR = Path(__file__).parent / "service"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "service: a test of the harness that runs real processes or containers")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVICE_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.service)
