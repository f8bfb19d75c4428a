"""The native API returns what the marts hold: pages that join up, CSV equal to JSON,
chart buckets that add up to the days, and sessions that cannot write."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import InternalError, ProgrammingError

from tests.api.conftest import auth


@pytest.fixture
def ewa(api_warehouse):
    return auth(api_warehouse.keys["ewa"])


def _all_pages(client, url, headers, params):
    items, pages = [], 0
    page = client.get(url, params=params, headers=headers).json()
    while True:
        items += page["items"]
        pages += 1
        if not page["next"]:
            return items, pages
        page = client.get(page["next"], headers=headers).json()


def test_interval_pages_join_up_to_the_mart(client, ewa, api_warehouse):
    items, pages = _all_pages(
        client, "/v1/batteries/b-ewa-1/intervals", ewa, {"start": "2025-06-27", "limit": 100}
    )
    rows = api_warehouse.query(
        "select * from {marts}.battery_intervals where battery_id = 'b-ewa-1'"
        " and interval_start >= '2025-06-26T22:00Z' order by interval_start"
    )
    assert pages == len(rows) // 100 + 1
    assert [datetime.fromisoformat(i["interval_start"]) for i in items] == [
        r["interval_start"] for r in rows
    ]
    assert [i["level_kwh"] for i in items] == [r["level_kwh"] for r in rows]
    assert sum(i["estimated"] for i in items) == sum(r["estimated"] for r in rows) > 0


def test_csv_download_equals_json(client, ewa):
    params = {"start": "2025-06-28", "end": "2025-06-30"}
    page = client.get(
        "/v1/batteries/b-ewa-1/intervals", params=params | {"limit": 10_000}, headers=ewa
    ).json()
    response = client.get(
        "/v1/batteries/b-ewa-1/intervals", params=params | {"format": "csv"}, headers=ewa
    )
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == len(page["items"]) == 2 * 96
    for row, item in zip(rows, page["items"], strict=True):
        assert datetime.fromisoformat(row["interval_start"]) == datetime.fromisoformat(
            item["interval_start"]
        )
        assert float(row["level_kwh"]) == item["level_kwh"]
        assert row["estimated"] == ("true" if item["estimated"] else "false")
    again = client.get(
        "/v1/batteries/b-ewa-1/intervals", params=params | {"format": "csv"}, headers=ewa
    )
    assert again.content == response.content  # byte-identical


def test_daily_and_settlements_are_the_marts_rows(client, ewa, api_warehouse):
    days = client.get("/v1/batteries/b-ewa-2/daily", headers=ewa).json()["items"]
    want = api_warehouse.query(
        "select * from {marts}.battery_daily where battery_id = 'b-ewa-2' order by local_date"
    )
    assert [d["local_date"] for d in days] == [w["local_date"].isoformat() for w in want]
    assert [d["charge_kwh"] for d in days] == [w["charge_kwh"] for w in want]
    periods = client.get("/v1/batteries/b-ewa-2/settlements", headers=ewa).json()["items"]
    assert len(periods) == 2  # the reset on 1 July starts a second period
    assert periods[0]["is_closed"] is True and periods[1]["is_closed"] is False
    text_csv = client.get(
        "/v1/batteries/b-ewa-2/settlements", params={"format": "csv"}, headers=ewa
    ).text
    assert len(text_csv.strip().splitlines()) == 3


@pytest.mark.parametrize("period", ["day", "week", "month", "year"])
def test_series_buckets_add_up_to_the_days(client, ewa, api_warehouse, period):
    s = client.get(
        "/v1/batteries/b-ewa-1/series", params={"period": period, "date": "2025-06-30"}, headers=ewa
    ).json()
    days = api_warehouse.query(
        "select * from {marts}.battery_daily where battery_id = 'b-ewa-1'"
        " and local_date between :a and :b",
        a=datetime.fromisoformat(s["first_date"]).date(),
        b=datetime.fromisoformat(s["last_date"]).date(),
    )
    assert {"day": 1, "week": 7, "month": 30, "year": 365}[period] == (
        datetime.fromisoformat(s["last_date"]) - datetime.fromisoformat(s["first_date"])
    ).days + 1
    for column in ("import_kwh", "charge_kwh", "discharge_kwh"):
        assert sum(p[column] for p in s["points"]) == pytest.approx(
            sum(d[column] for d in days), abs=1e-9
        )
    assert sum(p["intervals"] for p in s["points"]) == sum(d["intervals"] for d in days)


def test_bad_parameters_get_clear_errors(client, ewa):
    r = client.get("/v1/batteries/b-ewa-1/intervals", params={"start": "yesterday"}, headers=ewa)
    assert r.status_code == 422 and "start must be a date" in r.json()["detail"]
    r = client.get("/api/MeterValues/b-ewa-1", headers=ewa)
    assert r.status_code == 400 and "date" in r.json()["Message"]


def test_api_sessions_are_read_only(api_app):
    with api_app.state.marts.connect() as conn:
        with pytest.raises((InternalError, ProgrammingError), match="read-only"):
            conn.execute(text(f"delete from {api_app.state.marts.raw}.api_keys"))


def test_openapi_documents_both_apis(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/ValuesInPastMultiple/{id}" in paths and "/v1/batteries/{id}/intervals" in paths
    assert not any(p.startswith("/dashboard") for p in paths)
