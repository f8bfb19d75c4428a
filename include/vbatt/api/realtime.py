"""``POST /smartme/realtime``: the receiver of smart-me's Realtime API (docs/realtime.md).

smart-me POSTs a protobuf ``DeviceDataArray`` with HTTP basic auth for every new value of
the registered meters. Answers: 404 while no credentials are configured
(VBATT_REALTIME_USER / VBATT_REALTIME_PASSWORD), 401 for wrong or missing credentials,
400 with the reason for a body that is not a ``DeviceDataArray``, 503 if the warehouse
did not take the values (smart-me sends them again), else 200 once they are durable, with
what was taken, ignored and refused. The API's other routes stay read-only: the receiver
has its own engine, and it never touches the ledger's tables.

At a thousand pushes a second every request's overhead counts, so the app answers this
one route in ``FastPath``, a small ASGI middleware in front of FastAPI's routing
(dependencies, request objects, response models cost more than the push itself). It sits
inside ``SecurityHeaders``, so its answers carry the same headers; the router's route
below answers the same through the same ``answer`` (an app built without the middleware,
and the OpenAPI schema).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import secrets
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from sqlalchemy import create_engine
from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from vbatt.ingest.realtime_intake import RealtimeWriter, to_values
from vbatt.ingest.realtime_pb import BodyError, decode_body
from vbatt.settings import get_settings

router = APIRouter(tags=["realtime"])
log = logging.getLogger("vbatt.realtime")

PATH = "/smartme/realtime"
MAX_BODY_BYTES = 16 * 1024 * 1024
OFF = (
    "the realtime receiver is off: set VBATT_REALTIME_USER and VBATT_REALTIME_PASSWORD"
    " for `vbatt serve` (docs/realtime.md)"
)
CHALLENGE = {"WWW-Authenticate": 'Basic realm="vbatt realtime", charset="UTF-8"'}
TOO_LARGE = f"body over {MAX_BODY_BYTES} bytes"


def _check_credentials(header: str, user: str, password: str) -> None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise HTTPException(401, "HTTP basic auth required", headers=CHALLENGE)
    try:
        given_user, sep, given_password = (
            base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        raise HTTPException(401, "malformed basic auth header", headers=CHALLENGE) from None
    user_ok = secrets.compare_digest(given_user.encode(), user.encode())
    password_ok = secrets.compare_digest(given_password.encode(), password.encode())
    if not (sep and user_ok and password_ok):
        raise HTTPException(401, "wrong user or password", headers=CHALLENGE)


def _writer(state: State) -> RealtimeWriter:
    """The app's writer, with an engine of its own that may write (made on first use)."""
    writer = getattr(state, "realtime_writer", None)
    if writer is None:
        marts = state.marts
        engine = create_engine(
            marts.engine.url,
            pool_pre_ping=True,
            pool_size=4,
            # which worker a session is, for people reading pg_stat_activity (and the tests)
            connect_args={
                "options": "-c timezone=UTC",
                "application_name": f"vbatt realtime {os.getpid()}",
            },
        )
        writer = state.realtime_writer = RealtimeWriter(engine, marts.raw)
    return writer


def _receiver_on() -> tuple[str, str]:
    settings = get_settings()
    if not (settings.realtime_user and settings.realtime_password):
        raise HTTPException(404, OFF)
    return settings.realtime_user, settings.realtime_password


async def answer(state: State, body: bytes, client: str) -> dict[str, Any]:
    """Decode, store durably, and say what was taken (credentials checked before; raises
    HTTPException for 400 and 503)."""
    if len(body) > MAX_BODY_BYTES:
        raise HTTPException(413, TOO_LARGE)
    try:
        items = decode_body(body)
    except BodyError as exc:
        log.warning("realtime push refused (400): %s; %d bytes from %s", exc, len(body), client)
        raise HTTPException(400, str(exc)) from None
    writer = _writer(state)
    known = await writer.known([i.device_id for i in items])
    values, rejected, counts = to_values(items, known)
    try:
        await writer.write(values, rejected, counts)
    except Exception:
        raise HTTPException(
            503, "the values were not stored; send them again", headers={"Retry-After": "1"}
        ) from None
    return {
        "items": counts.items,
        "values": len(values),
        "readings": sum(1 for v in values if v.is_reading),
        "unknownDevices": counts.unknown_devices,
        "unusedValues": counts.unused_values,
        "rejected": len(rejected),
    }


@router.post(PATH, summary="smart-me Realtime API receiver (protobuf)")
async def receive(request: Request) -> dict:
    user, password = _receiver_on()
    _check_credentials(request.headers.get("authorization", ""), user, password)
    client = request.client.host if request.client else "?"
    return await answer(request.app.state, await request.body(), client)


class FastPath:
    """ASGI middleware: ``POST /smartme/realtime`` answered before FastAPI's routing, with
    the route's answers (status, body ``{"detail": ...}`` for errors, headers); every other
    request goes on to the app."""

    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            user, password = _receiver_on()
            authorization = ""
            for name, value in scope["headers"]:
                if name == b"authorization":
                    authorization = value.decode("latin-1")
                    break
            _check_credentials(authorization, user, password)
            body = await _read_body(receive)
            client = scope["client"][0] if scope.get("client") else "?"
            status, payload, headers = 200, await answer(self.state, body, client), {}
        except HTTPException as exc:
            status, payload, headers = exc.status_code, {"detail": exc.detail}, exc.headers or {}
        content = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(content)).encode()),
                ]
                + [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": content})


async def _read_body(receive: Receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HTTPException(400, "the client went away before the body was complete")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(413, TOO_LARGE)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
