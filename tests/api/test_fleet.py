"""The fleet: a key's batteries summed (count, level now, current settlement periods) and
one list of all their settlement periods, as the marts hold them; which batteries are
running and which names find them, by each battery's own local date."""

from __future__ import annotations

import csv
import io
import secrets
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.api.conftest import auth

SUMS = ("charge_kwh", "discharge_kwh", "overflow_kwh", "shortfall_kwh", "forfeited_kwh")
# UTC+14 and UTC-11: at every hour of the day one of them is on another date than UTC
# (Kiritimati from 10:00 UTC, Pago Pago before 11:00 UTC), so "today" taken as UTC's date
# is wrong for at least one of them whenever the tests run
FAR_ZONES = ("Pacific/Kiritimati", "Pacific/Pago_Pago")


def local_today(timezone: str):
    return datetime.now(UTC).astimezone(ZoneInfo(timezone)).date()


@pytest.fixture
def own_partner(api_warehouse):
    """A partner of its own (no other test's batteries): its read key's headers, and a
    function recording one of its batteries (the warehouse's create_battery, each on a
    meter of its own) that returns the battery id."""
    from vbatt.api.keys import Principal, create_key
    from vbatt.warehouse.versions import create_battery

    partner, engine, raw = (
        f"own-{secrets.token_hex(3)}",
        api_warehouse.pipeline.engine,
        api_warehouse.raw,
    )
    key = create_key(engine, Principal(partner_id=partner), raw_schema=raw).key

    def add(timezone: str, **fields) -> str:
        battery_id = f"{partner}-{secrets.token_hex(3)}"
        battery = {
            "battery_id": battery_id,
            "partner_id": partner,
            "meter_id": f"M-{battery_id}",
            "capacity_kwh": 5,
            "start_date": local_today(timezone) - timedelta(days=60),
            "timezone": timezone,
            **fields,
        }
        with engine.begin() as conn:
            create_battery(conn, battery, recorded_by="tests", raw_schema=raw)
        return battery_id

    return auth(key), add


@pytest.mark.parametrize(
    ("who", "batteries"), [("ewa", ("b-ewa-1", "b-ewa-2")), ("c-1", ("b-ewa-1",))]
)
def test_fleet_sums_the_keys_batteries(client, api_warehouse, who, batteries):
    fleet = client.get("/v1/fleet", headers=auth(api_warehouse.keys[who])).json()
    regs = api_warehouse.query(
        "select * from {marts}.battery_registers where battery_id = any(:ids)", ids=list(batteries)
    )
    current = api_warehouse.query(
        "select distinct on (battery_id) * from {marts}.settlement_periods"
        " where battery_id = any(:ids) order by battery_id, period_start desc",
        ids=list(batteries),
    )
    assert fleet["batteries"] == fleet["active_batteries"] == len(batteries)
    assert fleet["level_kwh"] == pytest.approx(sum(r["level_kwh"] for r in regs), abs=1e-9)
    totals = fleet["current_periods"]
    assert totals["periods"] == len(current) == len(batteries)
    for column in SUMS:
        assert totals[column] == pytest.approx(sum(c[column] for c in current), abs=1e-9)
    # a real sum: the current periods hold energy
    assert sum(c["charge_kwh"] for c in current) > 0


def test_settlements_of_all_batteries_as_csv_and_pages(client, api_warehouse):
    key = auth(api_warehouse.keys["ewa"])
    rows = api_warehouse.query(
        "select * from {marts}.settlement_periods where battery_id in ('b-ewa-1', 'b-ewa-2')"
        " order by battery_id, period_start"
    )
    response = client.get("/v1/settlements", params={"format": "csv"}, headers=key)
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="ewa-settlements.csv"' in response.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert list(table[0])[:3] == ["battery_id", "period_start", "period_end"]
    assert [(r["battery_id"], r["charge_kwh"]) for r in table] == [
        (r["battery_id"], str(r["charge_kwh"])) for r in rows
    ]
    assert len({r["battery_id"] for r in table}) == 2 and len(table) >= 3
    items, page = [], client.get("/v1/settlements", params={"limit": 2}, headers=key).json()
    while True:
        items += page["items"]
        if not page["next"]:
            break
        page = client.get(page["next"], headers=key).json()
    assert [(i["battery_id"], i["forfeited_kwh"]) for i in items] == [
        (r["battery_id"], r["forfeited_kwh"]) for r in rows
    ]
    bad = client.get("/v1/settlements", params={"after": "nonsense"}, headers=key)
    assert bad.status_code == 422


@pytest.mark.parametrize("timezone", FAR_ZONES)
def test_active_batteries_end_on_their_own_local_date(client, own_partner, timezone):
    """A battery stops at 00:00 local on its end_date: ending today (local) it no longer
    runs, ending tomorrow (local) it still does, whatever UTC's date is now."""
    headers, add = own_partner
    today = local_today(timezone)
    add(timezone, end_date=today)
    add(timezone, end_date=today + timedelta(days=1))
    add(timezone)  # no end
    fleet = client.get("/v1/fleet", headers=headers).json()
    assert (fleet["batteries"], fleet["active_batteries"]) == (3, 2), (today, fleet)


def add_versions(api_warehouse, battery_id: str, *versions: tuple) -> None:
    """Versions (valid_from, name[, replace]) recorded as a partner's system would."""
    from vbatt.warehouse.versions import add_version

    with api_warehouse.pipeline.engine.begin() as conn:
        for valid_from, name, *replace in versions:
            add_version(
                conn,
                battery_id,
                valid_from,
                {"name": name},
                recorded_by="tests",
                replace=bool(replace),
                raw_schema=api_warehouse.raw,
            )


@pytest.mark.parametrize("timezone", FAR_ZONES)
def test_q_finds_the_name_in_force_and_earlier_ones_not_one_to_come(
    client, api_warehouse, own_partner, timezone
):
    """Renamed last month and today (the battery's local date): found by today's name and
    by both earlier ones, shown with today's; tomorrow's name finds nothing, nor does a
    name replaced by a correction."""
    headers, add = own_partner
    today, tag = local_today(timezone), secrets.token_hex(3)
    bid = add(timezone, name=f"Alpha {tag}")
    add_versions(
        api_warehouse,
        bid,
        (today - timedelta(days=30), f"Btea {tag}"),
        (today - timedelta(days=30), f"Beta {tag}", "replace"),
        (today, f"Gamma {tag}"),
        (today + timedelta(days=1), f"Delta {tag}"),
    )

    def found(q: str) -> list[tuple[str, str]]:
        page = client.get("/v1/batteries", params={"q": q}, headers=headers).json()
        return [(b["battery_id"], b["name"]) for b in page["items"]]

    for name in ("Alpha", "Beta", "Gamma", "gamma"):
        assert found(f"{name} {tag}") == [(bid, f"Gamma {tag}")], name
    assert found(f"Delta {tag}") == [] and found(f"Btea {tag}") == []
    assert found(tag) == [(bid, f"Gamma {tag}")]
