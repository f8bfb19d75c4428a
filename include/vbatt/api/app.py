"""The app factory: the smart-me-compatible API, the native API, the partners' write API
and the dashboard, one app.

Reads run in sessions with ``default_transaction_read_only``; the write API
(``writes.py``: batteries and their versions, for partners' keys with the write scope)
has a pool of its own and writes through ``vbatt.warehouse.versions``, each write one
audited transaction. Keys are created by the CLI (``vbatt keys create``), never over HTTP.
The realtime receiver (``realtime.py``) writes through an engine of its own.
Every answer carries the security headers of ``security.py``; a NUL in a path or query
string is refused before routing (``nul_guard.py``), and request validation errors on
smart-me's routes answer in smart-me's shape. The OpenAPI schema is at
``/openapi.json``; the interactive docs pages are off because they load scripts from the
internet.
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from vbatt.api import dashboard, fleet, live_stream, native, realtime, smartme, writes
from vbatt.api.audit import AuditLog
from vbatt.api.errors import Refused
from vbatt.api.meter_check import MeterCheck
from vbatt.api.nul_guard import RefuseNul
from vbatt.api.queries import Marts, read_only_engine, write_engine
from vbatt.api.security import KeyThrottle, SecurityHeaders


def create_app(
    engine: Engine | None = None,
    *,
    url: str | None = None,
    marts_schema: str = "analytics_marts",
    raw_schema: str = "raw",
    writer: Engine | None = None,
    meter_check: MeterCheck | None = None,
    key_throttle: KeyThrottle | None = None,
) -> FastAPI:
    """An app over ``engine`` (or a read-only engine on ``url``). Writes go to ``writer``
    (default: a pool of its own on ``url``; without either the app is read-only).
    ``meter_check`` asks whether a house meter measures both directions (None: no check);
    ``key_throttle`` slows down clients that send wrong keys (default: KeyThrottle())."""
    if engine is None:
        if url is None:
            raise ValueError("create_app needs an engine or a warehouse url")
        engine = read_only_engine(url)
    if writer is None and url is not None:
        writer = write_engine(url)
    app = FastAPI(
        title="vbatt API",
        summary="Virtual batteries as meters: smart-me-compatible and native endpoints,"
        " and a write API for partners.",
        version="1",
        docs_url=None,
        redoc_url=None,
    )
    app.state.marts = Marts(engine, marts_schema, raw_schema)
    app.state.writer = writer
    app.state.audit = AuditLog(raw_schema)
    app.state.meter_check = meter_check
    app.state.key_throttle = key_throttle or KeyThrottle()
    app.add_middleware(RefuseNul)  # behind FastPath: realtime pushes skip the check
    app.add_middleware(realtime.FastPath, state=app.state)  # inside SecurityHeaders
    app.add_middleware(SecurityHeaders)
    app.include_router(smartme.legacy_router)
    app.include_router(smartme.current_router)
    app.include_router(realtime.router)
    app.include_router(native.router)
    app.include_router(writes.router)
    app.include_router(fleet.router)
    app.include_router(live_stream.router)
    app.include_router(dashboard.router)
    dashboard.mount_static(app)

    @app.exception_handler(HTTPException)
    async def _errors(request: Request, exc: HTTPException):
        if request.url.path.startswith("/dashboard") and exc.status_code in (401, 403, 404, 429):
            return dashboard.error_page(request, exc)
        if isinstance(exc, Refused) and not request.url.path.startswith("/api/"):
            return JSONResponse(exc.body, exc.status_code, headers=exc.headers)
        # smart-me's error body is {"Message": ...}; the native API keeps FastAPI's "detail"
        key = smartme.error_key(request.url.path) or "detail"
        return JSONResponse({key: exc.detail}, exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        # smart-me's clients read {"Message": ...} on its routes whatever went wrong; the
        # native API keeps FastAPI's list of errors
        key = smartme.error_key(request.url.path)
        if key is None:
            return await request_validation_exception_handler(request, exc)
        return JSONResponse({key: smartme.invalid_message(exc.errors())}, 422)

    return app
