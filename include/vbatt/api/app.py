"""The app factory: the smart-me-compatible API, the native API and the dashboard, one app.

Read-only: every session runs with ``default_transaction_read_only`` (only the realtime
receiver, ``api/realtime.py``, writes, through an engine of its own); keys are created by
the CLI (``vbatt keys create``), never over HTTP. The OpenAPI schema is at
``/openapi.json``; the interactive docs pages are off because they load scripts from the
internet.
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from vbatt.api import dashboard, live_stream, native, realtime, smartme
from vbatt.api.queries import Marts, read_only_engine


def create_app(
    engine: Engine | None = None,
    *,
    url: str | None = None,
    marts_schema: str = "analytics_marts",
    raw_schema: str = "raw",
) -> FastAPI:
    """An app over ``engine`` (or a read-only engine on ``url``)."""
    if engine is None:
        if url is None:
            raise ValueError("create_app needs an engine or a warehouse url")
        engine = read_only_engine(url)
    app = FastAPI(
        title="vbatt read API",
        summary="Virtual batteries as meters: smart-me-compatible and native endpoints.",
        version="1",
        docs_url=None,
        redoc_url=None,
    )
    app.state.marts = Marts(engine, marts_schema, raw_schema)
    app.include_router(smartme.router)
    app.include_router(realtime.router)
    app.include_router(native.router)
    app.include_router(live_stream.router)
    app.include_router(dashboard.router)
    dashboard.mount_static(app)

    @app.exception_handler(HTTPException)
    async def _errors(request: Request, exc: HTTPException):
        if request.url.path.startswith("/dashboard") and exc.status_code in (401, 404):
            return dashboard.error_page(request, exc)
        # smart-me's error body is {"Message": ...}; the native API keeps FastAPI's "detail"
        key = "Message" if request.url.path.startswith("/api/") else "detail"
        return JSONResponse({key: exc.detail}, exc.status_code, headers=exc.headers)

    return app
