"""Meter shards: the unit of parallel ingest.

A shard is a slice of the meter ids sorted byte-wise (``collate "C"``, the same order as
Python's ``sorted``), recorded by its first and last id. The same meters give the same
shards, so a retried or duplicated mapped task fetches the same meters again; and a task
only needs its two bounds, not a list of ids that grows with the utility.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Shard:
    index: int
    first: str  # inclusive bounds in byte order
    last: str
    meters: int  # how many meters the slice held when it was planned

    def as_dict(self) -> dict:
        return asdict(self)


def plan_shards(meter_ids: Iterable[str], size: int) -> list[Shard]:
    """Cut the sorted, distinct meter ids into slices of ``size`` (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"shard size must be at least 1, not {size}")
    ordered = sorted(set(meter_ids), key=lambda m: m.encode())
    return [
        Shard(index=i, first=chunk[0], last=chunk[-1], meters=len(chunk))
        for i, chunk in enumerate(
            ordered[start : start + size] for start in range(0, len(ordered), size)
        )
    ]
