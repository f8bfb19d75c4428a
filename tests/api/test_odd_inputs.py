"""Odd inputs to the read API and the dashboard answer with what is wrong, never a 500:
dates out of range, NUL characters, values FastAPI's validation refuses on smart-me's
routes (in smart-me's error shape), an empty login form; and the intervals page writes
instants and numbers as the other native routes do."""

from __future__ import annotations

import html
import json
import logging
from datetime import UTC, date, datetime

import pytest

from tests.api.conftest import auth
from vbatt.api.live import live_states
from vbatt.api.models import Battery, Interval
from vbatt.api.smartme import error_key
from vbatt.smartme_schema import device_uuid

UUID = device_uuid("b-ewa-1")
SPAN = "startDate=2025-06-28T00:00:00Z&endDate=2025-06-28T06:00:00Z"


@pytest.fixture
def ewa(api_warehouse):
    return auth(api_warehouse.keys["ewa"])


# url -> (the error body's key, the parameter the message names)
OUT_OF_RANGE = {
    "/v1/batteries/b-ewa-1/series?period=month&date=9999-12-15": ("detail", "date"),
    "/v1/batteries/b-ewa-1/series?period=week&date=9999-12-31": ("detail", "date"),
    "/v1/batteries/b-ewa-1/series?period=year&date=9999-12-31": ("detail", "date"),
    "/v1/batteries/b-ewa-1/series?period=day&date=9999-12-31": ("detail", "date"),
    "/v1/batteries/b-ewa-1/series?period=day&date=0001-01-01": ("detail", "date"),
    "/v1/batteries/b-ewa-1/intervals?start=9999-12-31T23:00:00-05:00": ("detail", "start"),
    "/v1/batteries/b-ewa-1/daily?end=0001-01-01": ("detail", "end"),
    "/api/MeterValues/b-ewa-1?date=0001-01-01T00:00:00Z": ("Message", "date"),
    "/api/MeterValues/b-ewa-1?date=0001-01-01T00:00:00%2B01:00": ("Message", "date"),
    f"/MeterValues/{UUID}?date=9999-12-31T23:59:59Z": ("message", "date"),
    "/api/ValuesInPastMultiple/b-ewa-1?startDate=0001-01-01T00:00:00Z"
    "&endDate=2025-06-28T00:00:00Z&interval=15": ("Message", "startDate"),
    f"/ValuesInPastMultiple/{UUID}?startDate=2025-06-28T00:00:00Z"
    "&endDate=9999-12-31T23:59:59Z&interval=15": ("message", "endDate"),
}


@pytest.mark.parametrize("url", OUT_OF_RANGE)
def test_dates_out_of_range_answer_422_naming_the_parameter(client, ewa, url):
    key, name = OUT_OF_RANGE[url]
    r = client.get(url, headers=ewa)
    assert r.status_code == 422, r.text
    message = r.json()[key]
    assert name in message and "years 1900 to 2999" in message


def test_a_battery_with_extreme_dates_answers_without_live_values(engine, raw, caplog):
    def battery(battery_id: str, start: date) -> Battery:
        return Battery(
            battery_id=battery_id,
            name=battery_id,
            partner_id="p",
            customer_id="c",
            meter_id=f"M-{battery_id}",
            capacity_kwh=5.0,
            timezone="Europe/Zurich",  # 00:00 local of year 1 is in year 0 in UTC
            start_date=start,
            end_date=None,
            level_kwh=1.5,
            charged_total_kwh=None,
            discharged_total_kwh=None,
            overflow_total_kwh=None,
            shortfall_total_kwh=None,
            forfeited_total_kwh=None,
            active_power_kw=None,
            reading_at=None,
            intervals=None,
            estimated_intervals=None,
        )

    listed = [battery("odd", date(1, 1, 1)), battery("fine", date(2025, 6, 1))]
    with caplog.at_level(logging.WARNING, "vbatt.api.live"), engine.connect() as conn:
        live = live_states(conn, listed, raw_schema=raw, now=datetime(2025, 7, 1, tzinfo=UTC))
    assert set(live) == {"odd", "fine"}
    odd = live["odd"]
    assert (odd.level.level_kwh, odd.level.provisional, odd.capacity_kwh) == (1.5, False, 5.0)
    assert odd.as_battery().level_kwh == 1.5
    assert "'odd' answered without live values" in caplog.text
    assert "'fine'" not in caplog.text


NUL_PATHS = [
    "/v1/batteries/a%00b",
    "/v1/batteries/a%00b/versions",
    "/api/Devices/a%00b",
    "/Devices/a%00b",
    "/api/MeterValues/a%00b?date=2025-06-28T12:00:00Z",
    "/dashboard/batteries/a%00b",
]
NUL_QUERIES = [
    ("/v1/batteries?q=%00", "q"),
    ("/v1/batteries?after=%00", "after"),
    ("/v1/batteries/b-ewa-1/intervals?start=2025-06-28%00", "start"),
    ("/api/MeterValues/b-ewa-1?date=2025-06-28T12:00:00Z%00", "date"),
    ("/dashboard?q=a%00", "q"),
]


def _message(r) -> str:
    """The message, checking the shape: the dashboard's page, smart-me's or FastAPI's."""
    if r.url.path.startswith("/dashboard"):
        assert r.headers["content-type"].startswith("text/html")
        return html.unescape(r.text)
    body = r.json()
    (key,) = body
    assert key == (error_key(r.url.path) or "detail"), body
    return body[key]


@pytest.mark.parametrize("url", NUL_PATHS)
def test_nul_in_a_path_is_404(client, ewa, url):
    r = client.get(url, headers=ewa)
    assert r.status_code == 404, r.text
    assert "NUL" in _message(r)
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]  # inside them


@pytest.mark.parametrize(("url", "name"), NUL_QUERIES)
def test_nul_in_a_query_parameter_is_422_naming_it(client, ewa, url, name):
    r = client.get(url, headers=ewa)
    assert r.status_code == 422, r.text
    assert f"'{name}' contains a NUL" in _message(r)


def test_validation_errors_on_smartme_routes_answer_in_smartme_shape(client, ewa):
    r = client.get("/api/ValuesInPastMultiple/b-ewa-1?interval=abc&" + SPAN, headers=ewa)
    assert r.status_code == 422
    assert list(r.json()) == ["Message"]
    assert "'interval'" in r.json()["Message"] and "'abc'" in r.json()["Message"]
    r = client.get(f"/ValuesInPastMultiple/{UUID}?interval=abc&" + SPAN, headers=ewa)
    assert r.status_code == 422 and "'interval'" in r.json()["message"]
    # the native API keeps FastAPI's list of errors
    r = client.get("/v1/batteries?limit=abc", headers=ewa)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "limit"]


def test_smartme_errors_say_what_is_wrong(client, ewa):
    r = client.get("/api/MeterValues/b-ewa-1?date=garbage", headers=ewa)
    assert r.status_code == 400
    assert "'date' is not a date-time: 'garbage'" in r.json()["Message"]
    r = client.get("/api/ValuesInPastMultiple/b-ewa-1?interval=-5&" + SPAN, headers=ewa)
    assert r.status_code == 400
    assert r.json()["Message"].startswith("interval must be a whole number of minutes, 0 or more")
    r = client.get("/api/MeterValues/b-ewa-1", headers=ewa)  # missing: still "required"
    assert r.status_code == 400 and "'date' (date-time) is required" in r.json()["Message"]


def test_intervals_write_instants_and_numbers_as_the_other_routes(client, ewa, api_warehouse):
    page = client.get(
        "/v1/batteries/b-ewa-1/intervals",
        params={"start": "2025-06-28", "end": "2025-06-29"},
        headers=ewa,
    )
    columns = ", ".join(Interval.model_fields)
    rows = api_warehouse.query(
        f"select {columns} from {{marts}}.battery_intervals where battery_id = 'b-ewa-1'"
        " and interval_start >= '2025-06-27T22:00Z' and interval_start < '2025-06-28T22:00Z'"
        " order by interval_start"
    )
    # what pydantic writes for these rows (as settlements, daily and series are written)
    want = [json.loads(Interval.model_validate(r).model_dump_json()) for r in rows]
    items = page.json()["items"]
    assert len(items) == 96
    assert json.dumps(items) == json.dumps(want)  # "0.0", not "0"; "...Z", not "+00:00"
    assert items[0]["interval_start"] == "2025-06-27T22:00:00Z"
    # paging still joins up on the last row's instant
    first = client.get(
        "/v1/batteries/b-ewa-1/intervals",
        params={"start": "2025-06-28", "end": "2025-06-29", "limit": 50},
        headers=ewa,
    ).json()
    rest = client.get(first["next"], headers=ewa).json()
    assert first["items"] + rest["items"] == items and rest["next"] is None


@pytest.mark.parametrize("form", [{"key": ""}, {"key": "   "}, {}])
def test_login_with_an_empty_key_shows_the_form_again(client, form):
    r = client.post("/dashboard/login", data=form)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("text/html")
    assert '<form method="post" action="/dashboard/login"' in r.text
    assert "Enter your API key to sign in." in r.text
    assert "vbatt_key" not in r.headers.get("set-cookie", "")
