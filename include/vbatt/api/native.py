"""The native read API (``/v1``): batteries and their intervals, days and settlement periods.

Paging is by key: each page holds at most ``limit`` rows in key order and ``next`` is the
URL of the following page (the same query with ``after`` = the last key), so a page stays
right while new rows arrive. ``format=csv`` streams the whole selected range as a CSV file
instead (no paging; columns = the JSON fields). ``start``/``end`` are a date (midnight of
the battery's local day) or an ISO instant (naive = UTC); ``end`` is exclusive. Dates and
instants outside ``queries.QUERY_YEARS`` are refused (422) before any arithmetic on them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from vbatt.api.access import Conn, NotFound, Warehouse, Who, visible_timezone
from vbatt.api.live import live_state
from vbatt.api.models import (
    BatteryLive,
    BatteryPage,
    Day,
    DayPage,
    Interval,
    IntervalPage,
    Period,
    Series,
    Settlement,
    SettlementPage,
)
from vbatt.api.queries import in_query_years, out_of_query_years
from vbatt.smartme_schema import iso

router = APIRouter(prefix="/v1", tags=["batteries"])

Limit = Annotated[int, Query(ge=1, le=10_000, description="rows per page")]
Format = Annotated[Literal["json", "csv"], Query(description="csv: the whole range as a file")]
RESOLUTION_MINUTES = {"day": 15, "week": 60, "month": 60, "year": 24 * 60}


def fast_json(model: BaseModel) -> Response:
    """pydantic's own JSON encoder: a month of intervals in milliseconds, where FastAPI's
    generic path (re-validation, jsonable_encoder) takes several times longer."""
    return Response(model.model_dump_json(), media_type="application/json")


def _next(request: Request, items: list, limit: int, key: Callable) -> str | None:
    if len(items) < limit:
        return None
    value = key(items[-1])
    return str(request.url.include_query_params(after=value.isoformat()))


def parse_bound(value: str | None, tz: str, name: str) -> datetime | None:
    """A local date (its midnight in ``tz``) or an ISO instant; None stays None; 422
    outside QUERY_YEARS (the arithmetic on it could overflow)."""
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            ts = datetime.combine(date.fromisoformat(value), time(), ZoneInfo(tz))
        else:
            ts = datetime.fromisoformat(value.replace(" ", "+"))
    except ValueError:
        raise HTTPException(
            422, f"{name} must be a date (YYYY-MM-DD) or an ISO instant: {value!r}"
        ) from None
    if not in_query_years(ts):
        raise HTTPException(422, f"{name} is {out_of_query_years(value)}")
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


def parse_date(value: str | None, name: str) -> date | None:
    """A local date; None stays None; 422 outside QUERY_YEARS."""
    if value is None or value == "":
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, f"{name} must be a date (YYYY-MM-DD): {value!r}") from None
    if not in_query_years(day):
        raise HTTPException(422, f"{name} is {out_of_query_years(value)}")
    return day


def _cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return iso(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def csv_response(
    model: type[BaseModel], rows: Iterable[BaseModel], filename: str
) -> StreamingResponse:
    fields = list(model.model_fields)

    def body() -> Iterator[str]:
        buf = io.StringIO()
        out = csv.writer(buf, lineterminator="\n")
        out.writerow(fields)
        for n, row in enumerate(rows, 1):
            out.writerow([_cell(getattr(row, f)) for f in fields])
            if n % 1000 == 0:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _streamed(m, fetch: Callable) -> Iterator:
    """Rows read on a connection of their own, so a download outlives the request's."""
    with m.connect() as conn:
        yield from fetch(conn)


@router.get("/batteries", response_model=BatteryPage)
def list_batteries(
    request: Request,
    m: Warehouse,
    conn: Conn,
    who: Who,
    q: Annotated[str | None, Query(description="search in id, name, customer, meter")] = None,
    after: Annotated[
        str | None, Query(description="battery_id of the previous page's last")
    ] = None,
    limit: Limit = 1000,
) -> BatteryPage:
    """The batteries of the key's partner (or the customer's own), in battery_id order."""
    items = m.batteries(conn, who, q=q, after=after, limit=limit)
    nxt = None
    if len(items) == limit:
        nxt = str(request.url.include_query_params(after=items[-1].battery_id))
    return BatteryPage(items=items, next=nxt)


@router.get("/batteries/{id}", response_model=BatteryLive, responses={404: {}})
def get_battery(id: str, m: Warehouse, conn: Conn, who: Who) -> BatteryLive:  # noqa: A002
    """One battery: configuration, the ledger's level, totals and power, and ``live``:
    the level and power now, provisional past the ledger (docs/rules.md)."""
    b = m.battery(conn, who, id)
    if b is None:
        raise NotFound()
    live = live_state(conn, b, raw_schema=m.raw).wire()
    return BatteryLive(**b.model_dump(), live=live)


@router.get("/batteries/{id}/intervals", response_model=IntervalPage, responses={404: {}})
def intervals(
    id: str,  # noqa: A002
    request: Request,
    m: Warehouse,
    conn: Conn,
    who: Who,
    start: str | None = None,
    end: str | None = None,
    after: Annotated[str | None, Query(description="interval_start of the last row seen")] = None,
    limit: Limit = 1000,
    format: Format = "json",  # noqa: A002
):
    """Quarter hours of the ledger (battery_intervals), oldest first."""
    tz = visible_timezone(m, conn, who, id)
    lo, hi = parse_bound(start, tz, "start"), parse_bound(end, tz, "end")
    if format == "csv":
        rows = _streamed(m, lambda c: m.intervals(c, id, start=lo, end=hi, after=None, limit=None))
        return csv_response(Interval, rows, f"{id}-intervals.csv")
    cursor = parse_bound(after, tz, "after")
    items, n, last = m.intervals_json(conn, id, start=lo, end=hi, after=cursor, limit=limit)
    nxt = str(request.url.include_query_params(after=last.isoformat())) if n == limit else None
    body = f'{{"battery_id":{json.dumps(id)},"items":{items},"next":{json.dumps(nxt)}}}'
    return Response(body, media_type="application/json")


@router.get("/batteries/{id}/daily", response_model=DayPage, responses={404: {}})
def daily(
    id: str,  # noqa: A002
    request: Request,
    m: Warehouse,
    conn: Conn,
    who: Who,
    start: Annotated[str | None, Query(description="first local date")] = None,
    end: Annotated[str | None, Query(description="local date after the last")] = None,
    after: Annotated[str | None, Query(description="local_date of the last row seen")] = None,
    limit: Limit = 1000,
    format: Format = "json",  # noqa: A002
):
    """Local days of the battery's timezone (battery_daily), oldest first."""
    visible_timezone(m, conn, who, id)
    lo, hi = parse_date(start, "start"), parse_date(end, "end")
    if format == "csv":
        rows = m.days(conn, id, start=lo, end=hi, after=None, limit=None)
        return csv_response(Day, rows, f"{id}-daily.csv")
    items = m.days(conn, id, start=lo, end=hi, after=parse_date(after, "after"), limit=limit)
    return fast_json(
        DayPage(
            battery_id=id, items=items, next=_next(request, items, limit, lambda r: r.local_date)
        )
    )


@router.get("/batteries/{id}/settlements", response_model=SettlementPage, responses={404: {}})
def settlements(
    id: str,  # noqa: A002
    request: Request,
    m: Warehouse,
    conn: Conn,
    who: Who,
    after: Annotated[str | None, Query(description="period_start of the last row seen")] = None,
    limit: Limit = 1000,
    format: Format = "json",  # noqa: A002
):
    """Settlement periods (what a partner bills), oldest first; is_closed marks final ones."""
    tz = visible_timezone(m, conn, who, id)
    if format == "csv":
        rows = m.settlements(conn, id, after=None, limit=None)
        return csv_response(Settlement, rows, f"{id}-settlements.csv")
    cursor = parse_bound(after, tz, "after")
    items = m.settlements(conn, id, after=cursor, limit=limit)
    return fast_json(
        SettlementPage(
            battery_id=id, items=items, next=_next(request, items, limit, lambda r: r.period_start)
        )
    )


def period_dates(period: str, day: date) -> tuple[date, date]:
    """First and last local date of the day, ISO week, month or year holding ``day``."""
    if period == "day":
        return day, day
    if period == "week":
        first = day - timedelta(days=day.weekday())
        return first, first + timedelta(days=6)
    if period == "month":
        first = day.replace(day=1)
        nxt = (first + timedelta(days=32)).replace(day=1)
        return first, nxt - timedelta(days=1)
    return day.replace(month=1, day=1), day.replace(month=12, day=31)


@router.get("/batteries/{id}/series", response_model=Series, responses={404: {}})
def series(
    id: str,  # noqa: A002
    m: Warehouse,
    conn: Conn,
    who: Who,
    period: Period = "day",
    date: Annotated[  # noqa: A002
        str | None, Query(description="a local date in the period; default: latest data")
    ] = None,
) -> Response:
    """Chart data: a day in quarter hours, a week or month in hours, a year in days."""
    b = m.battery(conn, who, id)
    if b is None:
        raise NotFound()
    day = parse_date(date, "date")
    if day is None:
        latest = b.reading_at - timedelta(minutes=15) if b.reading_at else datetime.now(UTC)
        day = latest.astimezone(ZoneInfo(b.timezone)).date()
    first, last = period_dates(period, day)
    minutes = RESOLUTION_MINUTES[period]
    start, end, points = m.series(conn, id, b.timezone, first, last, minutes)
    return fast_json(
        Series(
            battery_id=id,
            period=period,
            first_date=first,
            last_date=last,
            start=start,
            end=end,
            resolution_minutes=minutes,
            points=points,
        )
    )
