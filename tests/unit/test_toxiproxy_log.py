"""Reading Toxiproxy's log as it grows: each line handed over once, a half-written one later."""

from __future__ import annotations

from harness.toxiproxy_log import FileLog, engine_time_ns


def test_a_file_follower_hands_over_each_new_line_once(tmp_path):
    path = tmp_path / "toxiproxy.log"
    path.write_text('{"message": "old"}\n')
    follower = FileLog(path).follow()
    try:
        assert follower.new() == []  # only what comes from now on
        with path.open("a") as f:
            f.write('{"message": "Accepted client", "name": "p"}\nnot json\n{"message": "ha')
        assert [e["message"] for _, e in follower.new()] == ["Accepted client"]
        with path.open("a") as f:
            f.write('lf"}\n')
        assert [e["message"] for _, e in follower.new()] == ["half"]
        assert follower.new() == []
    finally:
        follower.close()


def test_engine_stamps_keep_their_nanoseconds():
    assert engine_time_ns("2026-12-02T11:24:34.123456789Z") == 1796210674_123456789
    assert engine_time_ns("2026-12-02T11:24:34.5Z") == 1796210674_500000000
    assert engine_time_ns("2026-12-02T11:24:34Z") == 1796210674_000000000
    assert engine_time_ns("not a stamp") is None
    assert engine_time_ns("2026-13-02T11:24:34Z") is None
