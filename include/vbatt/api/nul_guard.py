"""NUL characters in a request's path or query string, refused once in front of routing.

PostgreSQL refuses NUL in text, so a NUL that reached a query (a battery id, a search, a
paging key) ended as a 500. No id, search or date of this API can hold one, so the request
is refused before any route sees it: **404** when the path holds one (no resource has such
a name; the dashboard shows its error page), **422** naming the query parameter when the
query string does. The body has the shape of the route family (``{"detail": ...}``,
smart-me's ``{"Message": ...}`` / ``{"message": ...}``). NUL inside JSON bodies is the
write API's business. The realtime receiver's ``FastPath`` sits in front of this
middleware, so its pushes pay nothing for the check.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from vbatt.api import dashboard, smartme

NUL_PATH = "The path contains a NUL character (%00); no resource has such a name."


def nul_parameter(query_string: bytes) -> str | None:
    """The name of the first query parameter whose name or value holds a NUL, or None."""
    if b"%00" not in query_string and b"\x00" not in query_string:
        return None
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "%00")
    return None  # "%00" inside an escape such as "%2500": no NUL after decoding


class RefuseNul:
    """ASGI middleware: 404 for a NUL in the path, 422 for a NUL in a query parameter;
    every other request goes on untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if "\x00" in scope["path"]:
                await _refuse(scope, receive, send, 404, NUL_PATH)
                return
            name = nul_parameter(scope.get("query_string", b""))
            if name is not None:
                message = (
                    f"The query parameter '{name}' contains a NUL character (%00);"
                    " send it without one."
                )
                await _refuse(scope, receive, send, 422, message)
                return
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
    path = scope["path"]
    if path.startswith("/dashboard"):  # a person's browser: the dashboard's error page
        response = dashboard.error_page(Request(scope), HTTPException(status, message))
    else:
        response = JSONResponse({smartme.error_key(path) or "detail": message}, status)
    await response(scope, receive, send)
