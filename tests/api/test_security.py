"""What a page with write forms needs: security headers on every answer, CSRF protection
for writes with the dashboard's cookie, and wrong keys slowed down per client."""

from __future__ import annotations

import re
import secrets

import httpx
import pytest

from tests.api.conftest import SOLAR_METER, auth


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard",
        "/dashboard/batteries/b-ewa-1",
        "/dashboard/batteries/new",
        "/dashboard/login",
        "/dashboard/batteries/no-such-battery",  # the error page
        "/dashboard/static/portal.js",
        "/v1/batteries",
        "/api/Devices",
    ],
)
def test_every_answer_carries_the_security_headers(client, api_warehouse, path):
    response = client.get(path, headers=auth(api_warehouse.keys["ewa-write"]))
    assert response.status_code in (200, 404)
    csp = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"  # the app's own files: no inline script
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in csp and "http" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"


def test_pages_hold_no_inline_script(client, api_warehouse):
    key = auth(api_warehouse.keys["ewa-write"])
    for path in ("/dashboard", "/dashboard/batteries/b-ewa-1", "/dashboard/batteries/new"):
        page = client.get(path, headers=key).text
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
        assert scripts and all('src="/dashboard/static/' in a and not body for a, body in scripts)
        assert not re.search(r"\son[a-z]+=", page)  # no inline event handlers
        assert "style=" not in page  # nor inline styles (style-src 'self')


def _csrf(page: str) -> str:
    return re.search(r'data-csrf="([0-9a-f]+)"', page).group(1)


def test_cookie_writes_need_the_pages_csrf_token(api_url, api_warehouse):
    key = api_warehouse.keys["solar-write"]
    body = {
        "battery_id": f"csrf-{secrets.token_hex(3)}",
        "name": "n",
        "customer_id": "c",
        "meter_id": SOLAR_METER,
        "capacity_kwh": 0,
        "start_date": "2030-01-01",
    }
    with httpx.Client(base_url=api_url, cookies={"vbatt_key": key}) as browser:
        token = _csrf(browser.get("/dashboard").text)
        bare = browser.post("/v1/batteries", json=body)
        assert bare.status_code == 403 and "X-CSRF-Token" in bare.json()["detail"]
        wrong = browser.post("/v1/batteries", json=body, headers={"X-CSRF-Token": "0" * 64})
        assert wrong.status_code == 403
        # another site's page cannot send it either, even with a token it somehow had
        foreign = browser.post(
            "/v1/batteries",
            json=body,
            headers={"X-CSRF-Token": token, "Origin": "https://evil.example"},
        )
        assert foreign.status_code == 403
        assert (
            api_warehouse.query(
                "select * from {raw}.batteries where battery_id = :b", b=body["battery_id"]
            )
            == []
        )
        ok = browser.post(
            "/v1/batteries", json=body, headers={"X-CSRF-Token": token, "Origin": api_url}
        )
        assert ok.status_code == 201, ok.text
        # reads with the cookie need no token
        assert browser.get(f"/v1/batteries/{body['battery_id']}").status_code == 200
    # a program with the key in the header is not a browser: no token needed
    body["battery_id"] += "-h"
    with httpx.Client(base_url=api_url) as program:
        assert program.post("/v1/batteries", json=body, headers=auth(key)).status_code == 201
    # the token belongs to the key: another key's page token does not fit
    other = api_warehouse.keys["ewa-write"]
    with httpx.Client(base_url=api_url, cookies={"vbatt_key": other}) as browser:
        response = browser.post(
            "/v1/batteries/b-ewa-1/versions",
            json={"valid_from": "2000-01-01", "name": "x"},
            headers={"X-CSRF-Token": token},
        )
        assert response.status_code == 403


def test_login_from_another_site_is_refused(client, api_warehouse):
    response = client.post(
        "/dashboard/login",
        data={"key": api_warehouse.keys["ewa"]},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403 and "set-cookie" not in response.headers


def test_wrong_keys_are_slowed_down_per_client(api_warehouse, warehouse_url):
    """The default throttle: ten wrong keys pass at full speed, then the client must wait
    2 s, 4 s, ... after its last miss (429 with Retry-After, even with a right key);
    another client is not affected, and after the wait the key is looked at again."""
    from starlette.testclient import TestClient

    from vbatt.api import create_app
    from vbatt.api.security import KeyThrottle

    now = [1000.0]
    app = create_app(
        url=warehouse_url,
        marts_schema=api_warehouse.marts,
        raw_schema=api_warehouse.raw,
        key_throttle=KeyThrottle(clock=lambda: now[0]),
    )
    good = auth(api_warehouse.keys["ewa"])
    with (
        TestClient(app, client=("203.0.113.7", 40000)) as attacker,
        TestClient(app, client=("198.51.100.2", 40000)) as neighbour,
    ):
        for _ in range(10):
            assert attacker.get("/v1/batteries", headers=auth("vb_guess")).status_code == 401
        assert attacker.get("/v1/batteries", headers=good).status_code == 200
        assert attacker.get("/v1/batteries", headers=auth("vb_guess")).status_code == 401
        slowed = attacker.get("/v1/batteries", headers=good)
        assert slowed.status_code == 429 and slowed.headers["retry-after"] == "2"
        assert attacker.get("/dashboard", params={"key": "vb_x"}).status_code == 429
        assert neighbour.get("/v1/batteries", headers=good).status_code == 200
        now[0] += 2.0
        assert attacker.get("/v1/batteries", headers=auth("vb_guess")).status_code == 401
        assert attacker.get("/v1/batteries", headers=good).headers["retry-after"] == "4"
        now[0] += 4.0
        assert attacker.get("/v1/batteries", headers=good).status_code == 200
        now[0] += 600.0  # the window forgets old misses
        for _ in range(10):
            assert attacker.get("/v1/batteries", headers=auth("vb_guess")).status_code == 401
        assert attacker.get("/v1/batteries", headers=good).status_code == 200
    app.state.writer.dispose()
    app.state.marts.engine.dispose()
