"""The live view of a list (/api/Devices) reads all its batteries together (terms in two
queries, readings in one per look-back width) and gives each battery exactly what it
gets alone (/api/Devices/{id}, /v1 and its stream): versions with a new meter, a meter
shared by two batteries, a bracketing reading far before the ledger's end, batteries
without newer pushes."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, text

from vbatt.api.live import live_states
from vbatt.api.models import Battery
from vbatt.readings import Reading
from vbatt.warehouse.loader import load_readings, upsert_batteries
from vbatt.warehouse.migrate import migrate
from vbatt.warehouse.realtime import PushedValue, store_batch
from vbatt.warehouse.versions import add_version

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
END = NOW.replace(minute=NOW.minute - NOW.minute % 15) - timedelta(minutes=30)
START = (NOW - timedelta(days=1)).date()
# battery -> (meter, ledger end, minutes between its readings, push newer than the ledger)
CASES = {
    "L0": ("M0", END, 15, True),
    "L1": ("M1", END - timedelta(minutes=15), 15, True),
    "L2": ("M2", END - timedelta(minutes=45), 15, True),
    "L3": ("M0", END - timedelta(minutes=15), 15, True),  # M0 as L0, another ledger end
    "L4": ("M4", END, 15, True),  # a second version from today: meter M4B
    "L5": ("M5", END - timedelta(minutes=10), 120, True),  # bracketing reading 2 h before
    "L6": ("M6", END, 15, False),  # no push: the ledger stands
    "L7": ("M7", END, 15, None),  # a push older than the ledger's end: not engaged
}


@pytest.fixture
def raw(engine):
    schema = f"t_{secrets.token_hex(4)}_raw"
    migrate(engine, schema)
    upsert_batteries(
        engine,
        [
            {
                "battery_id": b,
                "name": b,
                "partner_id": "p",
                "customer_id": "c",
                "meter_id": meter,
                "capacity_kwh": 4.0,
                "start_date": START,
                "reset_date": None,
                "end_date": None,
                "timezone": "Europe/Zurich",
                "initial_level_kwh": 1.0,
            }
            for b, (meter, *_) in CASES.items()
        ],
        raw_schema=schema,
    )
    with engine.begin() as conn:
        add_version(
            conn,
            "L4",
            NOW.date(),
            {"meter_id": "M4B", "capacity_kwh": 2.0},
            recorded_by="tests",
            backdate=True,
            raw_schema=schema,
        )
    first = datetime.combine(START, datetime.min.time(), UTC) - timedelta(hours=2)
    readings, pushes = [], []
    for meter, every in {"M0": 15, "M1": 15, "M2": 15, "M4": 15, "M4B": 15, "M5": 120}.items():
        k, ts = 0, first
        while ts <= END:
            readings.append(Reading(meter, ts, 100 + 0.2 * k, 200 + 0.35 * k))
            k, ts = k + 1, ts + timedelta(minutes=every)
        pushes.append(
            PushedValue(
                meter, NOW - timedelta(seconds=20), 100 + 0.2 * k + 0.4, 200 + 0.35 * k + 1.5, -3.0
            )
        )
    readings += [
        Reading(m, END - timedelta(minutes=15 * k), 50 - k, 60 - k)
        for m in ("M6", "M7")
        for k in range(4)
    ]
    pushes.append(PushedValue("M7", END - timedelta(minutes=5), 51.0, 61.0, 1.0))
    load_readings(engine, readings, source="tests", raw_schema=schema)
    store_batch(engine, pushes, raw_schema=schema)
    yield schema
    with engine.begin() as conn:
        conn.execute(text(f"drop schema {schema} cascade"))


def _battery(b: str) -> Battery:
    meter, end, _, _ = CASES[b]
    return Battery(
        battery_id=b,
        name=b,
        partner_id="p",
        customer_id="c",
        meter_id=meter,
        capacity_kwh=4.0,
        timezone="Europe/Zurich",
        start_date=START,
        end_date=None,
        level_kwh=1.5,
        charged_total_kwh=3.0,
        discharged_total_kwh=2.0,
        overflow_total_kwh=0.0,
        shortfall_total_kwh=0.0,
        forfeited_total_kwh=0.0,
        active_power_kw=0.25,
        reading_at=end,
        intervals=10,
        estimated_intervals=0,
    )


def test_a_list_gives_each_battery_what_it_gets_alone(engine, raw):
    batteries = [_battery(b) for b in CASES]
    statements = []

    def count(*_args) -> None:
        statements.append(1)

    with engine.connect() as conn:
        event.listen(conn, "before_cursor_execute", count)
        together = live_states(conn, batteries, raw_schema=raw)
        event.remove(conn, "before_cursor_execute", count)
        alone = {
            b.battery_id: live_states(conn, [b], raw_schema=raw)[b.battery_id] for b in batteries
        }
    assert together.keys() == alone.keys() == set(CASES)
    for b, now in together.items():
        assert now.level == alone[b].level, b  # levels, power, time and every step
        assert now.capacity_kwh == alone[b].capacity_kwh, b
    engaged = {b for b, now in together.items() if now.level.provisional}
    assert engaged == {b for b, case in CASES.items() if case[3]}
    assert together["L4"].capacity_kwh == 2.0  # the new version's terms
    assert together["L5"].level.steps  # advanced from its bracketing reading 2 h before
    # meters and live state, terms (2), readings (at most one per look-back width)
    assert len(statements) <= 2 + 2 + 4
