"""The dashboard: plain HTML pages whose scripts read the native API with the same key.

How the key gets there: the login form (``/dashboard/login``) or ``?key=`` on any
dashboard URL (what ``make demo`` prints) stores it in the ``vbatt_key`` cookie (HttpOnly,
SameSite=Strict) and redirects to the same URL without it, so the key leaves the address
bar. The pages' scripts then call ``/v1/...``, which accepts the cookie. No build step, no
asset from the internet: the charts are SVG drawn by ``static/charts.js``.
"""

from __future__ import annotations

import html
from pathlib import Path
from string import Template
from typing import Annotated

from fastapi import APIRouter, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Connection

from vbatt.api import portal
from vbatt.api.access import COOKIE, Conn, NotFound, key_from, lookup, marts
from vbatt.api.keys import Principal
from vbatt.api.security import check_origin

HERE = Path(__file__).parent
router = APIRouter(include_in_schema=False)


def _page(template: str, raw: dict[str, str] | None = None, **values: str) -> HTMLResponse:
    """A template with ``values`` escaped and ``raw`` (HTML built by us) as it is."""
    text = Template((HERE / "templates" / f"{template}.html").read_text())
    escaped = {k: html.escape(v) for k, v in values.items()}
    return HTMLResponse(
        text.substitute(escaped | (raw or {})), headers={"Cache-Control": "no-store"}
    )


def mount_static(app: FastAPI) -> None:
    app.mount("/dashboard/static", StaticFiles(directory=HERE / "static"), name="static")


def error_page(request: Request, exc: HTTPException) -> Response:
    page = _page("error", status=str(exc.status_code), message=str(exc.detail))
    page.status_code = exc.status_code
    return page


def _set_cookie(response: Response, request: Request, key: str) -> None:
    response.set_cookie(
        COOKIE,
        key,
        httponly=True,
        samesite="strict",
        # the cookie holds a key: sent over https only, except to a browser on this machine
        # (behind a TLS-terminating proxy the app itself sees plain http)
        secure=request.url.hostname not in ("127.0.0.1", "localhost", "testserver"),
        path="/",
    )


def _visitor(request: Request, conn: Connection) -> Principal | Response:
    """The principal of the cookie; or a redirect that stores ``?key=``, or to the login."""
    if "key" in request.query_params:
        key = request.query_params["key"]
        clean = str(request.url.remove_query_params("key"))
        if key and lookup(request, conn, key):
            response = RedirectResponse(clean, status_code=303)
            _set_cookie(response, request, key)
            return response
        return RedirectResponse("/dashboard/login?failed=1", status_code=303)
    key = key_from(request.headers.get("authorization"), request.cookies.get(COOKIE))
    who = lookup(request, conn, key) if key else None
    if who is None:
        return RedirectResponse("/dashboard/login", status_code=303)
    return who


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/dashboard", status_code=307)


@router.get("/dashboard/login")
def login_form(failed: str | None = None) -> HTMLResponse:
    note = "That key is not valid." if failed else ""
    return _page("login", note=note)


EMPTY_KEY = "Enter your API key to sign in."


@router.post("/dashboard/login")
def login(request: Request, conn: Conn, key: Annotated[str | None, Form()] = None) -> Response:
    """An empty (or missing) field shows the form again with a note (FastAPI's own answer
    would be a 422 in JSON, shown raw in the browser); a wrong key goes to ``?failed=1``."""
    check_origin(request)  # no signing in from another site's form (login CSRF)
    key = (key or "").strip()
    if not key:
        page = _page("login", note=EMPTY_KEY)
        page.status_code = 422
        return page
    if lookup(request, conn, key) is None:
        return RedirectResponse("/dashboard/login?failed=1", status_code=303)
    response = RedirectResponse("/dashboard", status_code=303)
    _set_cookie(response, request, key)
    return response


@router.get("/dashboard/logout")
def logout() -> Response:
    response = RedirectResponse("/dashboard/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/dashboard")
def partner_page(request: Request, conn: Conn) -> Response:
    who = _visitor(request, conn)
    if isinstance(who, Response):
        return who
    return _page("partner", {"portal": portal.partner_section(request, who)}, who=who.label)


@router.get("/dashboard/batteries/new")
def new_battery_page(request: Request, conn: Conn) -> Response:
    """The "Add battery" form (a key with the write scope)."""
    who = _visitor(request, conn)
    if isinstance(who, Response):
        return who
    if not who.can_write:
        raise HTTPException(403, "This key is read-only: it cannot add batteries.")
    return _page("battery_new", portal.new_battery_values(request, conn, who))


@router.get("/dashboard/batteries/{id}")
def battery_page(id: str, request: Request, conn: Conn) -> Response:  # noqa: A002
    who = _visitor(request, conn)
    if isinstance(who, Response):
        return who
    b = marts(request).battery(conn, who, id)
    if b is None:
        raise NotFound()
    return _page(
        "battery",
        {"portal": portal.battery_section(request, conn, who)},
        battery_id=b.battery_id,
        name=b.name,
        who=who.label,
        timezone=b.timezone,
    )
