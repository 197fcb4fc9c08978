"""Load: Locust driving a target from a child process, one row per request."""

from harness.load.runner import LoadRun
from harness.load.spec import LoadSpec, RequestSpec, Stage

__all__ = ["LoadRun", "LoadSpec", "RequestSpec", "Stage"]
