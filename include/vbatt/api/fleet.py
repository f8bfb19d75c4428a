"""The fleet: all batteries a key sees at once (the partner page's summary and billing CSV).

``GET /v1/fleet``: how many batteries, the energy stored in them now and the totals of each
battery's current (latest) settlement period; ``GET /v1/settlements``: every settlement
period of every battery, by battery and period start, as JSON pages or one CSV file.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from vbatt.api.access import Conn, Warehouse, Who
from vbatt.api.models import BatterySettlement, BatterySettlementPage, Fleet
from vbatt.api.native import Format, Limit, csv_response, fast_json, parse_bound

router = APIRouter(prefix="/v1", tags=["fleet"])


@router.get("/fleet", response_model=Fleet)
def fleet(m: Warehouse, conn: Conn, who: Who) -> Fleet:
    """The key's batteries summed: count, level now, current settlement periods."""
    return m.fleet(conn, who)


def _cursor(after: str | None) -> tuple[str, datetime] | None:
    if not after:
        return None
    battery_id, sep, start = after.rpartition("|")
    when = parse_bound(start, "UTC", "after") if sep and len(start) > 10 else None
    if not battery_id or when is None:
        raise HTTPException(422, f"after must be <battery_id>|<period_start instant>: {after!r}")
    return battery_id, when


@router.get("/settlements", response_model=BatterySettlementPage)
def settlements(
    request: Request,
    m: Warehouse,
    conn: Conn,
    who: Who,
    after: Annotated[
        str | None, Query(description="<battery_id>|<period_start> of the last row seen")
    ] = None,
    limit: Limit = 1000,
    format: Format = "json",  # noqa: A002
):
    """Settlement periods of all the key's batteries (what a partner bills), in one list."""
    if format == "csv":
        rows = m.fleet_settlements(conn, who, after=None, limit=None)
        return csv_response(BatterySettlement, rows, f"{who.partner_id}-settlements.csv")
    items = m.fleet_settlements(conn, who, after=_cursor(after), limit=limit)
    nxt = None
    if len(items) == limit:
        last = items[-1]
        cursor = f"{last.battery_id}|{last.period_start.isoformat()}"
        nxt = str(request.url.include_query_params(after=cursor))
    return fast_json(BatterySettlementPage(items=items, next=nxt))
