"""Root conftest. The harness's pytest plugin (options --runtime and
--reports-dir, the ``harness_run`` fixture) is registered by the package's
``pytest11`` entry point, so it works the same in a user's own project.
``pytester`` is for the plugin's own tests (tests/unit/test_plugin.py)."""

collect_ignore = ["bench", "targets", "reports"]
pytest_plugins = ["pytester"]
