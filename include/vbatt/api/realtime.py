"""``POST /smartme/realtime``: the receiver of smart-me's Realtime API (docs/realtime.md).

smart-me POSTs a protobuf ``DeviceDataArray`` with HTTP basic auth for every new value of
the registered meters. Answers: 404 while no credentials are configured
(VBATT_REALTIME_USER / VBATT_REALTIME_PASSWORD), 401 for wrong or missing credentials,
400 with the reason for a body that is not a ``DeviceDataArray``, 503 if the warehouse
did not take the values (smart-me sends them again), else 200 once they are durable, with
what was taken, ignored and refused. The API's other routes stay read-only: the receiver
has its own engine, and it never touches the ledger's tables.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets

from fastapi import APIRouter, HTTPException, Request
from sqlalchemy import create_engine

from vbatt.ingest.realtime_intake import RealtimeWriter, to_values
from vbatt.ingest.realtime_pb import BodyError, decode_body
from vbatt.settings import get_settings

router = APIRouter(tags=["realtime"])
log = logging.getLogger("vbatt.realtime")

MAX_BODY_BYTES = 16 * 1024 * 1024
OFF = (
    "the realtime receiver is off: set VBATT_REALTIME_USER and VBATT_REALTIME_PASSWORD"
    " for `vbatt serve` (docs/realtime.md)"
)
CHALLENGE = {"WWW-Authenticate": 'Basic realm="vbatt realtime", charset="UTF-8"'}


def _check_credentials(request: Request, user: str, password: str) -> None:
    header = request.headers.get("authorization", "")
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


def _writer(request: Request) -> RealtimeWriter:
    """The app's writer, with an engine of its own that may write (made on first use)."""
    writer = getattr(request.app.state, "realtime_writer", None)
    if writer is None:
        marts = request.app.state.marts
        engine = create_engine(
            marts.engine.url,
            pool_pre_ping=True,
            pool_size=4,
            connect_args={"options": "-c timezone=UTC"},
        )
        writer = request.app.state.realtime_writer = RealtimeWriter(engine, marts.raw)
    return writer


@router.post("/smartme/realtime", summary="smart-me Realtime API receiver (protobuf)")
async def receive(request: Request) -> dict:
    settings = get_settings()
    if not (settings.realtime_user and settings.realtime_password):
        raise HTTPException(404, OFF)
    _check_credentials(request, settings.realtime_user, settings.realtime_password)
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise HTTPException(413, f"body over {MAX_BODY_BYTES} bytes")
    try:
        items = decode_body(body)
    except BodyError as exc:
        log.warning(
            "realtime push refused (400): %s; %d bytes from %s",
            exc,
            len(body),
            request.client.host if request.client else "?",
        )
        raise HTTPException(400, str(exc)) from None
    writer = _writer(request)
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
