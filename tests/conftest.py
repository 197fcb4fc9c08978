"""The harness's own tests: ``unit/`` starts nothing and runs in seconds;
``service/`` runs real processes and containers (marked ``service``; those
that need a Docker engine are marked ``docker`` too, so CI can run them once
the images are built)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .json_server import Answer, JsonServer, Request

SERVICE_DIR = Path(__file__).parent / "service"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "service: a test of the harness that runs real processes or containers")
    config.addinivalue_line("markers", "docker: a service test that needs a Docker engine and the target images")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVICE_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.service)
            if Path(item.path).name == "test_docker_runtime.py" or "[docker" in item.nodeid:
                item.add_marker(pytest.mark.docker)


@pytest.fixture
def json_server() -> Iterator[Callable[[Callable[[Request], Answer]], JsonServer]]:
    """json_server(answer) serves answer(request) in a thread of this process; closed at teardown."""
    started: list[JsonServer] = []

    def serve(answer: Callable[[Request], Answer]) -> JsonServer:
        started.append(JsonServer(answer))
        return started[-1]

    yield serve
    for server in started:
        server.close()
