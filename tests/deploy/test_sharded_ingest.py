"""Ingest in shards stores what one ingest of all meters stores; a shard run twice
(a retried or duplicated mapped task) changes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from vbatt.ingest.load import ingest_smartme, meters_to_ingest
from vbatt.ingest.shards import plan_shards
from vbatt.ingest.smartme import SmartMeClient, SmartMeConfig
from vbatt.simulator import running
from vbatt.simulator.app import DEMO_API_KEY
from vbatt.simulator.households import meter_id_for
from vbatt.warehouse.loader import upsert_batteries
from vbatt.warehouse.migrate import migrate

METERS = 7
START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
END = START + timedelta(minutes=15)


def batteries() -> list[dict]:
    return [
        {
            "battery_id": f"B{i}",
            "name": f"B{i}",
            "partner_id": "p",
            "customer_id": f"c{i}",
            "meter_id": meter_id_for(i),
            "capacity_kwh": 5.0,
            "start_date": date(2026, 3, 1),
            "reset_date": None,
            "reset_repeat": "yearly",
            "end_date": None,
            "timezone": "Europe/Zurich",
            "initial_level_kwh": 0.0,
        }
        for i in range(1, METERS + 1)
    ]


def readings(engine, raw: str) -> list[tuple]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    f"select meter_id, ts, import_kwh, export_kwh from {raw}.meter_readings"
                    " order by meter_id, ts"
                )
            )
        )


def watermarks(engine, raw: str) -> list[tuple]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(f"select meter_id, complete_until from {raw}.ingest_watermarks order by 1")
            )
        )


@pytest.fixture
def schemas(engine):
    names = ["t_shard_whole_raw", "t_shard_parts_raw"]
    for raw in names:
        migrate(engine, raw)
        upsert_batteries(engine, batteries(), raw_schema=raw)
    yield names
    with engine.begin() as conn:
        for raw in names:
            conn.execute(text(f"drop schema {raw} cascade"))


def test_shards_store_what_one_ingest_stores_and_a_retry_changes_nothing(engine, schemas):
    whole, parts = schemas
    shards = plan_shards(meters_to_ingest(engine, START, parts), 3)
    assert [s.meters for s in shards] == [3, 3, 1]
    with running(meters=METERS, seed=3) as url:
        config = SmartMeConfig(base_url=url, api_key=DEMO_API_KEY, rate=None)
        with SmartMeClient(config) as client:
            kwargs = {"start": START, "end": END, "lookback": timedelta(hours=2)}
            ingest_smartme(engine, client, raw_schema=whole, **kwargs)
            reports = [
                ingest_smartme(
                    engine, client, raw_schema=parts, meter_range=(s.first, s.last), **kwargs
                )
                for s in shards
            ]
            assert [len(r.meters) for r in reports] == [3, 3, 1]
            once = readings(engine, parts)
            again = ingest_smartme(
                engine,
                client,
                raw_schema=parts,
                meter_range=(shards[1].first, shards[1].last),
                **kwargs,
            )
    assert again.loaded == 0
    assert readings(engine, parts) == once == readings(engine, whole)
    assert len({r[0] for r in once}) == METERS
    assert watermarks(engine, parts) == watermarks(engine, whole)
    with engine.connect() as conn:
        loads = conn.execute(text(f"select count(*) from {parts}.loads")).scalar()
    assert loads == len(shards) + 1  # one load per shard run, the retry included
