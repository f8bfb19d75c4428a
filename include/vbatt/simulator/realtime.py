"""The simulated cloud's Realtime API: registrations, and protobuf pushes to them.

``POST|GET /RegisterForRealtimeApi`` and ``DELETE /RegisterForRealtimeApi/{id}`` (both
dialects, the same credentials as the REST API) keep registrations. While one is active
the cloud POSTs a ``DeviceDataArray`` of its meters' current values (registers 1.8.0,
2.8.0, 16.7.0 and a voltage, as a real meter sends) every ``push_period_s`` to its
``apiUrl`` with its basic-auth credentials, as smart-me does; device ids are GUIDs
(``vbatt.warehouse.realtime.meter_guid`` of the simulated meter ids).

Delivery is at least once: values stay queued until the receiver answers 2xx, so a
receiver that is down gets everything once it is back. The REST fault switches act on
pushes too: ``rate_duplicate`` sends a body twice, ``rate_out_of_order`` holds a body back
behind the next one, ``rate_malformed`` sends an extra body that is not protobuf,
``hang_rate`` stalls a period (the next push is a burst), and ``push_rate_bad_auth`` sends
a push with a wrong password (refused; sent again). ``GET /_sim/realtime`` lists what was
acknowledged, for tests that check nothing was lost or doubled.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from vbatt.ingest.realtime_pb import encode_body
from vbatt.simulator.households import household, meter_index, power_kw
from vbatt.warehouse.realtime import meter_guid

log = logging.getLogger("vbatt.simulator.realtime")

IMPORT, EXPORT, POWER, VOLTAGE = "1-0:1.8.0", "1-0:2.8.0", "1-0:16.7.0", "1-0:32.7.0"
MAX_ITEMS_PER_BODY = 500
POST_TIMEOUT_S = 10.0
REGISTRATION_TYPES = {0: "disabled", 1: "single meter", 2: "every device of the user"}


@dataclass
class Registration:
    id: str
    registration_type: int
    meter_id: str | None  # the simulated meter's id (SIM-0001) for type 1
    api_url: str
    user: str
    password: str
    queue: list[tuple[str, datetime, list[tuple[str, float]]]] = field(default_factory=list)
    held_back: tuple[bytes, list] | None = None  # out of order: sent after the next body
    pushes: int = 0

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "registrationType": self.registration_type,
            "meterId": meter_guid(self.meter_id) if self.meter_id else None,
            "serialNumber": None,
            "apiUrl": self.api_url,
            "basicAuthUsername": self.user or None,
            "basicAuthPassword": None,  # never echoed
        }


@dataclass
class Pusher:
    """Registrations of one simulated cloud and the task that pushes to them."""

    state: Any  # app.SimState
    registrations: dict[str, Registration] = field(default_factory=dict)
    acknowledged: list[dict[str, Any]] = field(default_factory=list)
    task: asyncio.Task | None = None

    def meters_of(self, reg: Registration) -> list[str]:
        if reg.registration_type == 2:
            return self.state.meter_ids()
        if reg.registration_type == 1 and reg.meter_id:
            return [reg.meter_id]
        return []

    def start(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=POST_TIMEOUT_S) as client:
            while self.registrations:
                started = asyncio.get_running_loop().time()
                await asyncio.gather(
                    *(self._tick(client, reg) for reg in list(self.registrations.values()))
                )
                period = self.state.faults.push_period_s
                spent = asyncio.get_running_loop().time() - started
                await asyncio.sleep(max(0.0, period - spent))

    def _values(self, meter_id: str, now: datetime) -> list[tuple[str, float]]:
        imp, exp = self.state.registers(meter_id, now)
        power = power_kw(meter_id, now, seed=self.state.seed)
        return [(IMPORT, imp), (EXPORT, exp), (POWER, power), (VOLTAGE, 230.0)]

    def _roll(self, reg: Registration, kind: str, item: int = 0) -> float:
        return self.state.dice.roll(f"push:{reg.id}", reg.pushes, kind, item)

    async def _tick(self, client: httpx.AsyncClient, reg: Registration) -> None:
        now = datetime.now(UTC)
        reg.queue += [(m, now, self._values(m, now)) for m in self.meters_of(reg)]
        reg.pushes += 1
        faults, dice = self.state.faults, self.state.dice
        if not reg.queue and reg.held_back is None:
            return
        if self._roll(reg, "hang") < faults.hang_rate:
            dice.count("push_stall")  # the values wait: the next push is a burst
            return
        if self._roll(reg, "malformed") < faults.rate_malformed:
            dice.count("push_bad_body")
            await self._post(client, reg, b"\x0a\xff\xffnot a DeviceDataArray", bad_body=True)
        n = 0
        while reg.queue:
            n += 1
            batch = reg.queue[:MAX_ITEMS_PER_BODY]
            body = encode_body([(meter_guid(m), t, v) for m, t, v in batch])
            if reg.held_back is None and self._roll(reg, "out_of_order", n) < (
                faults.rate_out_of_order
            ):
                dice.count("push_out_of_order")
                reg.held_back = (body, batch)  # sent after the next body
                del reg.queue[: len(batch)]
                continue
            outcome = await self._post(client, reg, body, item=n)
            if outcome == "retry":
                return  # kept; sent again next period
            del reg.queue[: len(batch)]
            if outcome == "ok":
                self._ack(batch)
                if self._roll(reg, "duplicate", n) < faults.rate_duplicate:
                    dice.count("push_duplicate")
                    await self._post(client, reg, body, item=n)
            if not await self._send_held_back(client, reg):
                return
        await self._send_held_back(client, reg)

    async def _send_held_back(self, client: httpx.AsyncClient, reg: Registration) -> bool:
        if reg.held_back is None:
            return True
        body, batch = reg.held_back
        outcome = await self._post(client, reg, body)
        if outcome == "retry":
            return False
        reg.held_back = None
        if outcome == "ok":
            self._ack(batch)
        return True

    def _ack(self, batch) -> None:
        for m, t, v in batch:
            values = dict(v)
            self.acknowledged.append(
                {
                    "meterId": m,
                    "deviceId": meter_guid(m),
                    "at": t.isoformat(),
                    "import": values[IMPORT],
                    "export": values[EXPORT],
                    "power": values[POWER],
                }
            )

    async def _post(
        self,
        client: httpx.AsyncClient,
        reg: Registration,
        body: bytes,
        *,
        bad_body: bool = False,
        item: int = 0,
    ) -> str:
        """ "ok" (2xx), "refused" (400: sending it again would not help) or "retry"."""
        password = reg.password
        if (
            not bad_body
            and self._roll(reg, "bad_auth", item) < self.state.faults.push_rate_bad_auth
        ):
            self.state.dice.count("push_bad_auth")
            password = secrets.token_hex(4)
        token = base64.b64encode(f"{reg.user}:{password}".encode()).decode()
        try:
            resp = await client.post(
                reg.api_url,
                content=body,
                headers={
                    "Authorization": f"Basic {token}",
                    "Content-Type": "application/x-protobuf",
                },
            )
        except httpx.HTTPError as exc:
            self.state.dice.count("push_receiver_down")
            log.info("push to %s failed: %s", reg.api_url, exc)
            return "retry"
        self.state.dice.count(f"push_http_{resp.status_code}")
        if 200 <= resp.status_code < 300:
            return "ok"
        if resp.status_code == 400:
            if not bad_body:
                log.warning("receiver refused a push (400): %s", resp.text[:200])
            return "refused"
        return "retry"


def _registration(state: Any, payload: Any) -> Registration | str:
    if not isinstance(payload, dict):
        return "body must be a RegisterRealtimeApiData object"
    fields = {str(k).lower(): v for k, v in payload.items()}
    kind = fields.get("registrationtype")
    if isinstance(kind, str):
        kind = {"disabled": 0, "singlemeterregistration": 1, "userregistration": 2}.get(
            kind.lower(), kind
        )
    if kind not in REGISTRATION_TYPES:
        return f"registrationType must be one of {sorted(REGISTRATION_TYPES)}"
    url = fields.get("apiurl")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return "apiUrl must be an http(s) URL"
    meter = None
    if kind == 1:
        wanted = fields.get("meterid") or fields.get("serialnumber")
        by_guid = {meter_guid(m): m for m in state.meter_ids()}
        by_serial = {
            str(household(state.seed, meter_index(m)).serial): m for m in state.meter_ids()
        }
        key = str(wanted or "").strip()
        meter = (
            by_guid.get(key.lower()) or by_serial.get(key) or (key if state.knows(key) else None)
        )
        if meter is None:
            return f"no device with meterId or serialNumber {wanted!r}"
    return Registration(
        id=str(uuid.uuid4()),
        registration_type=kind,
        meter_id=meter,
        api_url=url,
        user=str(fields.get("basicauthusername") or ""),
        password=str(fields.get("basicauthpassword") or ""),
    )


def add_realtime_routes(app: FastAPI, state: Any, prefix: str, gate) -> None:
    """The registration endpoints of one dialect (``gate`` is the REST auth and faults)."""
    pusher: Pusher = state.pusher

    async def register(request: Request) -> Response:
        if (denied := await gate(state, request)) is not None:
            return denied
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        reg = _registration(state, payload)
        if isinstance(reg, str):
            return JSONResponse({"Message": reg}, status_code=400)
        pusher.registrations[reg.id] = reg
        pusher.start()
        return JSONResponse(reg.wire())

    async def list_registrations(request: Request) -> Response:
        if (denied := await gate(state, request)) is not None:
            return denied
        return JSONResponse([r.wire() for r in pusher.registrations.values()])

    async def delete(request: Request, id: str) -> Response:  # noqa: A002 - spec's name
        if (denied := await gate(state, request)) is not None:
            return denied
        if pusher.registrations.pop(id.lower(), None) is None:
            return JSONResponse({"Message": f"No registration with id {id}."}, status_code=404)
        return Response(status_code=200)

    app.add_api_route(f"{prefix}/RegisterForRealtimeApi", register, methods=["POST"])
    app.add_api_route(f"{prefix}/RegisterForRealtimeApi", list_registrations, methods=["GET"])
    app.add_api_route(f"{prefix}/RegisterForRealtimeApi/{{id}}", delete, methods=["DELETE"])


def add_realtime_admin(app: FastAPI, state: Any) -> None:
    async def pushed() -> dict[str, Any]:
        pusher: Pusher = state.pusher
        return {
            "registrations": len(pusher.registrations),
            "queued": sum(
                len(r.queue) + (len(r.held_back[1]) if r.held_back else 0)
                for r in pusher.registrations.values()
            ),
            "acknowledged": pusher.acknowledged,
        }

    app.add_api_route("/_sim/realtime", pushed, methods=["GET"])
