"""Slices of a simulation that dbt can compute side by side.

PostgreSQL runs a window function on one core, and the ledger is a chain of windows over
every reading and interval, so one dbt run of ``vbatt simulate`` keeps one core busy
while the others wait. Batteries that share no meter share no row of any model (the
meter-level models partition by meter, the battery-level ones by battery), so their
ledgers can be computed in separate schemas at the same time and give the same rows.

A slice is a set of whole groups: a group is the batteries and meters joined by some
battery's versions, so every reading a battery needs is in its slice and no meter is
computed twice.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field

# Below this many readings one dbt run is quicker: each slice pays a dbt start-up and a
# migration of its raw schema (about 6 s together).
SLICE_MIN_READINGS = 1_000_000
MAX_SLICES = 4


@dataclass
class Slice:
    batteries: list[dict] = field(default_factory=list)  # rows: a battery's versions
    battery_ids: set[str] = field(default_factory=set)
    meters: set[str] = field(default_factory=set)

    def add(self, rows: list[dict]) -> None:
        self.batteries.extend(rows)
        self.battery_ids.update(row["battery_id"] for row in rows)
        self.meters.update(row["meter_id"] for row in rows)

    @property
    def weight(self) -> int:
        # a meter's readings and a battery's intervals are about as many rows each
        return len(self.meters) + len(self.battery_ids)


def default_slices(readings: int) -> int:
    """As many slices as cores (at most ``MAX_SLICES``) for a big simulation, else one."""
    if readings < SLICE_MIN_READINGS:
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_SLICES))


def _groups(batteries: list[dict]) -> list[Slice]:
    """Batteries joined by a shared meter (union-find over battery and meter ids)."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(node: tuple[str, str]) -> tuple[str, str]:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for row in batteries:
        root_b, root_m = find(("b", row["battery_id"])), find(("m", row["meter_id"]))
        if root_b != root_m:
            parent[root_m] = root_b
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in batteries:
        groups[find(("b", row["battery_id"]))].append(row)
    found = []
    for rows in groups.values():
        group = Slice()
        group.add(rows)
        found.append(group)
    return found


def plan_slices(batteries: list[dict], slices: int) -> list[Slice]:
    """At most ``slices`` slices of about equal weight, each a set of whole groups (the
    heaviest group first into the lightest slice); empty slices are left out. The rows of
    each slice keep the order of the batteries file."""
    position = {id(row): i for i, row in enumerate(batteries)}
    planned = [Slice() for _ in range(max(1, slices))]
    for group in sorted(_groups(batteries), key=lambda g: (-g.weight, min(g.battery_ids))):
        min(planned, key=lambda s: s.weight).add(group.batteries)
    for planned_slice in planned:
        planned_slice.batteries.sort(key=lambda row: position[id(row)])
    return [s for s in planned if s.batteries]
