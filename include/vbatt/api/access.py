"""Who is asking, per request: an API key from the header or the dashboard's cookie.

Programs send ``Authorization: ApiKey <key>`` (smart-me's own scheme, so a smart-me client
works unchanged) or ``Authorization: Bearer <key>``. The dashboard keeps the key in an
HttpOnly, SameSite=Strict cookie set by its login form or by ``?key=`` on a dashboard URL
(see ``dashboard.py``). No key or an unknown key: 401. A battery the key may not see is
answered exactly like one that does not exist: 404, never 403.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyCookie, APIKeyHeader
from sqlalchemy import Connection

from vbatt.api.keys import Principal
from vbatt.api.queries import Marts
from vbatt.api.security import KeyThrottle, check_csrf, client_of

COOKIE = "vbatt_key"

_header = APIKeyHeader(
    name="Authorization",
    auto_error=False,
    scheme_name="apiKey",
    description='"ApiKey <key>" (as smart-me) or "Bearer <key>"; keys: `vbatt keys create`',
)
_cookie = APIKeyCookie(
    name=COOKIE, auto_error=False, scheme_name="cookie", description="set by the dashboard"
)


class NotFound(HTTPException):
    def __init__(self, what: str = "battery") -> None:
        super().__init__(404, f"No {what} with this id found.")


def marts(request: Request) -> Marts:
    return request.app.state.marts


def connection(request: Request) -> Iterator[Connection]:
    with marts(request).connect() as conn:
        yield conn


def key_from(header: str | None, cookie: str | None) -> str | None:
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() in ("apikey", "bearer") and value.strip():
            return value.strip()
        return None
    return cookie or None


def throttle(request: Request) -> KeyThrottle:
    return request.app.state.key_throttle


def lookup(request: Request, conn: Connection, key: str) -> Principal | None:
    """The key's principal; a wrong key counts against the client (429 once it must wait)."""
    slow = throttle(request)
    slow.check(request)
    who = marts(request).principal(conn, key)
    if who is None:
        slow.miss(client_of(request))
    return who


def principal(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    header: Annotated[str | None, Depends(_header)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> Principal:
    key = key_from(header, cookie)
    who = lookup(request, conn, key) if key else None
    if who is None:
        raise HTTPException(
            401,
            "A valid API key is required: Authorization: ApiKey <key>",
            headers={"WWW-Authenticate": "ApiKey, Bearer"},
        )
    check_csrf(request, key, from_cookie=not header)
    return who


def principal_now(
    request: Request,
    header: Annotated[str | None, Depends(_header)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> Principal:
    """``principal`` on a connection of its own, closed at once: a stream must not hold a
    pooled connection for its whole life."""
    with marts(request).connect() as conn:
        return principal(request, conn, header, cookie)


Conn = Annotated[Connection, Depends(connection)]
Who = Annotated[Principal, Depends(principal)]
ShortWho = Annotated[Principal, Depends(principal_now)]
Warehouse = Annotated[Marts, Depends(marts)]


def visible_timezone(m: Marts, conn: Connection, who: Principal, battery_id: str) -> str:
    """The battery's timezone, or 404 when ``who`` may not see it (or it does not exist)."""
    tz = m.visible(conn, who, battery_id)
    if tz is None:
        raise NotFound()
    return tz
