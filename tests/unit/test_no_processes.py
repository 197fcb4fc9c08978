"""The guard of the unit suite is itself seen to work."""

import subprocess

import pytest


def test_starting_a_process_fails_a_unit_test():
    with pytest.raises(AssertionError, match="belongs in tests/service"):
        subprocess.run(["true"], check=False)
