"""The receiver's list of known meters: a new battery's meter is taken at its first push;
a stale list is answered at once and refreshed in the background."""

from __future__ import annotations

import asyncio
from datetime import date

from sqlalchemy import text

from tests.realtime.test_receiver import GUID_METER, raw  # noqa: F401 - the fixture
from vbatt.ingest.realtime_intake import RealtimeWriter
from vbatt.warehouse.loader import upsert_batteries

NEW_METER = "0d5e7f3a-1111-4c22-8d33-5e6f7a8b9c0d"


def _add_battery(engine, raw_schema: str) -> None:
    upsert_batteries(
        engine,
        [
            {
                "battery_id": "b-new",
                "name": "New",
                "partner_id": "p",
                "customer_id": "c",
                "meter_id": NEW_METER,
                "capacity_kwh": 5,
                "start_date": date(2026, 1, 1),
                "reset_date": None,
                "end_date": None,
            }
        ],
        raw_schema=raw_schema,
    )


def test_a_new_meter_is_known_at_its_first_push(engine, raw):  # noqa: F811
    writer = RealtimeWriter(engine, raw, unknown_retry_s=0.0)

    async def scenario() -> tuple[dict, dict]:
        first = dict(await writer.known([GUID_METER]))
        _add_battery(engine, raw)
        return first, dict(await writer.known([NEW_METER]))

    first, second = asyncio.run(scenario())
    assert GUID_METER in first and NEW_METER not in first
    assert second[NEW_METER] == NEW_METER


def test_a_stale_list_answers_at_once_and_is_refreshed_behind(engine, raw):  # noqa: F811
    writer = RealtimeWriter(engine, raw, known_ttl_s=0.0)

    async def scenario() -> tuple[dict, dict, dict]:
        first = dict(await writer.known([GUID_METER]))
        with engine.begin() as conn:
            conn.execute(
                text(f"delete from {raw}.batteries where meter_id = :m"), {"m": GUID_METER}
            )
        stale = dict(await writer.known([GUID_METER]))  # answered from the list in hand
        await writer._refresh
        return first, stale, dict(await writer.known([]))

    first, stale, fresh = asyncio.run(scenario())
    assert GUID_METER in first and GUID_METER in stale
    assert GUID_METER not in fresh  # the background refresh took the removal
