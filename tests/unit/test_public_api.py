"""The names `harness` promises resolve, and importing it stays light."""


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


