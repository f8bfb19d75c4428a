"""The battery as smart-me answers today: integer enumerations, the current host's dialect
(camelCase, no ``/api``, UUID ids), checked against smart-me's current OpenAPI description
(``tests/data/smart-me/openapi-v1-2026.json``) and read by a client generated from it."""

from __future__ import annotations

import importlib
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator, oas30_format_checker

from tests.api.conftest import auth
from vbatt.ingest.smartme import SmartMeClient, SmartMeConfig, SmartMeNotFoundError
from vbatt.smartme_schema import device_uuid

SPEC = Path(__file__).resolve().parents[1] / "data" / "smart-me" / "openapi-v1-2026.json"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    import json

    return json.loads(SPEC.read_text(encoding="utf-8"))


def _validate(spec: dict[str, Any], path: str, body: Any) -> None:
    op = spec["paths"][path]["get"]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    validator = OAS30Validator(
        {**schema, "components": spec["components"]}, format_checker=oas30_format_checker
    )
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, errors


def _registers(w, battery_id: str) -> dict:
    return w.query("select * from {marts}.battery_registers where battery_id = :id", id=battery_id)[
        0
    ]


def test_current_host_answers_match_the_current_description(client, api_warehouse, spec):
    key = auth(api_warehouse.keys["ewa"])
    uid = device_uuid("b-ewa-1")
    devices = client.get("/Devices", headers=key).json()
    assert sorted(d["id"] for d in devices) == sorted(map(device_uuid, ["b-ewa-1", "b-ewa-2"]))
    _validate(spec, "/Devices", devices)
    for path, params in (
        (f"/Devices/{uid}", {}),
        (f"/MeterValues/{uid}", {"date": "2025-06-28T14:40:00.1234567Z"}),
        (
            f"/ValuesInPastMultiple/{uid}",
            {
                "startDate": "2025-06-26T00:00:00Z",
                "endDate": "2025-06-26T02:00:00Z",
                "interval": 15,
            },
        ),
    ):
        resp = client.get(path, params=params, headers=key)
        assert resp.status_code == 200, resp.text
        _validate(spec, path.replace(uid, "{id}"), resp.json())
        legacy = client.get("/api" + path.replace(uid, "b-ewa-1"), params=params, headers=key)
        want = legacy.json()
        # the same answer, camelCase and with the UUID for the id
        camel = _camel_with_uuid(want, "b-ewa-1", uid)
        assert resp.json() == camel
    d = client.get(f"/Devices/{uid}", headers=key).json()
    r = _registers(api_warehouse, "b-ewa-1")
    assert (d["deviceEnergyType"], d["meterSubType"], d["familyType"]) == (1, 9, 1002)
    assert d["counterReadingImport"] == pytest.approx(r["charged_total_kwh"], abs=1e-9)
    assert d["name"] == r["name"]


def _camel_with_uuid(obj: Any, battery_id: str, uid: str) -> Any:
    if isinstance(obj, dict):
        return {k[:1].lower() + k[1:]: _camel_with_uuid(v, battery_id, uid) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_camel_with_uuid(v, battery_id, uid) for v in obj]
    return uid if obj == battery_id else obj


def test_a_battery_is_found_by_id_or_uuid_and_stays_hidden_from_others(client, api_warehouse):
    ewa, sw = auth(api_warehouse.keys["ewa"]), auth(api_warehouse.keys["stadtwerk"])
    by_id = client.get("/Devices/b-ewa-2", headers=ewa)
    by_uuid = client.get(f"/api/Devices/{device_uuid('b-ewa-2')}", headers=ewa)
    assert by_id.status_code == by_uuid.status_code == 200
    assert by_id.json()["id"] == device_uuid("b-ewa-2")
    assert by_uuid.json()["Id"] == "b-ewa-2"
    hidden = client.get(f"/Devices/{device_uuid('b-ewa-2')}", headers=sw)
    assert hidden.status_code == 404 and "message" in hidden.json()
    assert client.get(f"/Devices/{device_uuid('nope')}", headers=ewa).status_code == 404
    assert client.get("/Devices", headers={}).status_code == 401


def test_the_project_client_reads_the_current_host(api_url, api_warehouse):
    config = SmartMeConfig(
        base_url=api_url, api_key=api_warehouse.keys["ewa"], rate=None, max_retries=0
    )
    assert config.api_root == api_url  # the current dialect: no /api
    with SmartMeClient(config) as c:
        d = c.get_device(device_uuid("b-ewa-1"))
        assert (d.energy_type, d.sub_type, d.family_type) == (
            "MeterTypeElectricity",
            "MeterSubTypeVirtualBattery",
            "MeterFamilyTypeVirtualBillingMeter",
        )
        start, end = datetime(2025, 6, 26, tzinfo=UTC), datetime(2025, 6, 27, tzinfo=UTC)
        current = c.readings(device_uuid("b-ewa-1"), start, end)
        with pytest.raises(SmartMeNotFoundError):
            c.get_device(device_uuid("b-sw-1"))
    legacy_config = SmartMeConfig(
        base_url=f"{api_url}/api", api_key=api_warehouse.keys["ewa"], rate=None, max_retries=0
    )
    with SmartMeClient(legacy_config) as c:
        legacy = c.readings("b-ewa-1", start, end)
        assert c.get_device("b-ewa-1").sub_type == "MeterSubTypeVirtualBattery"
    assert current.rejected == legacy.rejected == []
    assert [(r.ts, r.import_kwh, r.export_kwh) for r in current.readings] == [
        (r.ts, r.import_kwh, r.export_kwh) for r in legacy.readings
    ]
    assert len(current.readings) == 97


# -- a client generated from smart-me's current description ------------------------------

# ASP.NET lists ``text/plain`` first for every answer, and the generator would then read the
# body as text: the usual override for such descriptions reads it as JSON. No post hooks
# (they would run ruff over the output: not needed to import it).
GENERATOR_CONFIG = (
    "post_hooks: []\n"
    "project_name_override: smartme_current\n"
    "package_name_override: smartme_current\n"
    "content_type_overrides:\n"
    "  text/plain: application/json\n"
)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """``openapi-python-client generate`` (pinned in requirements-codegen.txt) on the current
    description, into a temporary folder: the client is as anyone would generate it today."""
    out = tmp_path_factory.mktemp("generated")
    (out / "config.yaml").write_text(GENERATOR_CONFIG, encoding="utf-8")
    tool = Path(sys.executable).with_name("openapi-python-client")
    run = subprocess.run(
        [str(tool), "generate", "--path", str(SPEC), "--config", "config.yaml", "--meta", "none"],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (out / "smartme_current" / "client.py").is_file(), run.stdout + run.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("smartme_current")
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n.split(".")[0] == "smartme_current"]:
            del sys.modules[name]


def test_a_client_generated_from_the_current_description_reads_a_battery(
    generated, api_url, api_warehouse
):
    from uuid import UUID

    from smartme_current import AuthenticatedClient
    from smartme_current.api.devices import get_devices, get_devices_id
    from smartme_current.api.meter_values import get_meter_values_id
    from smartme_current.api.values_in_past_multiple import get_values_in_past_multiple_id
    from smartme_current.models import MeterEnergyType, MeterFamilyType, MeterSubType

    client = AuthenticatedClient(
        base_url=api_url,
        token=api_warehouse.keys["ewa"],
        prefix="ApiKey",
        raise_on_unexpected_status=True,
    )
    with client:
        devices = get_devices.sync(client=client)
        uid = UUID(device_uuid("b-ewa-1"))
        assert sorted(str(d.id) for d in devices) == sorted(
            map(device_uuid, ["b-ewa-1", "b-ewa-2"])
        )
        d = get_devices_id.sync(uid, client=client)
        r = _registers(api_warehouse, "b-ewa-1")
        assert d.id == uid and d.name == r["name"]
        assert d.device_energy_type == MeterEnergyType(1)
        assert d.meter_sub_type == MeterSubType(9)
        assert d.family_type == MeterFamilyType(1002)
        assert d.counter_reading == pytest.approx(r["level_kwh"], abs=1e-9)
        assert d.counter_reading_import == pytest.approx(r["charged_total_kwh"], abs=1e-9)
        assert d.counter_reading_export == pytest.approx(r["discharged_total_kwh"], abs=1e-9)
        assert d.value_date == r["reading_at"].astimezone(UTC)

        at = datetime(2025, 6, 28, 14, 40, tzinfo=UTC)
        past = get_meter_values_id.sync(uid, client=client, date=at)
        assert past.id == uid and past.date == datetime(2025, 6, 28, 14, 30, tzinfo=UTC)
        rows = get_values_in_past_multiple_id.sync(
            uid,
            client=client,
            start_date=datetime(2025, 6, 28, 14, 0, tzinfo=UTC),
            end_date=at,
            interval=15,
        )
    assert [row.date.minute for row in rows] == [0, 15, 30]
    last = {v.obis: v.value for v in rows[-1].values}
    assert last["1-0:1.8.0*255"] == pytest.approx(past.counter_reading_import, abs=1e-9)
    assert last["1-0:2.8.0*255"] == pytest.approx(past.counter_reading_export, abs=1e-9)
    assert all(row.device_id == uid for row in rows)
