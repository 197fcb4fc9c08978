"""The names `harness` promises resolve, and importing it stays light."""

import subprocess
import sys

import harness


def test_every_public_name_resolves():
    for name in harness.__all__:
        assert getattr(harness, name) is not None, name


def test_unknown_name_is_an_attribute_error():
    try:
        harness.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("harness.no_such_thing resolved")


def test_import_does_not_load_pandas_or_locust():
    code = "import sys, harness, harness.cli; print(sorted(m for m in ('pandas', 'locust', 'gevent') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
