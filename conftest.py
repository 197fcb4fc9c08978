"""Root conftest. The harness's pytest plugin (options --runtime and
--reports-dir, the ``harness`` fixture) is registered by the package's
``pytest11`` entry point, so it works the same in a user's own project."""

collect_ignore = ["bench", "targets", "reports"]
