"""The bulkhead target's pool slots (targets/bulkhead/pools.py) in this process, without a
database: slots are taken and given back with no connection open (a pool hands out None
until a request connects). Two pools are two bulkheads; two over one shared cap
(the shared-limit variant) are one."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from harness.runtime import kit


@pytest.fixture
def pools(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """pools.py, imported as the bulkhead app imports it (its folder on the path)."""
    monkeypatch.syspath_prepend(str(kit.PACKAGE.parent / "bulkhead"))
    return importlib.import_module("pools")


def two(pools: ModuleType, *, size: int, cap: object | None = None) -> tuple[object, object]:
    watchdog = pools.Watchdog()
    return tuple(pools.Pool(name, size=size, conninfo="", wait_ms=20, timeout_ms=1000, watchdog=watchdog, cap=cap)
                 for name in ("critical", "reports"))


def test_a_full_pool_leaves_the_other_its_slots(pools: ModuleType) -> None:
    critical, reports = two(pools, size=2)
    held = [reports._acquire() for _ in range(2)]
    with pytest.raises(pools.PoolExhausted):
        reports._acquire()
    assert critical._acquire() is None and critical.snapshot()["in_use"] == 1  # a slot, no connection yet
    assert held == [None, None]


def test_pools_over_one_cap_starve_each_other(pools: ModuleType) -> None:
    cap = pools.Cap(2)
    critical, reports = two(pools, size=2, cap=cap)
    for _ in range(2):
        reports._acquire()
    with pytest.raises(pools.PoolExhausted, match="pool critical exhausted"):
        critical._acquire()  # its own pool is empty, but the cap is not
    assert (critical.snapshot()["rejected"], cap.in_use) == (1, 2)
    reports._release(None, False)
    critical._acquire()
    assert (critical.snapshot()["in_use"], reports.snapshot()["in_use"], cap.in_use) == (1, 1, 2)
