"""Warehouse data for export tests: three batteries of two partners over three local days
of Europe/Zurich around the autumn DST change (96, 100, 96 quarter hours), with a gap
that makes estimated intervals; readings from the simulator's ground truth."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from vbatt.exports.partners import PartnerConfig
from vbatt.readings import Reading
from vbatt.simulator.households import ground_truth

DAYS = [date(2025, 10, 25), date(2025, 10, 26), date(2025, 10, 27)]
FIRST = datetime(2025, 10, 24, 22, 0, tzinfo=UTC)  # local midnight of the first day
LAST = datetime(2025, 10, 27, 23, 0, tzinfo=UTC)  # local midnight after the last day
GAP = (datetime(2025, 10, 26, 9, 0, tzinfo=UTC), datetime(2025, 10, 26, 11, 0, tzinfo=UTC))
BATTERIES = [
    ("vb-1", "Battery Müller", "p1", "c-1", "SIM-0001", 5.0),
    ("vb-2", "Batterie Čapek", "p1", "c-2", "SIM-0002", 0.0),
    ("vb-3", "Speicher Weber", "p2", "c-3", "SIM-0003", 2.5),
]


def readings(meter_id: str) -> list[Reading]:
    out, ts = [], FIRST
    while ts <= LAST:
        if not (meter_id == "SIM-0002" and GAP[0] < ts < GAP[1]):
            out.append(Reading(meter_id, ts, *ground_truth(meter_id, ts)))
        ts += timedelta(minutes=15)
    return out


def battery_rows() -> list[dict]:
    return [
        {
            "battery_id": b,
            "name": n,
            "partner_id": p,
            "customer_id": c,
            "meter_id": m,
            "capacity_kwh": cap,
            "start_date": DAYS[0],
            "reset_date": None,
            "reset_repeat": "yearly",
            "end_date": None,
            "timezone": "Europe/Zurich",
            "initial_level_kwh": 0.0,
        }
        for b, n, p, c, m, cap in BATTERIES
    ]


@pytest.fixture
def warehouse(pipeline):
    """The pipeline after one dbt run over the three days."""
    pipeline.batteries(battery_rows())
    for meter in sorted({b[4] for b in BATTERIES}):
        pipeline.load(readings(meter))
    pipeline.run()
    return pipeline


def make_partner(partner_id: str, formats: list[dict], **extra) -> PartnerConfig:
    return PartnerConfig.model_validate(
        {
            "partner_id": partner_id,
            "name": f"Partner {partner_id}",
            "timezone": "Europe/Zurich",
            "sender": {"id": "9900000000017", "qualifier": "293"},
            "receiver": {"id": "9900000000024", "qualifier": "293"},
            "formats": formats,
            **extra,
        }
    )
