"""The simulator must answer like smart-me: checked against the published OpenAPI schemas.

Schemas are made strict (no undeclared keys) so a typo in a simulator key fails here rather
than silently passing the permissive published schema.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openapi_schema_validator import OAS30Validator, oas30_format_checker

from vbatt.simulator import get_stats, reset, set_faults, start_in_background
from vbatt.simulator.app import DEMO_API_KEY, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from vbatt.simulator.faults import Faults
from vbatt.simulator.households import EPOCH, ground_truth

SEED = 11
AUTH = {"Authorization": f"ApiKey {DEMO_API_KEY}"}
DAY = datetime(2025, 6, 21, tzinfo=UTC)


SPEC_PATH = Path(__file__).resolve().parents[1] / "data" / "smart-me" / "openapi-subset.yaml"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def sim() -> Iterator[str]:
    url, stop = start_in_background(meters=3, seed=SEED)
    try:
        yield url
    finally:
        stop()


@pytest.fixture(autouse=True)
def _clean(request: pytest.FixtureRequest) -> None:
    if "sim" in request.fixturenames:
        url = request.getfixturevalue("sim")
        set_faults(url, **Faults().model_dump(mode="json"))
        reset(url)


def _strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if out.get("type") == "object" and out.get("properties"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def _validator(spec: dict[str, Any], path: str) -> OAS30Validator:
    op = spec["paths"][path]["get"]
    schema = copy.deepcopy(op["responses"]["200"]["content"]["application/json"]["schema"])
    root = _strict({**schema, "components": spec["components"]})
    return OAS30Validator(root, format_checker=oas30_format_checker)


def _query(spec: dict[str, Any], path: str, values: dict[str, str]) -> dict[str, str]:
    """Query built from the spec's parameter names, so a renamed parameter fails the test."""
    params = spec["paths"][path]["get"].get("parameters", [])
    return {p["name"]: values[p["name"]] for p in params if p["in"] == "query"}


VALUES = {
    "date": "2025-06-21T12:07:00Z",
    "startDate": "2025-06-21T00:00:00Z",
    "endDate": "2025-06-21T06:00:00Z",
    "interval": "15",
}

ENDPOINTS = [
    ("/api/Devices", "/api/Devices"),
    ("/api/Devices/{id}", "/api/Devices/SIM-0002"),
    ("/api/MeterValues/{id}", "/api/MeterValues/SIM-0002"),
    ("/api/ValuesInPastMultiple/{id}", "/api/ValuesInPastMultiple/SIM-0002"),
    ("/api/Health", "/api/Health"),
]


@pytest.mark.parametrize(("spec_path", "url_path"), ENDPOINTS)
def test_legacy_answers_match_spec_schema(
    spec: dict[str, Any], sim: str, spec_path: str, url_path: str
) -> None:
    resp = httpx.get(sim + url_path, params=_query(spec, spec_path, VALUES), headers=AUTH)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    errors = list(_validator(spec, spec_path).iter_errors(body))
    assert not errors, [e.message for e in errors]
    if isinstance(body, list):
        assert body, "an empty list proves nothing about the item schema"


def _camel(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k[:1].lower() + k[1:]: _camel(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_camel(v) for v in obj]
    return obj


@pytest.mark.parametrize(("spec_path", "url_path"), ENDPOINTS[2:4])
def test_current_host_is_legacy_in_camel_case(
    spec: dict[str, Any], sim: str, spec_path: str, url_path: str
) -> None:
    params = _query(spec, spec_path, VALUES)
    legacy = httpx.get(sim + url_path, params=params, headers=AUTH).json()
    current = httpx.get(sim + url_path.removeprefix("/api"), params=params, headers=AUTH).json()
    assert current == _camel(legacy)
    assert current != legacy


def test_current_devices_keys_are_camel_case(sim: str) -> None:
    legacy = httpx.get(f"{sim}/api/Devices", headers=AUTH).json()
    current = httpx.get(f"{sim}/Devices", headers=AUTH).json()
    assert [sorted(_camel(d)) for d in legacy] == [sorted(d) for d in current]
    assert [d["id"] for d in current] == ["SIM-0001", "SIM-0002", "SIM-0003"]
    assert all(d["serial"] and d["name"] for d in current)


def test_values_follow_ground_truth_and_obis(sim: str) -> None:
    rows = httpx.get(
        f"{sim}/api/ValuesInPastMultiple/SIM-0003",
        params={
            "startDate": "2025-06-21T10:00:00Z",
            "endDate": "2025-06-21T11:00:00Z",
            "interval": 15,
        },
        headers=AUTH,
    ).json()
    assert [r["Date"] for r in rows] == [
        f"2025-06-21T{h}Z" for h in ("10:00:00", "10:15:00", "10:30:00", "10:45:00", "11:00:00")
    ]
    for row in rows:
        values = {v["Obis"]: v["Value"] for v in row["Values"]}
        ts = datetime.fromisoformat(row["Date"])
        assert (values["1-0:1.8.0*255"], values["1-0:2.8.0*255"]) == ground_truth(
            "SIM-0003", ts, seed=SEED
        )


def test_meter_values_returns_last_value_before_date(sim: str) -> None:
    body = httpx.get(
        f"{sim}/api/MeterValues/SIM-0001", params={"date": "2025-06-21T12:14:59Z"}, headers=AUTH
    ).json()
    assert body["Date"] == "2025-06-21T12:00:00Z"
    expected = ground_truth("SIM-0001", DAY.replace(hour=12), seed=SEED)
    assert (body["CounterReadingImport"], body["CounterReadingExport"]) == expected
    assert body["CounterReadingUnit"] == "kWh"


def test_at_most_1000_values_per_call(sim: str) -> None:
    rows = httpx.get(
        f"{sim}/api/ValuesInPastMultiple/SIM-0001",
        params={
            "startDate": "2025-01-01T00:00:00Z",
            "endDate": "2025-02-01T00:00:00Z",
            "interval": 15,
        },
        headers=AUTH,
    ).json()
    assert len(rows) == 1000


def test_interval_coarser_than_quarter_hour(sim: str) -> None:
    rows = httpx.get(
        f"{sim}/ValuesInPastMultiple/SIM-0001",
        params={
            "startDate": "2025-01-01T00:00:00Z",
            "endDate": "2025-01-02T00:00:00Z",
            "interval": 60,
        },
        headers=AUTH,
    ).json()
    assert len(rows) == 25 and rows[1]["date"] == "2025-01-01T01:00:00Z"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "ApiKey wrong"},
        {"Authorization": "Basic ZGVtbzp3cm9uZw=="},
        {"Authorization": "Bearer nope"},
    ],
)
def test_wrong_credentials_get_401(sim: str, headers: dict[str, str]) -> None:
    assert httpx.get(f"{sim}/api/Devices", headers=headers).status_code == 401


def test_unknown_meter_404(sim: str) -> None:
    assert httpx.get(f"{sim}/api/Devices/SIM-0004", headers=AUTH).status_code == 404
    assert httpx.get(f"{sim}/Devices/nonsense", headers=AUTH).status_code == 404


def test_oauth_client_credentials(sim: str) -> None:
    form = {"grant_type": "client_credentials", "client_id": DEMO_CLIENT_ID, "scope": "device.read"}
    assert httpx.post(f"{sim}/oauth/token", data=form | {"client_secret": "x"}).status_code == 401
    resp = httpx.post(f"{sim}/oauth/token", data=form | {"client_secret": DEMO_CLIENT_SECRET})
    assert resp.status_code == 200
    token = resp.json()
    assert token["token_type"] == "Bearer" and token["expires_in"] > 0
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert httpx.get(f"{sim}/Devices", headers=bearer).status_code == 200
    httpx.post(f"{sim}/_sim/revoke-tokens")
    assert httpx.get(f"{sim}/Devices", headers=bearer).status_code == 401


def test_fault_admin_roundtrip_and_validation(sim: str) -> None:
    assert set_faults(sim, rate_500=0.25)["rate_500"] == 0.25
    assert httpx.get(f"{sim}/_sim/faults").json()["rate_500"] == 0.25
    assert httpx.post(f"{sim}/_sim/faults", json={"rate_500": 2}).status_code == 422
    assert httpx.post(f"{sim}/_sim/faults", json={"no_such_fault": 1}).status_code == 422


def _statuses(sim: str, n: int) -> list[int]:
    return [httpx.get(f"{sim}/api/Devices/SIM-0001", headers=AUTH).status_code for _ in range(n)]


def test_random_faults_are_deterministic_and_transient(sim: str) -> None:
    set_faults(sim, rate_429=0.6, rate_500=0.3, retry_after_s=0)
    first = _statuses(sim, 30)
    reset(sim)
    assert _statuses(sim, 30) == first
    assert {429, 500} <= set(first) and 200 in first
    streak = longest = 0
    for status in first:
        streak = streak + 1 if status != 200 else 0
        longest = max(longest, streak)
    assert longest <= Faults().max_consecutive_faults
    assert get_stats(sim)["faults"]["429"] > 0


def test_malformed_json_fault(sim: str) -> None:
    set_faults(sim, rate_malformed=1.0, max_consecutive_faults=1)
    bad, good = (httpx.get(f"{sim}/api/Devices", headers=AUTH) for _ in range(2))
    with pytest.raises(ValueError):
        bad.json()
    assert isinstance(good.json(), list)


def test_households_are_realistic_and_deterministic() -> None:
    def delta(meter: str, a: datetime, b: datetime, seed: int = SEED) -> tuple[float, float]:
        (i0, e0), (i1, e1) = ground_truth(meter, a, seed=seed), ground_truth(meter, b, seed=seed)
        return i1 - i0, e1 - e0

    night = delta("SIM-0001", DAY - timedelta(hours=2), DAY + timedelta(hours=2))
    assert night[1] == 0 and night[0] > 0  # no PV at night, but a base load
    summer = delta("SIM-0001", DAY, DAY + timedelta(days=1))
    winter = delta("SIM-0001", DAY.replace(month=12), DAY.replace(month=12) + timedelta(days=1))
    assert summer[1] > 5 * max(winter[1], 0.1)  # seasonal PV amplitude
    weeks = [
        delta("SIM-0001", DAY + timedelta(days=d), DAY + timedelta(days=d + 1))[1]
        for d in range(14)
    ]
    assert len(set(weeks)) == 14  # cloudiness varies per day
    ts = DAY + timedelta(minutes=7)
    assert ground_truth("SIM-0002", ts, seed=1) == ground_truth("SIM-0002", ts, seed=1)
    assert ground_truth("SIM-0002", ts, seed=1) != ground_truth("SIM-0002", ts, seed=2)
    with pytest.raises(ValueError):
        ground_truth("SIM-0002", EPOCH - timedelta(seconds=1))


def test_registers_monotone_and_interpolated() -> None:
    points = [DAY + timedelta(minutes=5 * i) for i in range(0, 12 * 24)]
    values = [ground_truth("SIM-0003", t, seed=SEED) for t in points]
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(values, values[1:], strict=False))
    q0, q1 = values[0], values[3]  # 00:00 and 00:15
    mid = values[1]  # 00:05 lies a third of the way
    assert q0[0] <= mid[0] <= q1[0]
    assert abs((mid[0] - q0[0]) - (q1[0] - q0[0]) / 3) < 0.002


def test_counter_drop_is_in_ground_truth() -> None:
    drop = {"SIM-0002": DAY.replace(hour=12)}
    before = ground_truth(
        "SIM-0002", DAY.replace(hour=11, minute=45), seed=SEED, counter_drops=drop
    )
    after = ground_truth("SIM-0002", DAY.replace(hour=12, minute=15), seed=SEED, counter_drops=drop)
    assert after[0] < 1 and after[1] < 5 < before[0]
    other = ground_truth("SIM-0001", DAY.replace(hour=12, minute=15), seed=SEED, counter_drops=drop)
    assert other == ground_truth("SIM-0001", DAY.replace(hour=12, minute=15), seed=SEED)


def test_fault_flags_on_the_command_line() -> None:
    drop = "SIM-0001@2025-06-21T10:00:00+00:00"
    args = ("--rate-500", "0.5", "--latency-ms", "3", "--counter-drop", drop, "--retry-after", "4")
    url, stop = start_in_background(meters=2, seed=SEED, extra_args=args)
    try:
        assert url.startswith("http://127.0.0.1:")
        faults = httpx.get(f"{url}/_sim/faults").json()
        statuses, body = [], None
        while body is None:  # faults are transient: at most 2 in a row by default
            resp = httpx.get(
                f"{url}/api/MeterValues/SIM-0001",
                params={"date": "2025-06-21T12:00:00Z"},
                headers=AUTH,
            )
            statuses.append(resp.status_code)
            body = resp.json() if resp.status_code == 200 else None
    finally:
        stop()
    assert (faults["rate_500"], faults["latency_ms"], faults["retry_after_s"]) == (0.5, 3, 4)
    assert list(faults["counter_drop"]) == ["SIM-0001"]
    assert len(statuses) <= 3 and set(statuses) <= {200, 500}
    assert body["CounterReadingImport"] < 5  # the meter exchange at 10:00


def test_enumerations_integers_on_the_current_host_names_on_the_legacy_one(sim: str) -> None:
    legacy = httpx.get(f"{sim}/api/Devices/SIM-0001", headers=AUTH).json()
    current = httpx.get(f"{sim}/Devices/SIM-0001", headers=AUTH).json()
    assert (legacy["DeviceEnergyType"], legacy["MeterSubType"], legacy["FamilyType"]) == (
        "MeterTypeElectricity",
        "MeterSubTypeElectricity",
        "MeterFamilyTypeSmartMe3PhaseMeter80A",
    )
    assert (current["deviceEnergyType"], current["meterSubType"], current["familyType"]) == (
        1,
        4,
        7,
    )
    # the real cloud's seven fractional digits
    assert len(current["valueDate"].split(".")[1]) == len("0500519Z")


@pytest.mark.parametrize("prefix", ["/api", ""])
def test_queries_take_integers_or_names_any_casing_and_seven_digits(sim: str, prefix: str) -> None:
    for asked in ("4", "MeterSubTypeElectricity", "metersubtypeelectricity"):
        found = httpx.get(
            f"{sim}{prefix}/DevicesBySubType", params={"meterSubType": asked}, headers=AUTH
        )
        assert found.status_code == 200 and len(found.json()) == 3, (asked, found.text)
    other = httpx.get(f"{sim}{prefix}/DevicesBySubType", params={"MeterSubType": 9}, headers=AUTH)
    assert other.json() == []
    by_energy = httpx.get(
        f"{sim}{prefix}/DevicesByEnergy", params={"METERENERGYTYPE": "1"}, headers=AUTH
    )
    assert len(by_energy.json()) == 3
    rows = httpx.get(
        f"{sim}{prefix}/ValuesInPastMultiple/SIM-0001",
        params={
            "StartDate": "2025-06-21T00:00:00.0000010Z",
            "enddate": "2025-06-21T01:00:00.9999999Z",
            "Interval": "15",
        },
        headers=AUTH,
    ).json()
    dates = [r.get("Date") or r.get("date") for r in rows]
    assert dates == [f"2025-06-21T0{h}:{m:02d}:00Z" for h, m in [(0, 15), (0, 30), (0, 45), (1, 0)]]
