"""What a page with write forms needs: headers on every answer, CSRF tokens for the
dashboard's cookie, and wrong keys slowed down per client.

* Headers: a Content-Security-Policy that lets a page run only the app's own script files
  (no inline script, nothing from elsewhere) and never be framed, ``nosniff`` and no
  Referer to other sites (a dashboard URL may carry ``?key=`` before its redirect).
* CSRF: the cookie is SameSite=Strict already; on top of that a write authenticated by the
  cookie (no Authorization header) must carry ``X-CSRF-Token``, an HMAC of the key that only
  a page rendered for that key holds, and a foreign ``Origin`` is refused. A program sending
  its key in the header is not exposed to CSRF and needs no token.
* Wrong keys: keys are 256-bit random values, so guessing is hopeless; still, a client that
  keeps sending wrong keys is made to wait (429 with Retry-After, doubling per further miss)
  instead of being answered at full speed. Counted per client address within a window.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections import deque
from collections.abc import Callable

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self';"
        " frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # nothing to other sites; same-origin (not no-referrer) so that a form's POST carries its
    # real Origin (with no-referrer browsers send "Origin: null", indistinguishable from a
    # sandboxed foreign page)
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
}


class SecurityHeaders:
    """ASGI middleware: the headers above on every HTTP answer (pages, API, static files)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._raw = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in self._raw if k not in present
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


def csrf_token(key: str) -> str:
    """The token a page rendered for ``key`` carries: HMAC-SHA256 of a fixed label under the
    key, so it proves knowledge of the key without revealing it (and survives restarts)."""
    return hmac.new(key.encode(), b"vbatt-csrf", hashlib.sha256).hexdigest()


def check_origin(request: Request) -> None:
    """403 for a browser's request sent from a page of another origin."""
    origin = request.headers.get("origin")
    if origin and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise HTTPException(403, "Cross-origin write refused.")


def check_csrf(request: Request, key: str, from_cookie: bool) -> None:
    """403 for a cookie-authenticated write without the page's token or from another origin."""
    if not from_cookie or request.method not in UNSAFE_METHODS:
        return
    check_origin(request)
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent, csrf_token(key)):
        raise HTTPException(
            403,
            f"A write with the dashboard's cookie needs the page's {CSRF_HEADER} header;"
            " reload the page.",
        )


class KeyThrottle:
    """Wrong keys per client: ``free`` misses within ``window_s`` pass at full speed; after
    that each further attempt must wait 2, 4, 8, ... seconds (at most ``max_wait_s``) after
    the last miss, and an attempt inside the wait is answered 429 without looking at its
    key. A right key does not clear the record (else a partner with a key of its own could
    interleave guesses at another's)."""

    def __init__(
        self,
        free: int = 10,
        window_s: float = 600.0,
        max_wait_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free, self.window_s, self.max_wait_s, self.clock = free, window_s, max_wait_s, clock
        self._misses: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        misses = self._misses.get(client, deque())
        while misses and misses[0] <= now - self.window_s:
            misses.popleft()
        if not misses:
            self._misses.pop(client, None)
        return misses

    def wait(self, client: str) -> float:
        """Seconds ``client`` must still wait before its key is looked at (0: go ahead)."""
        with self._lock:
            now = self.clock()
            misses = self._recent(client, now)
            over = len(misses) - self.free
            if over <= 0:
                return 0.0
            return max(0.0, misses[-1] + min(2.0**over, self.max_wait_s) - now)

    def miss(self, client: str) -> None:
        with self._lock:
            now = self.clock()
            misses = self._recent(client, now)
            misses.append(now)
            self._misses[client] = misses

    def check(self, request: Request) -> None:
        """429 with Retry-After while the client must wait."""
        left = self.wait(client_of(request))
        if left > 0:
            raise HTTPException(
                429,
                "Too many wrong API keys from this address; try again later.",
                headers={"Retry-After": str(math.ceil(left))},
            )


def client_of(request: Request) -> str:
    """The client's address (behind a proxy: run uvicorn with --forwarded-allow-ips)."""
    return request.client.host if request.client else "unknown"
