"""What a reviewer sent the write API to break it: another partner's meter, dates of year
1, NaN, NUL characters, odd timezones, ids with spaces, huge bodies, a battery without
version records, what a customer's key sees of the versions and an Idempotency-Key retry
that writes a number otherwise (``5.0`` for ``5``). Each is refused with a status and the
field named (or, where the input is fine, done), never a 500, and the refusal is in the
audit log. Batteries are created for partner solarwerk; the few that
stadtwerk creates are deleted at the end."""

from __future__ import annotations

import json
import secrets

import pytest
from sqlalchemy import text

from tests.api.conftest import SOLAR_METER, auth
from tests.api.test_writes import audit, battery, new_id


@pytest.fixture
def solar(api_warehouse):
    return auth(api_warehouse.keys["solar-write"])


@pytest.fixture
def stadtwerk(api_warehouse):
    """stadtwerk's write key; its batteries made here are deleted afterwards, so the other
    tests see stadtwerk's batteries unchanged."""
    made: list[str] = []
    yield auth(api_warehouse.keys["stadtwerk-write"]), made
    with api_warehouse.pipeline.engine.begin() as conn:
        conn.execute(
            text(
                f"delete from {api_warehouse.raw}.batteries"
                " where battery_id = any(cast(:b as text[]))"
            ),
            {"b": made},
        )


def stored(api_warehouse, battery_id: str) -> list[dict]:
    return api_warehouse.query(
        "select battery_id from {raw}.batteries where battery_id = :b", b=battery_id
    )


def test_another_partners_meter_is_refused_while_it_is_theirs(client, api_warehouse, stadtwerk):
    key, made = stadtwerk
    bid = new_id("leak")
    # SIM-0001 is the meter of ewa's b-ewa-1 (from 2025-06-24, no end)
    body = battery(bid, meter_id="SIM-0001", start_date="2030-01-01")
    refused = client.post("/v1/batteries", json=body, headers=key)
    assert refused.status_code == 422, refused.text
    message = refused.json()["errors"]["meter_id"]
    assert "not available" in message and "ask the utility" in message
    assert "ewa" not in message and "b-ewa" not in message  # nothing about the other one
    assert stored(api_warehouse, bid) == []
    assert [r["status"] for r in audit(api_warehouse, bid)] == [422]

    # its own meter (shared with its own b-sw-1: one partner's batteries may share one)
    made.append(bid)
    own = client.post("/v1/batteries", json=battery(bid, meter_id="SIM-0003"), headers=key)
    assert own.status_code == 201, own.text
    swap = client.post(
        f"/v1/batteries/{bid}/versions",
        json={"valid_from": "2030-06-01", "meter_id": "SIM-0001"},
        headers=key,
    )
    assert swap.status_code == 422 and set(swap.json()["errors"]) == {"meter_id"}
    items = client.get(f"/v1/batteries/{bid}/versions", headers=key).json()["items"]
    assert [v["meter_id"] for v in items] == ["SIM-0003"]


def test_a_meter_moves_to_another_partner_when_the_first_battery_ends(
    client, api_warehouse, solar, stadtwerk
):
    """A customer switching supplier: solarwerk's battery ends on 2031-01-01, stadtwerk's
    starts that day on the same meter; any overlap is refused, also one made later by
    moving the first battery's end."""
    key, made = stadtwerk
    meter = f"CH-SWITCH-{secrets.token_hex(3)}"  # unknown to the cloud: passes its check
    first = new_id()
    old = battery(first, meter_id=meter, start_date="2030-01-01", end_date="2031-01-01")
    assert client.post("/v1/batteries", json=old, headers=solar).status_code == 201

    early, later, by_version = new_id("sw-early"), new_id("sw-later"), new_id("sw-ver")
    made += [early, later, by_version]
    overlap = battery(early, meter_id=meter, start_date="2030-12-01")
    response = client.post("/v1/batteries", json=overlap, headers=key)
    assert response.status_code == 422 and set(response.json()["errors"]) == {"meter_id"}
    after = battery(later, meter_id=meter, start_date="2031-01-01", reset_date=None)
    assert client.post("/v1/batteries", json=after, headers=key).status_code == 201

    # a version may switch to the meter from the day it is free, not before
    own = battery(by_version, meter_id="SIM-0003", start_date="2030-01-01")
    assert client.post("/v1/batteries", json=own, headers=key).status_code == 201
    url = f"/v1/batteries/{by_version}/versions"
    too_early = client.post(url, json={"valid_from": "2030-12-31", "meter_id": meter}, headers=key)
    assert too_early.status_code == 422 and set(too_early.json()["errors"]) == {"meter_id"}
    switch = client.post(url, json={"valid_from": "2031-01-01", "meter_id": meter}, headers=key)
    assert switch.status_code == 201, switch.text

    # solarwerk's battery cannot run on into stadtwerk's time any more
    for end in ("2031-06-01", None):
        moved = client.patch(f"/v1/batteries/{first}", json={"end_date": end}, headers=solar)
        assert moved.status_code == 422 and set(moved.json()["errors"]) == {"end_date"}
    earlier = client.patch(f"/v1/batteries/{first}", json={"end_date": "2030-12-01"}, headers=solar)
    assert earlier.status_code == 200


@pytest.mark.parametrize(
    "over, field",
    [
        ({"start_date": "0001-01-01"}, "start_date"),
        ({"start_date": "1999-12-31"}, "start_date"),
        ({"end_date": "9999-12-31"}, "end_date"),
        ({"reset_date": "2200-01-01"}, "reset_date"),
    ],
)
def test_dates_outside_2000_to_2199_are_refused(client, api_warehouse, solar, over, field):
    bid = new_id()
    response = client.post("/v1/batteries", json=battery(bid, **over), headers=solar)
    assert response.status_code == 422 and set(response.json()["errors"]) == {field}
    assert "2000-01-01 to 2199-12-31" in response.json()["errors"][field]
    assert stored(api_warehouse, bid) == []
    # the symptom: every smart-me listing of the partner answered 500
    assert client.get("/api/Devices", headers=solar).status_code == 200


def test_version_and_end_dates_outside_the_range_are_refused(client, solar):
    bid = new_id()
    assert client.post("/v1/batteries", json=battery(bid), headers=solar).status_code == 201
    url = f"/v1/batteries/{bid}/versions"
    late = client.post(url, json={"valid_from": "2200-01-01", "name": "x"}, headers=solar)
    assert late.status_code == 422 and "2199-12-31" in late.json()["errors"]["valid_from"]
    end = client.patch(f"/v1/batteries/{bid}", json={"end_date": "9999-01-01"}, headers=solar)
    assert end.status_code == 422 and set(end.json()["errors"]) == {"end_date"}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"capacity_kwh": NaN}',
        b'{"capacity_kwh": Infinity}',
        b'{"capacity_kwh": -Infinity}',
        b'{"capacity_kwh": 1e400}',
        b"[" * 60_000,  # under the body limit: the parser's recursion
        b"[" * 900 + b"]" * 900,
    ],
    ids=["nan", "infinity", "-infinity", "1e400", "deep", "deep-but-closed"],
)
def test_bodies_that_are_not_json_are_refused_and_audited(client, api_warehouse, solar, raw):
    bid = new_id("nj")
    content = raw.replace(b'{"capacity_kwh"', b'{"battery_id": "%s", "capacity_kwh"' % bid.encode())
    headers = solar | {"Content-Type": "application/json"}
    refusals = (
        "select count(*) as n from {raw}.api_audit where action = 'create_battery'"
        " and status = 422 and request = 'null'::jsonb and outcome->'errors' ? 'body'"
    )
    before = api_warehouse.query(refusals)[0]["n"]
    response = client.post("/v1/batteries", content=content, headers=headers)
    assert response.status_code == 422, response.text
    assert set(response.json()["errors"]) == {"body"}
    assert "not JSON" in response.json()["errors"]["body"]
    assert api_warehouse.query(refusals)[0]["n"] == before + 1  # the refusal is audited


def test_a_nul_character_is_refused_naming_the_field(client, api_warehouse, solar):
    bid = new_id()
    for field in ("name", "customer_id", "meter_id"):
        response = client.post("/v1/batteries", json=battery(bid, **{field: "a\0b"}), headers=solar)
        assert response.status_code == 422 and set(response.json()["errors"]) == {field}
        assert "NUL" in response.json()["errors"][field]
    reason = client.post("/v1/batteries", json=battery(bid, reason="why\0"), headers=solar)
    assert reason.status_code == 422 and set(reason.json()["errors"]) == {"reason"}
    # a NUL in a field name: refused as unknown, and still audited
    odd = client.post("/v1/batteries", json=battery(bid, **{"x\0y": 1}), headers=solar)
    assert odd.status_code == 422 and len(odd.json()["errors"]) == 1
    assert [r["status"] for r in audit(api_warehouse, bid)] == [422] * 5
    assert stored(api_warehouse, bid) == []

    assert client.post("/v1/batteries", json=battery(bid), headers=solar).status_code == 201
    url = f"/v1/batteries/{bid}/versions"
    version = client.post(url, json={"valid_from": "2030-03-01", "name": "a\0"}, headers=solar)
    assert version.status_code == 422 and set(version.json()["errors"]) == {"name"}


@pytest.mark.parametrize("timezone", ["Europe", "A" * 300])
def test_timezones_that_are_no_zone_are_refused(client, solar, timezone):
    body = battery(new_id(), timezone=timezone)
    response = client.post("/v1/batteries", json=body, headers=solar)
    assert response.status_code == 422 and set(response.json()["errors"]) == {"timezone"}
    assert "is not an IANA time zone" in response.json()["errors"]["timezone"]


@pytest.mark.parametrize("padding", [(" ", " "), ("", "\n"), ("\t", "")])
def test_an_id_with_surrounding_whitespace_is_stored_and_answered_stripped(
    client, api_warehouse, solar, padding
):
    bid = new_id("ws")
    sent = padding[0] + bid + padding[1]
    response = client.post("/v1/batteries", json=battery(sent), headers=solar)
    assert response.status_code == 201, response.text
    assert response.json()["battery_id"] == bid
    assert stored(api_warehouse, bid) == [{"battery_id": bid}]
    assert [r["status"] for r in audit(api_warehouse, bid)] == [201]


def test_the_id_of_the_add_battery_page_is_reserved(client, api_warehouse, solar):
    """/dashboard/batteries/new is the portal's form: a battery "new" could never be
    opened (ids with slashes or spaces were refused already; now by the shared rule)."""
    for bad in ("new", "x/y z"):
        response = client.post("/v1/batteries", json=battery(bad), headers=solar)
        assert response.status_code == 422 and set(response.json()["errors"]) == {"battery_id"}
        assert stored(api_warehouse, bad) == []


def test_conflicts_give_one_hint_for_the_api(client, solar):
    bid = new_id()
    assert client.post("/v1/batteries", json=battery(bid), headers=solar).status_code == 201
    url = f"/v1/batteries/{bid}/versions"
    first = client.post(url, json={"valid_from": "2030-03-01", "name": "a"}, headers=solar)
    assert first.status_code == 201
    clash = client.post(url, json={"valid_from": "2030-03-01", "name": "b"}, headers=solar)
    assert clash.status_code == 409
    detail = clash.json()["detail"]
    assert detail.count("replace") == 1 and 'Send "replace": true' in detail
    assert "supersede" in detail and detail.count("supersede") == 1


def test_backdated_refusals_give_one_hint_per_caller():
    from datetime import date

    from vbatt.api.writes import _refusal
    from vbatt.warehouse.versions import BackdatedChange, VersionExists

    backdated = BackdatedChange("battery 'b': a change reaches", date(2026, 2, 1), date(2026, 1, 5))
    api = _refusal(backdated).detail
    assert api.count("backdate") == 1 and '"backdate": true' in api and "--backdate" not in api
    cli = str(backdated)
    assert cli.count("backdate") == 2 and "--backdate" in cli and '"backdate"' not in cli
    exists = _refusal(VersionExists("battery 'b' has a version")).detail
    assert exists.count("replace") == 1


def test_a_battery_without_version_records_takes_versions(client, api_warehouse, solar):
    """A row written straight into raw.batteries reads as one version from its start: a
    version from that day is a clash (409, not a 500), a later one keeps the first."""
    bid = new_id("sql")
    with api_warehouse.pipeline.engine.begin() as conn:
        conn.execute(
            text(
                f"insert into {api_warehouse.raw}.batteries (battery_id, name, partner_id,"
                " customer_id, meter_id, capacity_kwh, start_date) values"
                " (:b, 'By SQL', 'solarwerk', 'k-1', :m, 5, '2030-01-01')"
            ),
            {"b": bid, "m": SOLAR_METER},
        )
    url = f"/v1/batteries/{bid}/versions"
    clash = client.post(url, json={"valid_from": "2030-01-01", "capacity_kwh": 6}, headers=solar)
    assert clash.status_code == 409, clash.text
    assert clash.json()["code"] == "version_exists"
    later = client.post(url, json={"valid_from": "2030-06-01", "capacity_kwh": 6}, headers=solar)
    assert later.status_code == 201, later.text
    items = client.get(url, headers=solar).json()["items"]
    assert [(v["valid_from"], v["capacity_kwh"]) for v in items] == [
        ("2030-01-01", 5.0),
        ("2030-06-01", 6.0),
    ]


def test_a_body_over_64_kb_is_refused_with_413(client, api_warehouse, solar):
    bid = new_id("big")
    body = battery(bid, name="x" * 70_000)
    response = client.post("/v1/batteries", json=body, headers=solar)
    assert response.status_code == 413 and response.json()["code"] == "body_too_large"
    assert "64 kB" in response.json()["detail"]
    assert stored(api_warehouse, bid) == []
    # without a Content-Length (chunked), read no further than the limit either
    chunks = (json.dumps(body).encode()[i : i + 8192] for i in range(0, 80_000, 8192))
    headers = solar | {"Content-Type": "application/json"}
    chunked = client.post("/v1/batteries", content=chunks, headers=headers)
    assert chunked.status_code == 413
    statuses = api_warehouse.query(
        "select status from {raw}.api_audit where action = 'create_battery' and status = 413"
    )
    assert len(statuses) >= 2


@pytest.mark.parametrize(
    "field, limit", [("name", 200), ("customer_id", 200), ("meter_id", 100), ("reason", 1000)]
)
def test_text_fields_have_a_maximum_length(client, api_warehouse, solar, field, limit):
    bid = new_id()
    response = client.post(
        "/v1/batteries", json=battery(bid, **{field: "x" * (limit + 1)}), headers=solar
    )
    assert response.status_code == 422 and set(response.json()["errors"]) == {field}
    assert f"at most {limit}" in response.json()["errors"][field]
    fits = client.post("/v1/batteries", json=battery(bid, **{field: "x" * limit}), headers=solar)
    assert fits.status_code == 201, fits.text


def test_refusals_repeat_a_bad_value_shortened(client, api_warehouse, solar):
    bid = new_id()
    body = battery(bid, capacity_kwh="9" * 20_000, start_date="s" * 20_000)
    response = client.post("/v1/batteries", json=body, headers=solar)
    assert response.status_code == 422
    for field in ("capacity_kwh", "start_date"):
        message = response.json()["errors"][field]
        assert len(message) < 200 and "…" in message
    assert len(response.text) < 2000


def test_a_customers_key_sees_the_terms_without_the_internal_record(client, api_warehouse):
    url = "/v1/batteries/b-ewa-1/versions"
    for history in ("false", "true"):
        customer = client.get(
            url, params={"history": history}, headers=auth(api_warehouse.keys["c-1"])
        ).json()["items"]
        assert customer and all(
            not {"recorded_by", "reason", "record_id"} & set(item) for item in customer
        )
        assert customer[0]["capacity_kwh"] == 5.0 and "recorded_at" in customer[0]
        partner = client.get(
            url, params={"history": history}, headers=auth(api_warehouse.keys["ewa"])
        ).json()["items"]
        assert {"recorded_by", "reason", "record_id"} <= set(partner[0])


def _sent_as(bid: str, capacity: str) -> bytes:
    """A new battery's body with ``capacity_kwh`` written as the JSON text ``capacity``."""
    return json.dumps(battery(bid, capacity_kwh="CAP")).replace('"CAP"', capacity).encode()


def test_an_idempotency_key_compares_numbers_by_value(client, api_warehouse, solar):
    """``5``, ``5.0`` and ``5e0`` are one JSON number: a retry writing it otherwise is a
    replay, not another request; ``"5"`` (text) is another request."""
    bid = new_id("idem")
    headers = solar | {"Idempotency-Key": f"numbers-{bid}", "Content-Type": "application/json"}
    first = client.post("/v1/batteries", content=_sent_as(bid, "5"), headers=headers)
    assert first.status_code == 201, first.text
    for capacity in ("5.0", "5e0", "50E-1"):
        again = client.post("/v1/batteries", content=_sent_as(bid, capacity), headers=headers)
        assert again.status_code == 201, (capacity, again.text)
        assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
    text_five = client.post("/v1/batteries", content=_sent_as(bid, '"5"'), headers=headers)
    assert text_five.status_code == 422 and text_five.json()["code"] == "idempotency_key_reused"
    assert [(r["status"], r["replayed"]) for r in audit(api_warehouse, bid)] == [
        (201, False),
        (201, True),
        (201, True),
        (201, True),
        (422, False),
    ]


def test_request_fingerprints_keep_the_kind_of_each_value():
    from vbatt.api.audit import request_hash

    def same(a, b) -> bool:
        return request_hash("POST", "/v1/batteries", a) == request_hash("POST", "/v1/batteries", b)

    assert same({"a": [1, {"b": 2.0}], "c": 0}, {"c": -0.0, "a": [1.0, {"b": 2}]})
    assert same({"a": 1e20}, {"a": 10**20})
    assert not same({"a": 1}, {"a": True}) and not same({"a": 0}, {"a": False})
    assert not same({"a": 5}, {"a": "5"}) and not same({"a": 5}, {"a": 5.5})
    assert not same({"a": 2**53 + 1}, {"a": float(2**53 + 1)})  # a float holds 2**53 only


def test_a_key_stored_before_canonical_numbers_still_replays(client, api_warehouse, solar):
    """Keys are kept forever: one stored with the hash of the body as parsed (``5.0``
    written ``5.0``, the fingerprint before numbers were canonical) matches a retry of the
    same bytes."""
    import hashlib

    from vbatt.api.keys import hash_key

    bid, idem = new_id("old"), f"stored-before-{secrets.token_hex(4)}"
    content = _sent_as(bid, "5.0")
    as_parsed = json.dumps(
        ["POST", "/v1/batteries", json.loads(content)], sort_keys=True, separators=(",", ":")
    )
    key_id = api_warehouse.query(
        "select key_id from {raw}.api_keys where key_hash = :h",
        h=hash_key(api_warehouse.keys["solar-write"]),
    )[0]["key_id"]
    with api_warehouse.pipeline.engine.begin() as conn:
        conn.execute(
            text(
                f"insert into {api_warehouse.raw}.api_idempotency (key_id, idempotency_key,"
                " request_hash, status, response) values (:k, :i, :h, 201, '{\"kept\": 1}')"
            ),
            {"k": key_id, "i": idem, "h": hashlib.sha256(as_parsed.encode()).hexdigest()},
        )
    headers = solar | {"Idempotency-Key": idem, "Content-Type": "application/json"}
    replay = client.post("/v1/batteries", content=content, headers=headers)
    assert replay.status_code == 201 and replay.json() == {"kept": 1}, replay.text
    assert stored(api_warehouse, bid) == []
