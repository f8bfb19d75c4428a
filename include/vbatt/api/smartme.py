"""smart-me-compatible endpoints: any system that reads smart-me meters reads a battery.

The rule book's "battery as a meter" registers, in smart-me's Device fields:
``CounterReading`` = level, ``CounterReadingImport`` = charged total,
``CounterReadingExport`` = discharged total (both since the start, never reset),
``ActivePower`` = (charge - discharge) x 4 of the latest interval (kW, + = charging),
``ValueDate`` = end of the latest computed interval; where a meter pushed realtime values
since, level, power and ValueDate are the live ones (``live.py``). In ``ValuesInPastMultiple`` the charged
and discharged totals are OBIS 1-0:1.8.0 and 1-0:2.8.0, the power 1-0:16.7.0 (as the
simulator serves).

``ValuesInPastMultiple`` promises (smart-me's description) values from ``startDate`` to
``endDate``, ``interval`` minutes apart, 0 as often as there are values, at most 1000 per
call; it says nothing of a time zone. Here the values are on the grid of ``interval``
minutes of the battery's local clock (``queries.on_local_grid``): ``interval=1440`` gives
the registers at every local midnight, so a day's difference is the battery's local day
as ``battery_daily`` and the rest of the product count it (UTC midnights would cut the
days at 01:00 or 02:00 in Zurich); a ``startDate`` at a local midnight is the first value.

On the wire as smart-me answers (see ``docs/api.md``): enumerations as integers,
``DeviceEnergyType`` 1 (electricity), ``MeterSubType`` 9 (virtual battery), ``FamilyType``
1002 (smart-me's family of virtual meters, see ``smartme_schema``). Two dialects, as smart-me
serves them:

* legacy host: ``/api/<Resource>``, PascalCase keys, ``Id`` = the battery id;
* current host: ``/<Resource>`` (no ``/api``), camelCase keys, ``id`` = the battery's UUID
  (``smartme_schema.device_uuid``: the current description types ids as UUIDs and clients
  generated from it refuse anything else).

Either dialect finds a battery by its id or by its UUID.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse
from sqlalchemy import Connection

from vbatt.api.access import Conn, NotFound, Warehouse, Who, visible_timezone
from vbatt.api.keys import Principal
from vbatt.api.live import live_states
from vbatt.api.models import Battery
from vbatt.api.queries import Marts, in_query_years, out_of_query_years
from vbatt.battery_config import shown
from vbatt.smartme_schema import (
    ENERGY_TYPE_ELECTRICITY,
    FAMILY_TYPE_VIRTUAL_METER,
    MAX_VALUES_PER_CALL,
    OBIS_EXPORT,
    OBIS_IMPORT,
    OBIS_POWER,
    SUB_TYPE_VIRTUAL_BATTERY,
    ApiMessage,
    Device,
    DeviceInPast,
    ValueData,
    ValuesData,
    camel,
    device_uuid,
    iso,
    parse_instant,
)

UNIT = "kWh"

legacy_router = APIRouter(prefix="/api", tags=["smart-me compatible (legacy host)"])
current_router = APIRouter(tags=["smart-me compatible (current host)"])
router = legacy_router  # the name other modules knew
_errors = {401: {"model": ApiMessage}, 404: {"model": ApiMessage}}
_PATHS = ("/Devices", "/MeterValues/", "/ValuesInPastMultiple/")


def error_key(path: str) -> str | None:
    """The key of an error body on ``path``: smart-me's ``Message`` (legacy) or
    ``message`` (current host); ``None`` where the path is not smart-me's."""
    if path.startswith("/api/"):
        return "Message"
    return "message" if path.startswith(_PATHS) else None


def device(b: Battery, device_id: str | None = None) -> Device:
    return Device(
        Id=device_id or b.battery_id,
        Name=b.name,
        DeviceEnergyType=ENERGY_TYPE_ELECTRICITY,
        FamilyType=FAMILY_TYPE_VIRTUAL_METER,
        MeterSubType=SUB_TYPE_VIRTUAL_BATTERY,
        ActivePower=b.active_power_kw if b.active_power_kw is not None else 0.0,
        ActivePowerUnit="kW",
        CounterReading=b.level_kwh,
        CounterReadingImport=b.charged_total_kwh,
        CounterReadingExport=b.discharged_total_kwh,
        CounterReadingUnit=UNIT,
        ValueDate=iso(b.reading_at) if b.reading_at else None,
    )


# UUID -> battery id; name-based, so a global cache cannot be wrong, only incomplete.
_by_uuid: dict[str, str] = {}
_by_uuid_lock = threading.Lock()


def battery_id(m: Marts, conn: Connection, who: Principal, id: str) -> str:  # noqa: A002
    """The battery a path id names (its id or its UUID), or 404 if ``who`` may not see it."""
    if m.visible(conn, who, id) is not None:
        return id
    key = device_uuid(id)
    if key == id.lower():  # a UUID: one of the batteries' UUIDs?
        with _by_uuid_lock:
            found = _by_uuid.get(key)
        if found is None:
            rows = m.batteries(conn, who, q=None, after=None, limit=1_000_000)
            with _by_uuid_lock:
                _by_uuid.update({device_uuid(b.battery_id): b.battery_id for b in rows})
                found = _by_uuid.get(key)
        if found is not None and m.visible(conn, who, found) is not None:
            return found
    raise NotFound("device")


def invalid_message(errors: Sequence[Any]) -> str:
    """A request validation error (FastAPI's list) as one sentence for smart-me's
    ``Message``: which parameter, what is wrong with it and the value sent."""
    parts = []
    for e in errors:
        where, name = (e["loc"][0], e["loc"][-1]) if e.get("loc") else ("request", "?")
        sent = f" ({shown(e['input'])})" if isinstance(e.get("input"), str) else ""
        parts.append(f"The {where} parameter '{name}' is not valid: {e.get('msg')}{sent}.")
    return " ".join(parts) or "The request is not valid."


def _instant(text: str | None, name: str) -> datetime:
    """A query's date-time: 400 when missing or not a date-time, 422 outside QUERY_YEARS."""
    if text is None or not text.strip():
        raise HTTPException(400, f"The query parameter '{name}' (date-time) is required.")
    try:
        ts = parse_instant(text)
        out = ts is not None and not in_query_years(ts)
    except OverflowError:  # its UTC instant falls before year 1 or after 9999
        ts, out = None, True
    if out:
        raise HTTPException(422, f"The query parameter '{name}' is {out_of_query_years(text)}.")
    if ts is None:
        raise HTTPException(
            400,
            f"The query parameter '{name}' is not a date-time: {shown(text)};"
            " send ISO 8601, e.g. 2025-06-28T12:00:00Z.",
        )
    return ts


def _devices(m: Marts, conn: Connection, who: Principal, ids: Callable[[str], str]) -> list[Any]:
    rows = m.batteries(conn, who, q=None, after=None, limit=1_000_000)
    live = live_states(conn, rows, raw_schema=m.raw)  # the live level, power and time
    return [device(live[b.battery_id].as_battery(), ids(b.battery_id)).wire() for b in rows]


def _device_by_id(m, conn, who, id: str, ids: Callable[[str], str]) -> dict:  # noqa: A002
    b = m.battery(conn, who, battery_id(m, conn, who, id))
    if b is None:
        raise NotFound("device")
    live = live_states(conn, [b], raw_schema=m.raw)[b.battery_id]
    return device(live.as_battery(), ids(b.battery_id)).wire()


def _meter_values(m, conn, who, id: str, date: str | None, ids) -> dict:  # noqa: A002
    bid = battery_id(m, conn, who, id)
    tz = visible_timezone(m, conn, who, bid)
    at = _instant(date, "date")
    r = m.registers_at(conn, bid, tz, min(at, datetime.now(UTC)))
    if r is None:
        raise HTTPException(404, f"No values found before {iso(at)}.")
    return DeviceInPast(
        Id=ids(bid),
        Date=iso(r.at),
        CounterReading=r.level_kwh,
        CounterReadingImport=r.charged_total_kwh,
        CounterReadingExport=r.discharged_total_kwh,
        CounterReadingUnit=UNIT,
    ).wire()


def _values(m, conn, who, id, start_date, end_date, interval, ids) -> list:  # noqa: A002
    bid = battery_id(m, conn, who, id)
    tz = visible_timezone(m, conn, who, bid)
    start, end = _instant(start_date, "startDate"), _instant(end_date, "endDate")
    if interval is None:
        raise HTTPException(400, "The query parameter 'interval' (minutes) is required.")
    if interval < 0:
        raise HTTPException(
            400,
            f"interval must be a whole number of minutes, 0 or more (0 = every quarter hour):"
            f" {interval}",
        )
    step = 15 * max(1, math.ceil(interval / 15))
    rows = m.registers_series(conn, bid, tz, start, end, step, MAX_VALUES_PER_CALL)
    return [
        ValuesData(
            Date=iso(r.at),
            DeviceId=ids(bid),
            Values=[
                ValueData(Obis=OBIS_IMPORT, Value=r.charged_total_kwh),
                ValueData(Obis=OBIS_EXPORT, Value=r.discharged_total_kwh),
                ValueData(Obis=OBIS_POWER, Value=r.power_kw),
            ],
        ).wire()
        for r in rows
    ]


def _same(battery: str) -> str:
    return battery


_DATE = Query(description="date-time; the last value before it")
_INTERVAL = Query(description="minutes; 0 = every interval")

# -- legacy host: /api, PascalCase --------------------------------------------------------


@legacy_router.get("/Devices", response_model=list[Device], response_model_exclude_none=True)
def devices(m: Warehouse, conn: Conn, who: Who) -> list[dict]:
    """Every battery the key may see, as a smart-me Device."""
    return _devices(m, conn, who, _same)


@legacy_router.get(
    "/Devices/{id}", response_model=Device, response_model_exclude_none=True, responses=_errors
)
def device_by_id(id: str, m: Warehouse, conn: Conn, who: Who) -> dict:  # noqa: A002
    return _device_by_id(m, conn, who, id, _same)


@legacy_router.get(
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
    date: Annotated[str | None, _DATE] = None,
) -> dict:
    """The registers at the end of the last interval before ``date``."""
    return _meter_values(m, conn, who, id, date, _same)


@legacy_router.get(
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
    interval: Annotated[int | None, _INTERVAL] = None,
) -> list[dict]:
    """Registers at interval ends from startDate to endDate (both inclusive), at most 1000,
    on the grid of ``interval`` minutes of the battery's local clock (1440: local midnights)."""
    return _values(m, conn, who, id, startDate, endDate, interval, _same)


@legacy_router.get("/Health", response_model=dict)
def health() -> dict:
    """Unauthenticated, like smart-me's probe endpoint."""
    return {}


# -- current host: no /api, camelCase, UUID ids -------------------------------------------


def _camel(payload: Any) -> JSONResponse:
    return JSONResponse(camel(payload))


@current_router.get("/Devices", response_class=JSONResponse)
def devices_current(m: Warehouse, conn: Conn, who: Who) -> JSONResponse:
    """``Devices`` in the current dialect (camelCase, ``id`` a UUID)."""
    return _camel(_devices(m, conn, who, device_uuid))


@current_router.get("/Devices/{id}", response_class=JSONResponse, responses=_errors)
def device_by_id_current(id: str, m: Warehouse, conn: Conn, who: Who) -> JSONResponse:  # noqa: A002
    return _camel(_device_by_id(m, conn, who, id, device_uuid))


@current_router.get("/MeterValues/{id}", response_class=JSONResponse, responses=_errors)
def meter_values_current(
    id: str,  # noqa: A002
    m: Warehouse,
    conn: Conn,
    who: Who,
    date: Annotated[str | None, _DATE] = None,
) -> JSONResponse:
    return _camel(_meter_values(m, conn, who, id, date, device_uuid))


@current_router.get("/ValuesInPastMultiple/{id}", response_class=JSONResponse, responses=_errors)
def values_in_past_multiple_current(
    id: str,  # noqa: A002
    m: Warehouse,
    conn: Conn,
    who: Who,
    startDate: str | None = None,  # noqa: N803
    endDate: str | None = None,  # noqa: N803
    interval: Annotated[int | None, _INTERVAL] = None,
) -> JSONResponse:
    return _camel(_values(m, conn, who, id, startDate, endDate, interval, device_uuid))
