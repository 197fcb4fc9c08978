"""Importing the harness stays light: checked in a fresh interpreter, since
the test process has pandas loaded already."""

import subprocess
import sys
from pathlib import Path


def test_import_does_not_load_pandas_or_locust():
    code = "import sys, harness, harness.cli; print(sorted(m for m in ('pandas', 'locust', 'gevent') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_importing_the_package_does_not_import_locust() -> None:
    code = "import sys, harness.load; sys.exit(bool({'locust', 'gevent'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2], timeout=30)
    assert done.returncode == 0, "harness.load imported locust/gevent into the harness process"
