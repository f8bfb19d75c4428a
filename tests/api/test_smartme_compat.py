"""The project's own smart-me client, pointed at the API, reads a battery like a meter."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.api.conftest import auth
from vbatt.ingest.smartme import SmartMeClient, SmartMeConfig, SmartMeNotFoundError


@pytest.fixture
def smartme(api_url, api_warehouse):
    config = SmartMeConfig(
        base_url=f"{api_url}/api",
        auth="api_key",
        api_key=api_warehouse.keys["ewa"],
        rate=None,
        max_retries=0,
        max_values_per_call=64,  # the API's limit is 1000; a small page makes the client page
        conn_id="vbatt_api",
    )
    with SmartMeClient(config) as c:
        yield c


def _cumulative(w, battery_id: str) -> list[dict]:
    return w.query(
        "select interval_end, level_kwh, power_kw,"
        " sum(charge_kwh) over (order by interval_start) as charged,"
        " sum(discharge_kwh) over (order by interval_start) as discharged"
        " from {marts}.battery_intervals where battery_id = :id order by interval_start",
        id=battery_id,
    )


def test_devices_are_the_partners_batteries_with_their_registers(smartme, api_warehouse):
    registers = {
        r["battery_id"]: r
        for r in api_warehouse.query(
            "select * from {marts}.battery_registers where partner_id = 'ewa'"
        )
    }
    devices = {d.id: d for d in smartme.list_devices()}
    assert set(devices) == set(registers) == {"b-ewa-1", "b-ewa-2"}
    for battery_id, r in registers.items():
        d = smartme.get_device(battery_id)
        assert d == devices[battery_id]
        assert d.name == r["name"]
        assert d.import_kwh == pytest.approx(r["charged_total_kwh"], abs=1e-9)
        assert d.export_kwh == pytest.approx(r["discharged_total_kwh"], abs=1e-9)
        assert d.value_date == r["reading_at"].astimezone(UTC)
        assert r["charged_total_kwh"] > 1  # June sun: the test is not about zeros


def test_device_fields_as_the_issue_maps_them(client, api_warehouse):
    r = api_warehouse.query("select * from {marts}.battery_registers where battery_id = 'b-ewa-1'")[
        0
    ]
    d = client.get("/api/Devices/b-ewa-1", headers=auth(api_warehouse.keys["ewa"])).json()
    # integers, as smart-me sends them: electricity, virtual battery, virtual meter family
    assert (d["DeviceEnergyType"], d["MeterSubType"], d["FamilyType"]) == (1, 9, 1002)
    assert d["CounterReading"] == pytest.approx(r["level_kwh"], abs=1e-9)
    assert d["CounterReadingImport"] == pytest.approx(r["charged_total_kwh"], abs=1e-9)
    assert d["CounterReadingExport"] == pytest.approx(r["discharged_total_kwh"], abs=1e-9)
    assert d["ActivePower"] == pytest.approx(r["active_power_kw"], abs=1e-9)
    assert d["CounterReadingUnit"] == "kWh" and d["ActivePowerUnit"] == "kW"
    assert d["ValueDate"] == r["reading_at"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_readings_are_the_cumulative_charge_and_discharge(smartme, api_warehouse):
    truth = _cumulative(api_warehouse, "b-ewa-2")
    start = datetime(2025, 6, 29, 22, 7, tzinfo=UTC)  # not on a boundary: the next one counts
    end = datetime(2025, 7, 2, 0, 0, tzinfo=UTC)  # across the reset on 1 July
    result = smartme.readings("b-ewa-2", start, end)
    assert result.rejected == []
    expected = [t for t in truth if start <= t["interval_end"] <= end]
    assert [r.ts for r in result.readings] == [t["interval_end"] for t in expected]
    for got, want in zip(result.readings, expected, strict=True):
        assert got.import_kwh == pytest.approx(want["charged"], abs=1e-9)
        assert got.export_kwh == pytest.approx(want["discharged"], abs=1e-9)
    assert len(result.readings) > 3 * 64  # the client had to page


def test_meter_value_is_the_last_before_the_date(smartme, client, api_warehouse):
    truth = _cumulative(api_warehouse, "b-ewa-1")
    at = datetime(2025, 6, 28, 14, 40, tzinfo=UTC)
    want = [t for t in truth if t["interval_end"] <= at][-1]
    result = smartme.meter_value_at("b-ewa-1", at)
    assert result.rejected == []
    (reading,) = result.readings
    assert reading.ts == want["interval_end"] == datetime(2025, 6, 28, 14, 30, tzinfo=UTC)
    assert reading.import_kwh == pytest.approx(want["charged"], abs=1e-9)
    assert reading.export_kwh == pytest.approx(want["discharged"], abs=1e-9)
    raw = client.get(
        "/api/MeterValues/b-ewa-1",
        params={"date": "2025-06-28T14:40:00Z"},
        headers=auth(api_warehouse.keys["ewa"]),
    ).json()
    assert raw["CounterReading"] == pytest.approx(want["level_kwh"], abs=1e-9)


def _values_in_past(client, api_warehouse, start: str, end: str, interval: int) -> list[dict]:
    """ewa's b-ewa-1 from smart-me's ValuesInPastMultiple, as a smart-me client asks."""
    return client.get(
        "/api/ValuesInPastMultiple/b-ewa-1",
        params={"startDate": start, "endDate": end, "interval": interval},
        headers=auth(api_warehouse.keys["ewa"]),
    ).json()


def test_hourly_values_and_power(client, api_warehouse):
    truth = {t["interval_end"]: t for t in _cumulative(api_warehouse, "b-ewa-1")}
    rows = _values_in_past(
        client, api_warehouse, "2025-06-26T00:00:00Z", "2025-06-26T05:59:59Z", 60
    )
    assert [r["Date"] for r in rows] == [f"2025-06-26T0{h}:00:00Z" for h in range(6)]
    for r in rows:
        t = truth[datetime.fromisoformat(r["Date"])]
        values = {v["Obis"]: v["Value"] for v in r["Values"]}
        assert values["1-0:1.8.0*255"] == pytest.approx(t["charged"], abs=1e-9)
        assert values["1-0:16.7.0*255"] == pytest.approx(t["power_kw"], abs=1e-9)


def test_another_partners_battery_is_not_found(smartme):
    with pytest.raises(SmartMeNotFoundError):
        smartme.get_device("b-sw-1")
    with pytest.raises(SmartMeNotFoundError):
        smartme.readings(
            "b-sw-1", datetime(2025, 6, 26, tzinfo=UTC), datetime(2025, 6, 26, 1, tzinfo=UTC)
        )
    before = datetime(2025, 6, 20, tzinfo=UTC)
    with pytest.raises(SmartMeNotFoundError):  # before the first interval: nothing to read
        smartme.meter_value_at("b-ewa-1", before - timedelta(days=1))


def test_daily_values_are_the_batteries_local_days(client, api_warehouse):
    """interval=1440: the registers at every local midnight of the battery (Europe/Zurich:
    22:00 UTC in summer), so a day's difference is battery_daily's local day."""
    days = api_warehouse.query(
        "select local_date, charge_kwh, discharge_kwh from {marts}.battery_daily"
        " where battery_id = 'b-ewa-1' order by local_date"
    )
    rows = _values_in_past(
        client, api_warehouse, "2025-06-25T00:00:00Z", "2025-06-29T00:00:00Z", 1440
    )
    assert [r["Date"] for r in rows] == [f"2025-06-{d}T22:00:00Z" for d in (25, 26, 27, 28)]
    for r in rows:
        midnight = datetime.fromisoformat(r["Date"]).astimezone(ZoneInfo("Europe/Zurich"))
        assert midnight.time() == time(0)
        before = [d for d in days if d["local_date"] < midnight.date()]
        values = {v["Obis"]: v["Value"] for v in r["Values"]}
        charged = sum(d["charge_kwh"] for d in before)
        assert values["1-0:1.8.0*255"] == pytest.approx(charged, abs=1e-9)
        discharged = sum(d["discharge_kwh"] for d in before)
        assert values["1-0:2.8.0*255"] == pytest.approx(discharged, abs=1e-9)


@pytest.mark.parametrize(
    ("day", "midnights", "hours"),
    [
        (date(2025, 3, 30), ["2025-03-29T23:00", "2025-03-30T22:00"], 23),  # summer time begins
        (date(2025, 10, 26), ["2025-10-25T22:00", "2025-10-26T23:00"], 25),  # and ends
    ],
)
def test_the_grid_follows_the_local_clock_over_summer_time(day, midnights, hours):
    from vbatt.api.queries import on_local_grid

    start = datetime.combine(day, time(0), UTC) - timedelta(hours=3)
    quarters = [start + timedelta(minutes=15 * k) for k in range(4 * 30)]
    zurich = "Europe/Zurich"
    days = [t for t in quarters if on_local_grid(t, zurich, 1440)]
    assert [t.strftime("%Y-%m-%dT%H:%M") for t in days] == midnights
    local_day = [t for t in quarters if days[0] <= t < days[1]]
    assert len([t for t in local_day if on_local_grid(t, zurich, 60)]) == hours
    assert all(on_local_grid(t, zurich, 15) for t in quarters)
    assert [t.hour for t in quarters if on_local_grid(t, "UTC", 1440)] == [0, 0]


@pytest.mark.parametrize(
    "zone, day, first",
    [  # summer time starts at midnight there: the day's first instant is 01:00 local
        ("America/Santiago", date(2025, 9, 7), "2025-09-07T04:00"),
        ("America/Havana", date(2025, 3, 9), "2025-03-09T05:00"),
    ],
)
def test_a_day_without_midnight_has_its_daily_value(zone, day, first):
    from vbatt.api.queries import on_local_grid

    start = datetime.combine(day, time(0), UTC) - timedelta(days=1)
    quarters = [start + timedelta(minutes=15 * k) for k in range(4 * 24 * 3)]
    days = [t.strftime("%Y-%m-%dT%H:%M") for t in quarters if on_local_grid(t, zone, 1440)]
    assert first in days
    assert len(days) == 3
    # every other day: some of those first instants, never another instant
    every_other = [t.strftime("%Y-%m-%dT%H:%M") for t in quarters if on_local_grid(t, zone, 2880)]
    assert every_other and set(every_other) < set(days)
