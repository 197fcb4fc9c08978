"""Load specs and bearer tokens: validated values, no Locust run (that is
tests/service/test_load.py)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.load import LoadSpec, RequestSpec, Stage


@pytest.mark.parametrize(
    "make",
    [
        lambda: LoadSpec(users=0),
        lambda: LoadSpec(rate_per_s=0),
        lambda: LoadSpec(duration_s=2.5),
        lambda: LoadSpec(timeout_s=0),
        lambda: LoadSpec(requests=()),
        lambda: RequestSpec(path="no-slash"),
        lambda: RequestSpec(weight=0),
        lambda: RequestSpec(method="BREW"),
        lambda: Stage(duration_s=0, users=1, spawn_rate=1),
    ],
)
def test_bad_specs_are_refused(make: Any) -> None:
    with pytest.raises(ValueError):
        make()


def test_spec_round_trips_through_json() -> None:
    spec = LoadSpec(
        users=3,
        rate_per_s=7.5,
        requests=(RequestSpec(method="POST", path="/x", name="x", weight=2, headers={"A": "b"}, body="{}"),),
        stages=(Stage(duration_s=0.5, users=1, spawn_rate=1),),
    )
    assert LoadSpec.from_json(spec.to_json()) == spec
    assert spec.total_duration_s == 0.5


def test_bad_tokens_are_the_same_for_a_seed_and_each_differs_from_a_good_one() -> None:
    from harness.patterns.gateway import bad_tokens, claims_for, mint

    claims = claims_for("mallory", issuer="iss", audience="aud", now_s=1_800_000_000)
    key = b"k" * 32
    first, again = (bad_tokens(key=key, claims=claims, seed=1, fuzzed=8) for _ in range(2))
    assert first == again and len({t.kind for t in first}) == len(first)
    other = bad_tokens(key=key, claims=claims, seed=2, fuzzed=8)
    assert [t.authorization for t in other if t.kind.startswith("fuzz")] != \
        [t.authorization for t in first if t.kind.startswith("fuzz")]
    good = f"Bearer {mint(claims, key)}"
    assert good not in {t.authorization for t in first}
    assert next(t for t in first if t.kind == "missing").authorization is None
    assert all("\n" not in (t.authorization or "") and (t.authorization or "").isascii() for t in first)


def test_tags_round_trip_and_may_not_take_a_row_field_or_a_body_field() -> None:
    tagged = RequestSpec(path="/x", tags={"subject": "alice", "claimed": "bob"})
    spec = LoadSpec(requests=(tagged,), body_fields=("parts.users.user",))
    assert LoadSpec.from_json(spec.to_json()) == spec and LoadSpec.from_json(spec.to_json()).requests[0].tags == \
        {"subject": "alice", "claimed": "bob"}
    for bad in ({"status": "x"}, {"Subject": "x"}, {"subject": 1}, {"": "x"}):
        with pytest.raises(ValueError, match="tags"):
            RequestSpec(tags=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="both tags and body_fields"):
        LoadSpec(requests=(tagged,), body_fields=("subject",))
    with pytest.raises(ValueError, match="body_fields"):
        LoadSpec(body_fields=("status",))
