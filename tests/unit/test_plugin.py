"""The pytest plugin as a user's own project sees it, run in-process with
pytester (the inner sessions start nothing: no test asks for harness_run)."""

from __future__ import annotations

import signal

import pytest

INNER = ["-p", "no:locust", "-p", "no:cacheprovider"]  # locust's own plugin would monkey-patch this process


def test_options_and_markers_are_registered(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.experiment
        @pytest.mark.extended
        def test_marked(pytestconfig):
            assert pytestconfig.getoption("--runtime") == "docker"
            assert pytestconfig.getoption("--reports-dir") == "out"
    """)
    result = pytester.runpytest_inprocess(*INNER, "--strict-markers", "--runtime", "docker", "--reports-dir", "out")
    result.assert_outcomes(passed=1)


def test_an_unknown_runtime_is_a_usage_error_naming_the_choices(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_inprocess(*INNER, "--runtime", "kubernetes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--runtime: invalid choice: 'kubernetes'*local*docker*"])


def test_a_session_without_experiments_keeps_its_own_signal_handling(pytester: pytest.Pytester,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    before = repr((signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)))
    monkeypatch.setenv("SEEN", "")
    pytester.makepyfile("""
        import os, signal

        def test_records_the_handlers():
            os.environ["SEEN"] = repr((signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)))
    """)
    pytester.runpytest_inprocess(*INNER).assert_outcomes(passed=1)
    import os

    assert os.environ["SEEN"] == before  # the inner session (same process) saw no handler of ours


def test_the_fixture_is_named_for_the_run_not_the_package(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_inprocess(*INNER, "--fixtures")
    result.stdout.re_match_lines([r"harness_run \[session scope\]"])
    result.stdout.no_re_match_line(r"harness \[session scope\]")


def test_shards_split_the_selection_between_sessions(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.parametrize("n", range(5))
        def test_case(n):
            pass
    """)
    first = pytester.runpytest_inprocess(*INNER, "--shard", "1/2", "-v")
    second = pytester.runpytest_inprocess(*INNER, "--shard", "2/2", "-v")
    first.assert_outcomes(passed=3, deselected=2)
    second.assert_outcomes(passed=2, deselected=3)
    first.stdout.fnmatch_lines(["*test_case?0? PASSED*", "*test_case?2? PASSED*", "*test_case?4? PASSED*"])
    second.stdout.fnmatch_lines(["*test_case?1? PASSED*", "*test_case?3? PASSED*"])
    marked = pytester.runpytest_inprocess(*INNER, "--shard", "1/2", "-k", "not case[1]", "-v")  # shares of what -k kept
    marked.assert_outcomes(passed=2, deselected=3)
    marked.stdout.fnmatch_lines(["*test_case?0? PASSED*", "*test_case?3? PASSED*"])
    bad = pytester.runpytest_inprocess(*INNER, "--shard", "3/2")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
