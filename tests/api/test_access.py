"""A key sees its partner's (or customer's) batteries and nothing else, on every route.

The cases are parametrised over the app's own routes and methods: a new route that has no
entry in BATTERY_ROUTES, LIST_ROUTES, WRITE_ROUTES, CREATE_ROUTES, WRITER_PAGES or PUBLIC
fails ``test_every_route_has_an_access_case``.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from tests.api.conftest import auth
from vbatt.smartme_schema import device_uuid

PUBLIC = {
    "/",
    "/api/Health",
    "/dashboard/login",
    "/dashboard/logout",
    "/dashboard/static",
    "/openapi.json",
}
# route -> query string that makes a valid request for a battery the key may see
BATTERY_ROUTES = {
    "/api/Devices/{id}": "",
    "/api/MeterValues/{id}": "?date=2025-06-28T12:00:00Z",
    "/api/ValuesInPastMultiple/{id}": "?startDate=2025-06-28T00:00:00Z&endDate=2025-06-28T06:00:00Z&interval=15",
    "/Devices/{id}": "",
    "/MeterValues/{id}": "?date=2025-06-28T12:00:00Z",
    "/ValuesInPastMultiple/{id}": "?startDate=2025-06-28T00:00:00Z&endDate=2025-06-28T06:00:00Z&interval=15",
    "/v1/batteries/{id}": "",
    "/v1/batteries/{id}/intervals": "?start=2025-06-28&end=2025-06-29",
    "/v1/batteries/{id}/intervals?format=csv": "",
    "/v1/batteries/{id}/daily": "?start=2025-06-25",
    "/v1/batteries/{id}/daily?format=csv": "",
    "/v1/batteries/{id}/settlements": "",
    "/v1/batteries/{id}/settlements?format=csv": "",
    "/v1/batteries/{id}/series": "?period=week&date=2025-06-28",
    "/v1/batteries/{id}/versions": "",
    "/v1/batteries/{id}/versions?history=true": "",
    "/v1/batteries/{id}/live": "?events=1",  # a stream: closed after its first event
    "/dashboard/batteries/{id}": "",
}
LIST_ROUTES = {
    "/api/Devices",
    "/Devices",
    "/v1/batteries",
    "/v1/fleet",
    "/v1/settlements",
    "/dashboard",
}
# (method, route) -> a body that passes every access check and is then refused (422) for
# its content, so the access cases change nothing
WRITE_ROUTES = {
    ("POST", "/v1/batteries/{id}/versions"): {"valid_from": "2000-01-01", "name": "x"},
    ("PATCH", "/v1/batteries/{id}"): {"end_date": "2000-01-01"},
}
CREATE_ROUTES = {("POST", "/v1/batteries")}
WRITER_PAGES = {"/dashboard/batteries/new"}
# routes with an authentication of their own, tested where they are
OWN_AUTH = {"/smartme/realtime"}  # basic auth of smart-me's pushes: tests/realtime
# key -> batteries it may see
SEES = {
    "ewa": {"b-ewa-1", "b-ewa-2"},
    "stadtwerk": {"b-sw-1"},
    "c-1": {"b-ewa-1"},
    "ewa-write": {"b-ewa-1", "b-ewa-2"},
    "stadtwerk-write": {"b-sw-1"},
}
WRITERS = {"ewa-write", "stadtwerk-write"}
ALL = {"b-ewa-1", "b-ewa-2", "b-sw-1"}


def _url(route: str, battery_id: str) -> str:
    path, _, fixed = route.partition("?")
    query = BATTERY_ROUTES[route]
    url = path.replace("{id}", battery_id) + query
    return url + (("&" if "?" in url else "?") + fixed if fixed else "")


def test_every_route_has_an_access_case(api_app):
    routes = set()
    for r in api_app.routes:
        for method in getattr(r, "methods", None) or {"GET"}:  # a mount: GET
            routes.add((method, r.path))
    reads = {r.partition("?")[0] for r in BATTERY_ROUTES} | LIST_ROUTES | WRITER_PAGES
    covered = {("GET", path) for path in reads} | set(WRITE_ROUTES) | CREATE_ROUTES
    public = {(m, p) for m, p in routes if p in PUBLIC | OWN_AUTH}
    assert routes - public - covered == set(), "a route without an access test"
    assert covered - routes == set(), "an access case for a route that is gone"


@pytest.mark.parametrize("route", sorted(WRITE_ROUTES))
@pytest.mark.parametrize("who", sorted(SEES))
def test_write_routes_answer_only_for_own_batteries(client, api_warehouse, route, who):
    """Someone else's or a missing battery: 404 (as for reads), before the scope is looked
    at; an own battery with a read-only key: 403; with a key that writes: on to the body."""
    method, path = route
    key, body = auth(api_warehouse.keys[who]), WRITE_ROUTES[route]
    missing = client.request(
        method, path.replace("{id}", "no-such-battery"), json=body, headers=key
    )
    assert missing.status_code == 404
    assert missing.json() == {"detail": "No battery with this id found."}
    for battery_id in sorted(ALL):
        response = client.request(method, path.replace("{id}", battery_id), json=body, headers=key)
        if battery_id not in SEES[who]:
            assert response.status_code == 404, (battery_id, response.text[:200])
            assert response.text == missing.text
        elif who in WRITERS:
            assert response.status_code == 422, (battery_id, response.text[:300])
            assert set(response.json()["errors"]) <= {"valid_from", "end_date"}
        else:
            assert response.status_code == 403, (battery_id, response.text[:200])
            assert response.json()["code"] == "read_only_key"


@pytest.mark.parametrize("route", sorted(WRITE_ROUTES | dict.fromkeys(CREATE_ROUTES)))
def test_write_routes_need_a_key(client, route):
    method, path = route
    for headers in ({}, auth("vb_not-a-key")):
        response = client.request(method, path.replace("{id}", "b-ewa-1"), json={}, headers=headers)
        assert response.status_code == 401


@pytest.mark.parametrize("who", ["ewa", "stadtwerk", "c-1"])
def test_read_only_keys_cannot_create(client, api_warehouse, who):
    body = {"battery_id": "ro-1", "name": "n", "customer_id": "c", "meter_id": "SIM-0001"}
    response = client.post("/v1/batteries", json=body, headers=auth(api_warehouse.keys[who]))
    assert response.status_code == 403 and response.json()["code"] == "read_only_key"
    assert api_warehouse.query("select * from {raw}.batteries where battery_id = 'ro-1'") == []


def test_the_add_battery_page_is_for_keys_that_write(client, api_warehouse):
    for who in ("ewa", "c-1"):
        page = client.get("/dashboard/batteries/new", headers=auth(api_warehouse.keys[who]))
        assert page.status_code == 403 and "read-only" in page.text
    page = client.get("/dashboard/batteries/new", headers=auth(api_warehouse.keys["ewa-write"]))
    assert page.status_code == 200 and 'id="new-form"' in page.text
    assert client.get("/dashboard/batteries/new").headers["location"] == "/dashboard/login"


@pytest.mark.parametrize("route", sorted(BATTERY_ROUTES))
@pytest.mark.parametrize("who", sorted(SEES))
def test_battery_routes_answer_only_for_own_batteries(client, api_warehouse, route, who):
    key = api_warehouse.keys[who]
    missing = client.get(_url(route, "no-such-battery"), headers=auth(key))
    assert missing.status_code == 404
    for battery_id in sorted(ALL):
        response = client.get(_url(route, battery_id), headers=auth(key))
        if battery_id in SEES[who]:
            assert response.status_code == 200, (battery_id, response.text[:200])
            assert len(response.content) > 0
        else:
            assert response.status_code == 404, (battery_id, response.status_code)
            # indistinguishable from a battery that does not exist
            assert response.text == missing.text.replace("no-such-battery", battery_id)


@pytest.mark.parametrize("route", sorted(BATTERY_ROUTES))
def test_battery_routes_need_a_key(client, route):
    url = _url(route, "b-ewa-1")
    for headers in ({}, auth("vb_not-a-key"), {"Authorization": "Basic Zm9vOmJhcg=="}):
        response = client.get(url, headers=headers)
        if route.startswith("/dashboard"):  # people are sent to the login form
            assert response.status_code == 303
            assert response.headers["location"] == "/dashboard/login"
        else:
            assert response.status_code == 401


def test_the_cookie_is_a_key_like_the_header(client, api_warehouse):
    cookie = {"vbatt_key": api_warehouse.keys["stadtwerk"]}
    assert client.get("/v1/batteries/b-sw-1", cookies=cookie).status_code == 200
    assert client.get("/v1/batteries/b-ewa-1", cookies=cookie).status_code == 404


@pytest.mark.parametrize("who", sorted(SEES))
def test_lists_hold_only_own_batteries(client, api_warehouse, who):
    key = api_warehouse.keys[who]
    devices = client.get("/api/Devices", headers=auth(key)).json()
    assert {d["Id"] for d in devices} == SEES[who]
    current = client.get("/Devices", headers=auth(key)).json()
    assert {d["id"] for d in current} == {device_uuid(b) for b in SEES[who]}
    page = client.get("/v1/batteries", headers=auth(key)).json()
    assert {b["battery_id"] for b in page["items"]} == SEES[who]
    searched = client.get("/v1/batteries", params={"q": "b-"}, headers=auth(key)).json()
    assert {b["battery_id"] for b in searched["items"]} == SEES[who]
    # the partner page itself holds no battery data: its script reads /v1/batteries
    assert client.get("/dashboard", headers=auth(key)).status_code == 200


@pytest.mark.parametrize("route", sorted(LIST_ROUTES - {"/dashboard"}))
def test_list_routes_need_a_key(client, route):
    assert client.get(route).status_code == 401
    assert client.get(route, headers=auth("vb_wrong")).status_code == 401


def test_revoked_key_is_refused(client, api_warehouse, engine):
    from vbatt.api.keys import Principal, create_key, revoke_key

    created = create_key(engine, Principal(partner_id="ewa"), raw_schema=api_warehouse.raw)
    assert client.get("/api/Devices", headers=auth(created.key)).status_code == 200
    assert revoke_key(engine, created.prefix, raw_schema=api_warehouse.raw) == 1
    assert client.get("/api/Devices", headers=auth(created.key)).status_code == 401


def test_keys_are_stored_hashed(api_warehouse):
    import hashlib

    stored = api_warehouse.query("select key_prefix, key_hash from {raw}.api_keys")
    text = repr(stored)
    hashes = {r["key_hash"] for r in stored}
    for key in api_warehouse.keys.values():
        assert key not in text
        assert any(key.startswith(r["key_prefix"]) for r in stored)
        assert hashlib.sha256(key.encode()).hexdigest() in hashes


def test_a_customer_id_of_another_partner_is_not_the_same_customer(client, api_warehouse):
    """Customer ids are each partner's own: stadtwerk's customer "c-1" is not ewa's."""
    api_warehouse.pipeline.batteries(
        [
            {
                "battery_id": "b-sw-c1",
                "name": "Namesake",
                "partner_id": "stadtwerk",
                "customer_id": "c-1",
                "meter_id": "SIM-0003",
                "capacity_kwh": 1.0,
                "start_date": date(2025, 6, 24),
                "reset_date": None,
                "reset_repeat": "yearly",
                "end_date": None,
                "timezone": "Europe/Zurich",
                "initial_level_kwh": 0.0,
            }
        ]
    )
    try:
        key = auth(api_warehouse.keys["c-1"])
        assert client.get("/v1/batteries/b-sw-c1", headers=key).status_code == 404
        listed = client.get("/v1/batteries", headers=key).json()
        assert "b-sw-c1" not in {b["battery_id"] for b in listed["items"]}
        stadtwerk = auth(api_warehouse.keys["stadtwerk"])
        assert client.get("/v1/batteries/b-sw-c1", headers=stadtwerk).status_code == 200
    finally:
        with api_warehouse.pipeline.engine.begin() as conn:
            conn.execute(
                text(
                    f"delete from {api_warehouse.pipeline.raw}.batteries where battery_id = 'b-sw-c1'"
                )
            )


def test_dashboard_key_in_the_url_becomes_a_cookie(client, api_warehouse):
    key = api_warehouse.keys["c-1"]
    response = client.get("/dashboard/batteries/b-ewa-1", params={"key": key})
    assert response.status_code == 303
    assert response.headers["location"].endswith("/dashboard/batteries/b-ewa-1")
    cookie = response.headers["set-cookie"]
    assert "vbatt_key=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    bad = client.get("/dashboard", params={"key": "vb_nope"})
    assert bad.status_code == 303 and bad.headers["location"].startswith("/dashboard/login")
