"""smart-me-compatible endpoints: any system that reads smart-me meters reads a battery.

The rule book's "battery as a meter" registers, in smart-me's Device fields:
``CounterReading`` = level, ``CounterReadingImport`` = charged total,
``CounterReadingExport`` = discharged total (both since the start, never reset),
``ActivePower`` = (charge - discharge) x 4 of the latest interval (kW, + = charging),
``ValueDate`` = end of the latest computed interval; where a meter pushed realtime values
since, level, power and ValueDate are the live ones (``live.py``), ``MeterSubType`` =
``MeterSubTypeVirtualBattery``. In ``ValuesInPastMultiple`` the charged and discharged
totals are OBIS 1-0:1.8.0 and 1-0:2.8.0, the power 1-0:16.7.0 (as the simulator serves).
Legacy dialect only: ``/api/...`` with PascalCase keys.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from vbatt.api.access import Conn, NotFound, Warehouse, Who, visible_timezone
from vbatt.api.live import live_states
from vbatt.api.models import Battery
from vbatt.smartme_schema import (
    MAX_VALUES_PER_CALL,
    OBIS_EXPORT,
    OBIS_IMPORT,
    OBIS_POWER,
    ApiMessage,
    Device,
    DeviceInPast,
    ValueData,
    ValuesData,
    iso,
    parse_instant,
)

SUB_TYPE = "MeterSubTypeVirtualBattery"
UNIT = "kWh"

router = APIRouter(prefix="/api", tags=["smart-me compatible"])
_errors = {401: {"model": ApiMessage}, 404: {"model": ApiMessage}}


def device(b: Battery) -> Device:
    return Device(
        Id=b.battery_id,
        Name=b.name,
        DeviceEnergyType="MeterTypeElectricity",
        MeterSubType=SUB_TYPE,
        ActivePower=b.active_power_kw if b.active_power_kw is not None else 0.0,
        ActivePowerUnit="kW",
        CounterReading=b.level_kwh,
        CounterReadingImport=b.charged_total_kwh,
        CounterReadingExport=b.discharged_total_kwh,
        CounterReadingUnit=UNIT,
        ValueDate=iso(b.reading_at) if b.reading_at else None,
    )


def _instant(text: str | None, name: str) -> datetime:
    ts = parse_instant(text)
    if ts is None:
        raise HTTPException(400, f"The query parameter '{name}' (date-time) is required.")
    return ts


@router.get("/Devices", response_model=list[Device], response_model_exclude_none=True)
def devices(m: Warehouse, conn: Conn, who: Who) -> list[Device]:
    """Every battery the key may see, as a smart-me Device."""
    rows = m.batteries(conn, who, q=None, after=None, limit=1_000_000)
    live = live_states(conn, rows, raw_schema=m.raw)  # the live level, power and time
    return [device(live[b.battery_id].as_battery()) for b in rows]


@router.get(
    "/Devices/{id}",
    response_model=Device,
    response_model_exclude_none=True,
    responses=_errors,
)
def device_by_id(id: str, m: Warehouse, conn: Conn, who: Who) -> Device:  # noqa: A002
    b = m.battery(conn, who, id)
    if b is None:
        raise NotFound("device")
    return device(live_states(conn, [b], raw_schema=m.raw)[b.battery_id].as_battery())


@router.get(
    "/MeterValues/{id}",
    response_model=DeviceInPast,
    response_model_exclude_none=True,
    responses=_errors,
)
def meter_values(
    id: str,  # noqa: A002
    m: Warehouse,
    conn: Conn,
    who: Who,
    date: Annotated[str | None, Query(description="date-time; the last value before it")] = None,
) -> DeviceInPast:
    """The registers at the end of the last interval before ``date``."""
    tz = visible_timezone(m, conn, who, id)
    at = _instant(date, "date")
    r = m.registers_at(conn, id, tz, min(at, datetime.now(UTC)))
    if r is None:
        raise HTTPException(404, f"No values found before {iso(at)}.")
    return DeviceInPast(
        Id=id,
        Date=iso(r.at),
        CounterReading=r.level_kwh,
        CounterReadingImport=r.charged_total_kwh,
        CounterReadingExport=r.discharged_total_kwh,
        CounterReadingUnit=UNIT,
    )


@router.get(
    "/ValuesInPastMultiple/{id}",
    response_model=list[ValuesData],
    response_model_exclude_none=True,
    responses=_errors,
)
def values_in_past_multiple(
    id: str,  # noqa: A002
    m: Warehouse,
    conn: Conn,
    who: Who,
    startDate: str | None = None,  # noqa: N803 - smart-me's parameter names
    endDate: str | None = None,  # noqa: N803
    interval: Annotated[int | None, Query(description="minutes; 0 = every interval")] = None,
) -> list[ValuesData]:
    """Registers at interval ends from startDate to endDate (both inclusive), at most 1000."""
    tz = visible_timezone(m, conn, who, id)
    start, end = _instant(startDate, "startDate"), _instant(endDate, "endDate")
    if interval is None or interval < 0:
        raise HTTPException(400, "startDate, endDate (date-time) and interval (int) are required.")
    step = 15 * max(1, math.ceil(interval / 15))
    rows = m.registers_series(conn, id, tz, start, end, step, MAX_VALUES_PER_CALL)
    return [
        ValuesData(
            Date=iso(r.at),
            DeviceId=id,
            Values=[
                ValueData(Obis=OBIS_IMPORT, Value=r.charged_total_kwh),
                ValueData(Obis=OBIS_EXPORT, Value=r.discharged_total_kwh),
                ValueData(Obis=OBIS_POWER, Value=r.power_kw),
            ],
        )
        for r in rows
    ]


@router.get("/Health", response_model=dict)
def health() -> dict:
    """Unauthenticated, like smart-me's probe endpoint."""
    return {}
