"""POST /smartme/realtime in the real app over a real PostgreSQL."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from vbatt.api.app import create_app
from vbatt.ingest.realtime_pb import encode_body
from vbatt.settings import get_settings
from vbatt.warehouse.loader import upsert_batteries
from vbatt.warehouse.migrate import migrate
from vbatt.warehouse.realtime import latest_live, meter_guid, readings_between

GUID_METER = "6f1c2a8e-0b7d-4e59-9a33-0c6d1e2f3a4b"
T = datetime(2026, 11, 30, 12, 0, 0, 500_000, tzinfo=UTC)


def _auth(user="rt-user", password="rt-secret"):
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def raw(engine):
    schema = f"t_{secrets.token_hex(4)}_raw"
    migrate(engine, schema)
    upsert_batteries(
        engine,
        [
            {
                "battery_id": "b1",
                "name": "B1",
                "partner_id": "p",
                "customer_id": "c",
                "meter_id": GUID_METER,
                "capacity_kwh": 5,
                "start_date": date(2026, 1, 1),
                "reset_date": None,
                "end_date": None,
            },
            {
                "battery_id": "b2",
                "name": "B2",
                "partner_id": "p",
                "customer_id": "c",
                "meter_id": "SIM-0001",
                "capacity_kwh": 5,
                "start_date": date(2026, 1, 1),
                "reset_date": None,
                "end_date": None,
            },
        ],
        raw_schema=schema,
    )
    yield schema
    with engine.begin() as conn:
        conn.execute(text(f"drop schema {schema} cascade"))


@pytest.fixture
def client(raw, warehouse_url, monkeypatch):
    monkeypatch.setenv("VBATT_REALTIME_USER", "rt-user")
    monkeypatch.setenv("VBATT_REALTIME_PASSWORD", "rt-secret")
    get_settings.cache_clear()
    with TestClient(create_app(url=warehouse_url, raw_schema=raw)) as c:
        yield c
    get_settings.cache_clear()


def test_off_without_credentials(raw, warehouse_url, monkeypatch):
    monkeypatch.delenv("VBATT_REALTIME_USER", raising=False)
    monkeypatch.delenv("VBATT_REALTIME_PASSWORD", raising=False)
    get_settings.cache_clear()
    with TestClient(create_app(url=warehouse_url, raw_schema=raw)) as c:
        r = c.post("/smartme/realtime", content=b"", headers=_auth())
    assert r.status_code == 404 and "VBATT_REALTIME_USER" in r.json()["detail"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        _auth(password="wrong"),
        _auth(user="other"),
        {"Authorization": "Basic !!!"},
        {"Authorization": "Bearer rt-secret"},
    ],
)
def test_wrong_or_missing_credentials(client, headers):
    r = client.post("/smartme/realtime", content=b"", headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")


def test_garbage_is_400_with_reason_and_logged(client, caplog):
    r = client.post("/smartme/realtime", content=b"\xff\x00garbage", headers=_auth())
    assert r.status_code == 400 and "DeviceDataArray" in r.json()["detail"]
    assert any("refused (400)" in m for m in caplog.messages)


def test_empty_body_is_an_empty_array(client):
    r = client.post("/smartme/realtime", content=b"", headers=_auth())
    assert r.status_code == 200 and r.json()["items"] == 0


def test_push_is_durable_when_answered(client, raw, engine):
    body = encode_body(
        [
            (
                GUID_METER,
                T,
                [
                    ("1-0:1.8.0", 10.5),
                    ("1-0:2.8.0", 2.25),
                    ("1-0:16.7.0", -1.5),
                    ("1-0:32.7.0", 230.0),
                ],
            ),
            (meter_guid("SIM-0001"), T, [("1-0:16.7.0", 0.75)]),  # live only
            ("11111111-2222-3333-4444-555555555555", T, [("1-0:1.8.0", 1.0)]),  # unknown
        ]
    )
    r = client.post("/smartme/realtime", content=body, headers=_auth())
    assert r.status_code == 200
    assert r.json() == {
        "items": 3,
        "values": 2,
        "readings": 1,
        "unknownDevices": 1,
        "unusedValues": 1,
        "rejected": 0,
    }
    with engine.connect() as conn:  # no wait: answered means stored
        assert readings_between(conn, GUID_METER, T, T, raw_schema=raw) == [(T, 10.5, 2.25)]
        live = latest_live(conn, [GUID_METER, "SIM-0001"], raw_schema=raw)
        assert live[GUID_METER].power_kw == -1.5 and live["SIM-0001"].power_kw == 0.75
        assert readings_between(conn, "SIM-0001", T, T, raw_schema=raw) == []


def test_refused_items_are_quarantined_and_the_rest_kept(client, raw, engine):
    body = encode_body(
        [
            (GUID_METER, T, [("1-0:1.8.0", -3.0), ("1-0:2.8.0", 2.0), ("1-0:16.7.0", 1.0)]),
            (GUID_METER, datetime.now(UTC) + timedelta(days=3), [("1-0:16.7.0", 1.0)]),
        ]
    )
    r = client.post("/smartme/realtime", content=body, headers=_auth())
    assert r.status_code == 200 and r.json()["rejected"] == 2
    with engine.connect() as conn:
        reasons = conn.execute(
            text(f"select reason, source from {raw}.rejected_readings order by reason")
        ).all()
        stored = conn.execute(
            text(f"select import_kwh, export_kwh, power_kw from {raw}.realtime_values")
        ).all()
    assert [r.source for r in reasons] == ["realtime", "realtime"]
    assert "future" in reasons[0].reason and "negative" in reasons[1].reason
    assert [tuple(s) for s in stored] == [(None, 2.0, 1.0)]
