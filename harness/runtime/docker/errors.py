"""Docker's errors translated at the boundary: ours, with the action and container named."""

from __future__ import annotations

import contextlib
from typing import Iterator

from ...errors import ServiceError, SetupError


@contextlib.contextmanager
def translated(what: str, *, gone_ok: bool = False) -> Iterator[None]:
    """Runs a docker call; with gone_ok a missing or stopped container is no error."""
    from docker.errors import APIError, ImageNotFound, NotFound
    from requests.exceptions import ConnectionError as EngineGone

    try:
        yield
    except ImageNotFound as exc:
        raise SetupError(f"{what}: no such image here ({exc.explanation}); no registry is reachable, so build it "
                         "first (a target's Dockerfile is built for you) or name an image you have") from None
    except NotFound as exc:
        if not gone_ok:
            raise ServiceError(f"{what}: gone ({exc.explanation})") from None
    except APIError as exc:
        if gone_ok and exc.status_code == 409:  # not running, already being removed
            return
        raise ServiceError(f"{what}: the Docker engine refused: {exc.explanation}") from None
    except EngineGone as exc:
        raise SetupError(f"{what}: the Docker engine stopped answering ({exc}); is dockerd still running?") from None
