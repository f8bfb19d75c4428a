"""Meter shards: deterministic slices in byte order, every meter in exactly one."""

from __future__ import annotations

import pytest

from vbatt.ingest.shards import plan_shards


def test_shards_cover_every_meter_once_in_byte_order():
    meters = ["SIM-0010", "SIM-0002", "a-lower", "SIM-0001", "Z-upper", "SIM-0002"]
    shards = plan_shards(meters, 2)
    assert [(s.first, s.last, s.meters) for s in shards] == [
        ("SIM-0001", "SIM-0002", 2),
        ("SIM-0010", "Z-upper", 2),
        ("a-lower", "a-lower", 1),
    ]
    assert [s.index for s in shards] == [0, 1, 2]


def test_the_same_meters_in_any_order_give_the_same_shards():
    meters = [f"SIM-{i:04d}" for i in range(1, 1001)]
    assert plan_shards(meters, 250) == plan_shards(reversed(meters), 250)
    assert len(plan_shards(meters, 250)) == 4
    assert len(plan_shards(meters, 333)) == 4
    assert plan_shards([], 10) == []


def test_a_shard_size_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        plan_shards(["m"], 0)
