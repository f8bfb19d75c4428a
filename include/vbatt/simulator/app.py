"""A smart-me-compatible REST API over the simulated households, with switchable faults.

Two dialects are served side by side, as smart-me does in reality:

* legacy host: ``/api/<Resource>`` with PascalCase JSON keys (as in the published spec);
* current host: ``/<Resource>`` (no ``/api`` prefix) with camelCase keys.

Enumerations are sent as the dialect's description has them: member names on the legacy
host (``"MeterSubType": "MeterSubTypeElectricity"``, the older published spec), integers on
the current one (``"meterSubType": 4``, as the current description and real answers);
``valueDate`` on the current host carries seven fractional digits, as real answers do.
Queries accept both: enumerations as integers or member names in any casing, parameter
names in any casing, dates with up to seven fractional digits.

Resources: ``Devices``, ``Devices/{id}``, ``DevicesByEnergy?meterEnergyType=``,
``DevicesBySubType?meterSubType=``, ``MeterValues/{id}?date=``,
``ValuesInPastMultiple/{id}?startDate=&endDate=&interval=`` and ``Health``; token endpoint
``POST /oauth/token`` (client credentials). Registers are in kWh
(``CounterReadingUnit: "kWh"``; OBIS values carry no unit in the spec and are served in kWh).
Admin endpoints under ``/_sim`` need no credentials: the server binds 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import math
import random
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from vbatt.simulator.faults import Dice, Faults
from vbatt.simulator.households import (
    EPOCH,
    QUARTER,
    ceil_quarter,
    floor_quarter,
    ground_truth,
    household,
    meter_id_for,
    meter_index,
    power_kw,
)
from vbatt.simulator.realtime import Pusher, add_realtime_admin, add_realtime_routes
from vbatt.smartme_schema import (
    ENERGY_TYPE_ELECTRICITY,
    FAMILY_TYPE_3_PHASE_80A,
    MAX_VALUES_PER_CALL,
    METER_ENERGY_TYPES,
    METER_FAMILY_TYPES,
    METER_SUB_TYPES,
    OBIS_EXPORT,
    OBIS_IMPORT,
    OBIS_POWER,
    SUB_TYPE_ELECTRICITY,
    Device,
    DeviceInPast,
    ValueData,
    ValuesData,
    camel,
    enum_name,
    iso,
    parse_instant,
)

DEMO_API_KEY = "sim-demo-api-key"
DEMO_USER = "demo"
DEMO_PASSWORD = "sim-demo-password"
DEMO_CLIENT_ID = "sim-demo-client"
DEMO_CLIENT_SECRET = "sim-demo-client-secret"


@dataclass
class Credentials:
    api_key: str = DEMO_API_KEY
    user: str = DEMO_USER
    password: str = DEMO_PASSWORD
    client_id: str = DEMO_CLIENT_ID
    client_secret: str = DEMO_CLIENT_SECRET
    token_ttl_s: int = 3600


@dataclass
class SimState:
    """Everything the running server knows; mutable only through ``/_sim`` endpoints."""

    seed: int
    meters: int
    creds: Credentials
    faults: Faults
    dice: Dice = field(init=False)
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (monotonic)
    token_requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    pusher: Pusher = field(init=False)

    def __post_init__(self) -> None:
        self.dice = Dice(self.seed)
        self.pusher = Pusher(self)

    def meter_ids(self) -> list[str]:
        return [meter_id_for(i) for i in range(1, self.meters + 1)]

    def knows(self, meter_id: str) -> bool:
        try:
            return 1 <= meter_index(meter_id) <= self.meters
        except ValueError:
            return False

    def registers(self, meter_id: str, ts: datetime) -> tuple[float, float]:
        return ground_truth(meter_id, ts, seed=self.seed, counter_drops=self.faults.counter_drop)


def _message(status: int, text: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"Message": text}, status_code=status, headers=headers)


def _authorized(state: SimState, header: str) -> bool:
    scheme, _, value = header.partition(" ")
    scheme, value = scheme.lower(), value.strip()
    creds = state.creds
    if scheme == "apikey":
        return hmac.compare_digest(value.encode(), creds.api_key.encode())
    if scheme == "basic":
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user.encode(), creds.user.encode()) and hmac.compare_digest(
            password.encode(), creds.password.encode()
        )
    if scheme == "bearer":
        with state.lock:
            expiry = state.tokens.get(value)
        return expiry is not None and expiry > time.monotonic()
    return False


async def _gate(state: SimState, request: Request) -> Response | None:
    """Auth, latency and request-level faults; None means: answer normally."""
    path = request.url.path
    n = state.dice.next_request(path)
    request.state.n = n
    request.state.malformed = False
    if not _authorized(state, request.headers.get("authorization", "")):
        return _message(
            401,
            "Authorization has been denied for this request.",
            {"WWW-Authenticate": 'Basic realm="smart-me", ApiKey, Bearer'},
        )
    f = state.faults
    if f.latency_ms:
        await asyncio.sleep(f.latency_ms / 1000)
    dice = state.dice
    if not dice.may_fault(path, f.max_consecutive_faults):
        dice.outcome(path, False)
        return None
    if dice.roll(path, n, "hang") < f.hang_rate:
        dice.outcome(path, True, "hang")
        await asyncio.sleep(f.hang_ms / 1000)
        return None
    if dice.roll(path, n, "429") < f.rate_429:
        dice.outcome(path, True, "429")
        if f.retry_after_http_date:
            # HTTP dates have whole seconds: round up so the client never comes back early.
            at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=f.retry_after_s + 1)
            retry_after = format_datetime(at, usegmt=True)
        else:
            retry_after = str(f.retry_after_s)
        return _message(429, "Too many requests.", {"Retry-After": retry_after})
    if dice.roll(path, n, "500") < f.rate_500:
        dice.outcome(path, True, "500")
        return _message(500, "An error has occurred.")
    if dice.roll(path, n, "malformed") < f.rate_malformed:
        dice.outcome(path, True, "malformed")
        request.state.malformed = True
        return None
    dice.outcome(path, False)
    return None


def _render(request: Request, payload: Any, legacy: bool) -> Response:
    body = json.dumps(payload if legacy else camel(payload))
    if request.state.malformed:
        body = body[: max(1, len(body) // 2)]  # a connection cut mid-body, as seen in the wild
    return Response(body, media_type="application/json; charset=utf-8")


def _query(request: Request) -> dict[str, str]:
    """Query parameters by lower-case name: ``startDate`` and ``StartDate`` alike."""
    return {k.lower(): v for k, v in request.query_params.items()}


def _ticks(ts: datetime) -> str:
    """A date as the real cloud writes it: seven fractional digits (.NET ticks)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _device(state: SimState, meter_id: str, now: datetime, legacy: bool) -> dict[str, Any]:
    hh = household(state.seed, meter_index(meter_id))
    imp, exp = state.registers(meter_id, now)
    energy, family, sub = ENERGY_TYPE_ELECTRICITY, FAMILY_TYPE_3_PHASE_80A, SUB_TYPE_ELECTRICITY
    return Device(
        Id=meter_id,
        Name=hh.name,
        Serial=hh.serial,
        DeviceEnergyType=METER_ENERGY_TYPES[energy] if legacy else energy,
        FamilyType=METER_FAMILY_TYPES[family] if legacy else family,
        MeterSubType=METER_SUB_TYPES[sub] if legacy else sub,
        ActivePower=power_kw(meter_id, now, seed=state.seed),
        ActivePowerUnit="kW",
        CounterReading=imp,
        CounterReadingImport=imp,
        CounterReadingExport=None if meter_id in state.faults.import_only else exp,
        CounterReadingUnit="kWh",
        Voltage=230.0,
        SwitchOn=True,
        ValueDate=iso(now) if legacy else _ticks(now),
    ).wire()


def _spoil_value(state: SimState, request: Request, entry: dict[str, Any], item: int) -> None:
    """Make one value unusable in one of the ways real payloads are."""
    how = int(state.dice.roll(request.url.path, request.state.n, "missing", item + 10**6) * 4)
    values = entry["Values"]
    if how == 0:
        entry["Values"] = [v for v in values if v["Obis"] != OBIS_IMPORT]
    elif how == 1:
        next(v for v in values if v["Obis"] == OBIS_EXPORT)["Value"] = None
    elif how == 2:
        next(v for v in values if v["Obis"] == OBIS_IMPORT)["Value"] = "n/a"
    else:
        del entry["Values"]


def _value_faults(state: SimState, request: Request, rows: list[dict[str, Any]]) -> list[Any]:
    f, dice, path, n = state.faults, state.dice, request.url.path, request.state.n
    out: list[Any] = []
    for i, row in enumerate(rows):
        if dice.roll(path, n, "missing", i) < f.rate_missing:
            _spoil_value(state, request, row, i)
            dice.count("missing")
        out.append(row)
        if dice.roll(path, n, "duplicate", i) < f.rate_duplicate:
            out.append(json.loads(json.dumps(row)))
            dice.count("duplicate")
    if out and dice.roll(path, n, "out_of_order") < f.rate_out_of_order:
        random.Random(int(dice.roll(path, n, "out_of_order", 1) * 2**32)).shuffle(out)
        dice.count("out_of_order")
    return out


def _values_rows(
    state: SimState, meter_id: str, start: datetime, end: datetime, interval: int
) -> list[dict[str, Any]]:
    step = QUARTER * max(1, math.ceil(interval / 15)) if interval > 0 else QUARTER
    ts = ceil_quarter(max(start, EPOCH))
    last = min(end, datetime.now(UTC))
    rows = []
    while ts <= last and len(rows) < MAX_VALUES_PER_CALL:
        imp, exp = state.registers(meter_id, ts)
        rows.append(
            ValuesData(
                Date=iso(ts),
                DeviceId=meter_id,
                Values=[
                    ValueData(Obis=OBIS_IMPORT, Value=imp),
                    ValueData(Obis=OBIS_EXPORT, Value=exp),
                    ValueData(Obis=OBIS_POWER, Value=power_kw(meter_id, ts, seed=state.seed)),
                ],
            ).wire()
        )
        ts += step
    return rows


def _add_api_routes(app: FastAPI, state: SimState, prefix: str, legacy: bool) -> None:
    async def devices(request: Request) -> Response:
        if (denied := await _gate(state, request)) is not None:
            return denied
        now = datetime.now(UTC)
        return _render(request, [_device(state, m, now, legacy) for m in state.meter_ids()], legacy)

    def by_enum(param: str, members: dict[int, str], wanted: int):
        async def devices_by(request: Request) -> Response:
            if (denied := await _gate(state, request)) is not None:
                return denied
            asked = enum_name(_query(request).get(param.lower()), members)
            if asked is None:
                return _message(400, f"The query parameter '{param}' is required.")
            now = datetime.now(UTC)
            found = [_device(state, m, now, legacy) for m in state.meter_ids()]
            return _render(request, found if asked == members[wanted] else [], legacy)

        return devices_by

    async def device(request: Request, id: str) -> Response:  # noqa: A002 - spec's name
        if (denied := await _gate(state, request)) is not None:
            return denied
        if not state.knows(id):
            return _message(404, f"No device with id {id} found.")
        return _render(request, _device(state, id, datetime.now(UTC), legacy), legacy)

    async def meter_values(request: Request, id: str) -> Response:  # noqa: A002
        if (denied := await _gate(state, request)) is not None:
            return denied
        if not state.knows(id):
            return _message(404, f"No device with id {id} found.")
        date = parse_instant(_query(request).get("date"))
        if date is None:
            return _message(400, "The query parameter 'date' (date-time) is required.")
        at = floor_quarter(min(date, datetime.now(UTC)))
        if at < EPOCH:
            return _message(404, f"No values found before {iso(date)}.")
        imp, exp = state.registers(id, at)
        payload = DeviceInPast(
            Id=id,
            Serial=household(state.seed, meter_index(id)).serial,
            Date=iso(at),
            CounterReading=imp,
            CounterReadingImport=imp,
            CounterReadingExport=None if id in state.faults.import_only else exp,
            CounterReadingUnit="kWh",
        ).wire()
        if (
            state.dice.roll(request.url.path, request.state.n, "missing")
            < state.faults.rate_missing
        ):
            payload["CounterReadingImport"] = None
            state.dice.count("missing")
        return _render(request, payload, legacy)

    async def values_in_past_multiple(request: Request, id: str) -> Response:  # noqa: A002
        if (denied := await _gate(state, request)) is not None:
            return denied
        if not state.knows(id):
            return _message(404, f"No device with id {id} found.")
        q = _query(request)
        start, end = parse_instant(q.get("startdate")), parse_instant(q.get("enddate"))
        try:
            interval = int(q.get("interval", ""))
        except ValueError:
            interval = -1
        if start is None or end is None or interval < 0:
            return _message(400, "startDate, endDate (date-time) and interval (int) are required.")
        rows = _values_rows(state, id, start, end, interval)
        return _render(request, _value_faults(state, request, rows), legacy)

    async def health() -> Response:
        return JSONResponse({})  # unauthenticated, like the probe endpoint it mimics

    app.add_api_route(f"{prefix}/Devices", devices, methods=["GET"])
    app.add_api_route(
        f"{prefix}/DevicesByEnergy",
        by_enum("meterEnergyType", METER_ENERGY_TYPES, ENERGY_TYPE_ELECTRICITY),
        methods=["GET"],
    )
    app.add_api_route(
        f"{prefix}/DevicesBySubType",
        by_enum("meterSubType", METER_SUB_TYPES, SUB_TYPE_ELECTRICITY),
        methods=["GET"],
    )
    app.add_api_route(f"{prefix}/Devices/{{id}}", device, methods=["GET"])
    app.add_api_route(f"{prefix}/MeterValues/{{id}}", meter_values, methods=["GET"])
    app.add_api_route(
        f"{prefix}/ValuesInPastMultiple/{{id}}", values_in_past_multiple, methods=["GET"]
    )
    app.add_api_route(f"{prefix}/Health", health, methods=["GET"])
    add_realtime_routes(app, state, prefix, _gate)


def _add_oauth(app: FastAPI, state: SimState) -> None:
    async def token(request: Request) -> Response:
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic" and not client_id:
            try:
                client_id, _, client_secret = base64.b64decode(value).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                client_id = client_secret = None
        with state.lock:
            state.token_requests += 1
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        creds = state.creds
        ok = (
            isinstance(client_id, str)
            and isinstance(client_secret, str)
            and hmac.compare_digest(client_id.encode(), creds.client_id.encode())
            and hmac.compare_digest(client_secret.encode(), creds.client_secret.encode())
        )
        if not ok:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        scope = str(form.get("scope") or "device.read")
        if "device.read" not in scope.split():
            return JSONResponse({"error": "invalid_scope"}, status_code=400)
        access_token = secrets.token_urlsafe(24)
        with state.lock:
            state.tokens[access_token] = time.monotonic() + creds.token_ttl_s
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": creds.token_ttl_s,
                "scope": scope,
            }
        )

    app.add_api_route("/oauth/token", token, methods=["POST"])


def _add_admin(app: FastAPI, state: SimState) -> None:
    async def health() -> dict[str, Any]:
        return {"status": "ok", "meters": state.meters, "seed": state.seed}

    async def get_faults() -> dict[str, Any]:
        return state.faults.model_dump(mode="json")

    async def set_faults(request: Request) -> Response:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("body must be a JSON object")
            merged = state.faults.model_dump() | changes
            state.faults = Faults.model_validate(merged)
        except (ValueError, ValidationError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        return JSONResponse(state.faults.model_dump(mode="json"))

    async def stats() -> dict[str, Any]:
        return state.dice.stats() | {"token_requests": state.token_requests}

    async def reset() -> dict[str, Any]:
        state.dice.reset()
        with state.lock:
            state.token_requests = 0
        return {"status": "reset"}

    async def revoke_tokens() -> dict[str, Any]:
        with state.lock:
            n = len(state.tokens)
            state.tokens.clear()
        return {"revoked": n}

    app.add_api_route("/_sim/health", health, methods=["GET"])
    app.add_api_route("/_sim/faults", get_faults, methods=["GET"])
    app.add_api_route("/_sim/faults", set_faults, methods=["POST"])
    app.add_api_route("/_sim/stats", stats, methods=["GET"])
    app.add_api_route("/_sim/reset", reset, methods=["POST"])
    app.add_api_route("/_sim/revoke-tokens", revoke_tokens, methods=["POST"])


def create_app(state: SimState) -> FastAPI:
    app = FastAPI(title="vbatt smart-me simulator", docs_url=None, redoc_url=None)
    _add_api_routes(app, state, "/api", legacy=True)
    _add_api_routes(app, state, "", legacy=False)
    _add_oauth(app, state)
    _add_admin(app, state)
    add_realtime_admin(app, state)
    return app
