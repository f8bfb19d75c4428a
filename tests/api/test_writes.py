"""The write API for partners: create, version, end, list; every refusal with its status
and the fields it names; Idempotency-Key retries; the audit log; the meter check against
the simulated smart-me cloud. Batteries are created for partner solarwerk (a key of its
own), so the other tests' partners keep exactly their batteries."""

from __future__ import annotations

import hashlib
import secrets
from datetime import date

import pytest

from tests.api.conftest import FIRST_DAY, IMPORT_ONLY_METER, SOLAR_METER, auth


@pytest.fixture
def solar(api_warehouse):
    return auth(api_warehouse.keys["solar-write"])


def new_id(prefix: str = "sw") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def battery(battery_id: str, **over) -> dict:
    return {
        "battery_id": battery_id,
        "name": "Solar battery Frei",
        "customer_id": "k-77",
        "meter_id": SOLAR_METER,
        "capacity_kwh": 10,
        "start_date": "2030-01-01",
        "reset_date": "2031-01-01",
        "reset_repeat": "yearly",
        "timezone": "Europe/Zurich",
        **over,
    }


def audit(api_warehouse, battery_id: str) -> list[dict]:
    return api_warehouse.query(
        "select a.*, k.key_hash from {raw}.api_audit a join {raw}.api_keys k using (key_id)"
        " where a.battery_id = :b order by a.audit_id",
        b=battery_id,
    )


def test_create_version_list_and_end(client, api_warehouse, solar):
    bid = new_id()
    created = client.post("/v1/batteries", json=battery(bid), headers=solar)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["battery_id"] == bid and body["partner_id"] == "solarwerk"
    assert body["capacity_kwh"] == 10.0 and body["start_date"] == "2030-01-01"
    assert body["level_kwh"] is None  # no ledger run yet
    read = client.get(f"/v1/batteries/{bid}", headers=solar).json()
    assert read.pop("live")["provisional"] is False  # the read adds the live view (none yet)
    assert read == body

    version = client.post(
        f"/v1/batteries/{bid}/versions",
        json={"valid_from": "2030-06-01", "capacity_kwh": 20, "reason": "upgrade"},
        headers=solar,
    )
    assert version.status_code == 201, version.text
    assert version.json()["capacity_kwh"] == 20.0
    assert version.json()["meter_id"] == SOLAR_METER  # carried over

    listed = client.get(f"/v1/batteries/{bid}/versions", headers=solar).json()["items"]
    assert [(v["valid_from"], v["capacity_kwh"], v["valid_until"]) for v in listed] == [
        ("2030-01-01", 10.0, "2030-06-01"),
        ("2030-06-01", 20.0, None),
    ]
    assert listed[1]["reason"] == "upgrade"
    assert listed[1]["recorded_by"].startswith("api key vb_")

    ended = client.patch(f"/v1/batteries/{bid}", json={"end_date": "2031-01-01"}, headers=solar)
    assert ended.status_code == 200, ended.text
    assert ended.json()["end_date"] == "2031-01-01"
    cleared = client.patch(f"/v1/batteries/{bid}", json={"end_date": None}, headers=solar)
    assert cleared.status_code == 200 and cleared.json()["end_date"] is None

    rows = audit(api_warehouse, bid)
    assert [(r["action"], r["method"], r["status"]) for r in rows] == [
        ("create_battery", "POST", 201),
        ("add_version", "POST", 201),
        ("set_end_date", "PATCH", 200),
        ("set_end_date", "PATCH", 200),
    ]
    key = api_warehouse.keys["solar-write"]
    assert {r["key_hash"] for r in rows} == {hashlib.sha256(key.encode()).hexdigest()}
    assert {r["partner_id"] for r in rows} == {"solarwerk"}
    assert rows[0]["request"]["battery_id"] == bid and rows[0]["outcome"]["battery_id"] == bid
    assert all(r["key_prefix"] == key[:11] for r in rows)


def test_existing_battery_id_is_a_conflict(client, api_warehouse, solar):
    bid = new_id()
    assert client.post("/v1/batteries", json=battery(bid), headers=solar).status_code == 201
    again = client.post("/v1/batteries", json=battery(bid, name="other"), headers=solar)
    assert again.status_code == 409 and again.json()["code"] == "battery_exists"
    # an id of another partner's battery is taken too (and says no more than that)
    taken = client.post("/v1/batteries", json=battery("b-ewa-1"), headers=solar)
    assert taken.status_code == 409
    assert api_warehouse.query(
        "select partner_id, name from {raw}.batteries where battery_id = 'b-ewa-1'"
    ) == [{"partner_id": "ewa", "name": "Solar battery Meier"}]
    assert [r["status"] for r in audit(api_warehouse, bid)] == [201, 409]


def test_invalid_input_names_every_bad_field(client, api_warehouse, solar):
    bid = new_id()
    bad = battery(
        bid,
        capacity_kwh=-1,
        timezone="Mars/Olympus",
        start_date="2030-02-30",
        reset_date="soon",
        partner_id="ewa",
        colour="green",
    )
    response = client.post("/v1/batteries", json=bad, headers=solar)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert set(errors) == {
        "capacity_kwh",
        "timezone",
        "start_date",
        "reset_date",
        "partner_id",
        "colour",
    }
    assert "negative" in errors["capacity_kwh"]
    assert "Mars/Olympus" in errors["timezone"]
    assert "not a date" in errors["start_date"] and "not a date" in errors["reset_date"]
    assert "not this key's partner" in errors["partner_id"]
    assert api_warehouse.query("select * from {raw}.batteries where battery_id = :b", b=bid) == []

    numbers = client.post("/v1/batteries", json=battery(bid, capacity_kwh="10"), headers=solar)
    assert numbers.status_code == 422 and set(numbers.json()["errors"]) == {"capacity_kwh"}
    slash = client.post("/v1/batteries", json=battery("a/b"), headers=solar)
    assert slash.status_code == 422 and set(slash.json()["errors"]) == {"battery_id"}
    not_json = client.post(
        "/v1/batteries", content=b"battery_id=1", headers=solar | {"Content-Type": "text/plain"}
    )
    assert not_json.status_code == 422 and set(not_json.json()["errors"]) == {"body"}


def test_version_refusals(client, solar):
    bid = new_id()
    assert client.post("/v1/batteries", json=battery(bid), headers=solar).status_code == 201
    url = f"/v1/batteries/{bid}/versions"

    before = client.post(url, json={"valid_from": "2029-12-31", "name": "x"}, headers=solar)
    assert before.status_code == 422 and set(before.json()["errors"]) == {"valid_from"}
    assert "before the start_date" in before.json()["errors"]["valid_from"]

    bad = client.post(
        url, json={"valid_from": "2030-03-01", "capacity_kwh": -5, "replace": "yes"}, headers=solar
    )
    assert bad.status_code == 422 and set(bad.json()["errors"]) == {"capacity_kwh", "replace"}
    fixed = client.post(
        url,
        json={"valid_from": "2030-03-01", "timezone": "UTC", "end_date": "2031-01-01"},
        headers=solar,
    )
    assert fixed.status_code == 422 and set(fixed.json()["errors"]) == {"timezone", "end_date"}
    assert "fixed" in fixed.json()["errors"]["timezone"]

    first = client.post(url, json={"valid_from": "2030-03-01", "capacity_kwh": 5}, headers=solar)
    assert first.status_code == 201
    clash = client.post(url, json={"valid_from": "2030-03-01", "capacity_kwh": 7}, headers=solar)
    assert clash.status_code == 409 and clash.json()["code"] == "version_exists"
    replaced = client.post(
        url, json={"valid_from": "2030-03-01", "capacity_kwh": 7, "replace": True}, headers=solar
    )
    assert replaced.status_code == 201 and replaced.json()["supersedes"] == 1
    versions = client.get(url, headers=solar).json()["items"]
    assert [v["capacity_kwh"] for v in versions] == [10.0, 7.0]
    history = client.get(url, params={"history": "true"}, headers=solar).json()["items"]
    assert [(h["capacity_kwh"], h["in_force"]) for h in history] == [
        (10.0, True),
        (5.0, False),
        (7.0, True),
    ]

    patch = client.patch(
        f"/v1/batteries/{bid}", json={"end_date": "2031-01-01", "capacity_kwh": 3}, headers=solar
    )
    assert patch.status_code == 422 and set(patch.json()["errors"]) == {"capacity_kwh"}
    early = client.patch(f"/v1/batteries/{bid}", json={"end_date": "2030-02-01"}, headers=solar)
    assert early.status_code == 422 and set(early.json()["errors"]) == {"end_date"}


def test_read_keys_list_versions_of_their_batteries(client, api_warehouse):
    for who in ("ewa", "c-1"):
        items = client.get(
            "/v1/batteries/b-ewa-1/versions", headers=auth(api_warehouse.keys[who])
        ).json()["items"]
        assert [(v["valid_from"], v["capacity_kwh"]) for v in items] == [
            (FIRST_DAY.isoformat(), 5.0)
        ]


def test_idempotency_key_replays_the_first_answer(client, api_warehouse, solar):
    bid = new_id()
    headers = solar | {"Idempotency-Key": f"create-{bid}"}
    first = client.post("/v1/batteries", json=battery(bid), headers=headers)
    again = client.post("/v1/batteries", json=battery(bid), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    other = client.post("/v1/batteries", json=battery(bid, name="Another"), headers=headers)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert api_warehouse.query(
        "select count(*) as n from {raw}.battery_versions where battery_id = :b", b=bid
    ) == [{"n": 1}]
    # a version posted twice with its key is recorded once
    vheaders = solar | {"Idempotency-Key": f"version-{bid}"}
    body = {"valid_from": "2030-05-01", "meter_id": "CH-FILE-8"}
    a = client.post(f"/v1/batteries/{bid}/versions", json=body, headers=vheaders)
    b = client.post(f"/v1/batteries/{bid}/versions", json=body, headers=vheaders)
    assert a.status_code == b.status_code == 201 and a.json() == b.json()
    assert api_warehouse.query(
        "select count(*) as n from {raw}.battery_versions where battery_id = :b", b=bid
    ) == [{"n": 2}]
    rows = audit(api_warehouse, bid)
    assert [(r["status"], r["replayed"]) for r in rows] == [
        (201, False),
        (201, True),
        (422, False),
        (201, False),
        (201, True),
    ]
    # keys are per API key: another key's same Idempotency-Key is a request of its own
    ewa = auth(api_warehouse.keys["ewa-write"]) | {"Idempotency-Key": f"create-{bid}"}
    assert client.post("/v1/batteries", json=battery(bid), headers=ewa).status_code == 409


def test_meter_without_export_register_is_refused(client, api_warehouse, solar):
    bid = new_id()
    refused = client.post(
        "/v1/batteries", json=battery(bid, meter_id=IMPORT_ONLY_METER), headers=solar
    )
    assert refused.status_code == 422, refused.text
    message = refused.json()["errors"]["meter_id"]
    assert "no export register" in message and "both directions" in message
    # a meter the cloud does not know passes (its readings may come as files)
    unknown = client.post("/v1/batteries", json=battery(bid, meter_id="CH-FILE-9"), headers=solar)
    assert unknown.status_code == 201
    swap = client.post(
        f"/v1/batteries/{bid}/versions",
        json={"valid_from": "2030-07-01", "meter_id": IMPORT_ONLY_METER},
        headers=solar,
    )
    assert swap.status_code == 422 and "no export register" in swap.json()["errors"]["meter_id"]
    ok = client.post(
        f"/v1/batteries/{bid}/versions",
        json={"valid_from": "2030-07-01", "meter_id": "SIM-0004"},
        headers=solar,
    )
    assert ok.status_code == 201


ISSUED_DAY = date(2025, 6, 28)


@pytest.fixture
def stadtwerk_issued(api_warehouse, tmp_path):
    """stadtwerk was sent its files for ISSUED_DAY, so its changes up to that day are
    backdated. Yields stadtwerk's write key and a list for the ids of the batteries a test
    makes: deleted afterwards with their re-issue requests, and the issue too, so the other
    tests (of this worker's warehouse, in any order) see stadtwerk as before."""
    from sqlalchemy import text

    from tests.exports.conftest import make_partner
    from vbatt.exports.period import day_period
    from vbatt.exports.run import export_partner

    pipeline = api_warehouse.pipeline
    results, _ = export_partner(
        pipeline.engine,
        make_partner("stadtwerk", [{"format": "csv"}]),
        day_period(ISSUED_DAY, "Europe/Zurich"),
        tmp_path / "outbox",
        schema=pipeline.schema,
        raw_schema=pipeline.raw,
    )
    assert [r.status for r in results] == ["new"]
    made: list[str] = []
    yield auth(api_warehouse.keys["stadtwerk-write"]), made
    with pipeline.engine.begin() as conn:
        for table in ("reissue_requests", "batteries"):
            conn.execute(
                text(f"delete from {pipeline.raw}.{table} where battery_id = any(:b)"),
                {"b": made},
            )
        conn.execute(
            text(
                f"delete from {pipeline.raw}.export_files"
                " where partner_id = 'stadtwerk' and period_label = :label"
            ),
            {"label": ISSUED_DAY.isoformat()},
        )


def test_a_new_battery_in_issued_periods_needs_backdate(client, api_warehouse, stadtwerk_issued):
    """stadtwerk's files of a day went out without a battery it creates later with a start
    on or before that day: refused unless the body says backdate, as a change would be (else
    that battery's energy of the day would reach no one); then the day is re-issued."""
    key, made = stadtwerk_issued
    bid = new_id("bn")
    made.append(bid)
    body = battery(bid, start_date=ISSUED_DAY.isoformat(), reset_date=None, meter_id="SIM-0003")
    refused = client.post("/v1/batteries", json=body, headers=key)
    assert refused.status_code == 409 and refused.json()["code"] == "backdated"
    detail = refused.json()["detail"]
    assert f"a new battery starting on {ISSUED_DAY} reaches into periods already issued" in detail
    assert '"backdate": true' in detail and "--backdate" not in detail
    assert client.get(f"/v1/batteries/{bid}", headers=key).status_code == 404
    # bad fields come first, every one named, a backdate that is no boolean among them
    bad = client.post(
        "/v1/batteries", json=body | {"capacity_kwh": -1, "backdate": "yes"}, headers=key
    )
    assert bad.status_code == 422 and set(bad.json()["errors"]) == {"capacity_kwh", "backdate"}
    created = client.post("/v1/batteries", json=body | {"backdate": True}, headers=key)
    assert created.status_code == 201 and created.json()["start_date"] == ISSUED_DAY.isoformat()
    requests = api_warehouse.query(
        "select from_date from {raw}.reissue_requests where battery_id = :b", b=bid
    )
    assert [r["from_date"] for r in requests] == [ISSUED_DAY]
    # a taken id is the clash to report, not the issued periods
    again = client.post("/v1/batteries", json=body, headers=key)
    assert again.status_code == 409 and again.json()["code"] == "battery_exists"


def test_a_backdated_change_needs_backdate(client, stadtwerk_issued):
    """Once stadtwerk was sent its files for a day, a change dated inside that day is
    refused unless the body says backdate (then corrections follow)."""
    key, made = stadtwerk_issued
    bid = new_id("bd")
    made.append(bid)
    body = battery(bid, start_date="2025-06-24", reset_date=None, meter_id="SIM-0003")
    created = client.post("/v1/batteries", json=body | {"backdate": True}, headers=key)
    assert created.status_code == 201
    end = client.patch(f"/v1/batteries/{bid}", json={"end_date": "2025-06-27"}, headers=key)
    assert end.status_code == 409 and end.json()["code"] == "backdated"
    url = f"/v1/batteries/{bid}/versions"
    change = {"valid_from": "2025-06-28", "capacity_kwh": 3}
    refused = client.post(url, json=change, headers=key)
    assert refused.status_code == 409 and refused.json()["code"] == "backdated"
    assert "backdate" in refused.json()["detail"]
    taken = client.post(url, json=change | {"backdate": True}, headers=key)
    assert taken.status_code == 201
    after = client.post(url, json={"valid_from": "2025-06-29", "name": "n"}, headers=key)
    assert after.status_code == 201  # after the issued day: not backdated


def test_a_battery_shows_the_terms_in_force_today(client, solar):
    """A change from a future date is listed as a version, but the battery (and so the
    dashboard's gauge) shows the terms in force today until then."""
    bid = new_id()
    body = battery(bid, start_date="2025-01-01", reset_date=None)
    assert client.post("/v1/batteries", json=body, headers=solar).status_code == 201
    future = {"valid_from": "2099-01-01", "capacity_kwh": 1, "name": "Later"}
    assert (
        client.post(f"/v1/batteries/{bid}/versions", json=future, headers=solar).status_code == 201
    )
    now = client.get(f"/v1/batteries/{bid}", headers=solar).json()
    assert (now["capacity_kwh"], now["name"]) == (10.0, "Solar battery Frei")
    listed = client.get("/v1/batteries", params={"q": bid}, headers=solar).json()["items"]
    assert [(b["battery_id"], b["capacity_kwh"]) for b in listed] == [(bid, 10.0)]
    past = {"valid_from": "2025-06-01", "capacity_kwh": 4, "backdate": True}
    assert client.post(f"/v1/batteries/{bid}/versions", json=past, headers=solar).status_code == 201
    assert client.get(f"/v1/batteries/{bid}", headers=solar).json()["capacity_kwh"] == 4.0
