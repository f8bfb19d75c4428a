"""``GET /v1/batteries/{id}/live``: the battery's live state as Server-Sent Events.

Each event (``event: live``) carries the ``Live`` object of ``/v1/batteries/{id}`` as
JSON. A stream sends the state at once, then whenever it changes: the receiver's
transaction ends with ``pg_notify('vbatt_realtime', meter_id)``, one listening connection
per API process (``Listener``) wakes the streams of that meter, and every
``RECHECK_S`` seconds a stream recomputes anyway (the ledger catching up, a value turning
stale). A notification sent while nobody listens is lost, so a stream sends its first state
only once the listening connection is in place (waiting at most ``LISTEN_WAIT_S``), and
every (re)established LISTEN wakes all streams to recompute: a push that landed while the
connection was being (re)made still shows at once, not at the next recheck. A comment line
keeps idle connections open through proxies. The key is checked once, on a connection of
its own, before the stream starts; no pooled connection is held between events.
"""

from __future__ import annotations

import asyncio
import logging
import select
import threading
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from vbatt.api.access import NotFound, ShortWho, marts
from vbatt.api.live import battery_meters, live_state
from vbatt.api.models import Live
from vbatt.api.queries import Marts
from vbatt.warehouse.realtime import NOTIFY_CHANNEL

RECHECK_S = 10.0
KEEPALIVE_S = 15.0
LISTEN_WAIT_S = 5.0
log = logging.getLogger(__name__)
_APP_LOCK = threading.Lock()  # one Listener per app
router = APIRouter(prefix="/v1", tags=["batteries"])


class Listener:
    """One ``LISTEN vbatt_realtime`` connection per app, fanning notifications out to the
    streams of each meter (asyncio events set from the listening thread)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lock = threading.Lock()
        self.waiting: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = defaultdict(
            set
        )
        self.thread: threading.Thread | None = None
        self.stopping = threading.Event()
        self.listening = threading.Event()  # set while LISTEN is in force

    def subscribe(self, meters: set[str]) -> tuple[asyncio.AbstractEventLoop, asyncio.Event]:
        token = (asyncio.get_running_loop(), asyncio.Event())
        with self.lock:
            for m in meters:
                self.waiting[m].add(token)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="vbatt-live", daemon=True)
                self.thread.start()
        return token

    def unsubscribe(self, meters: set[str], token) -> None:
        with self.lock:
            for m in meters:
                self.waiting[m].discard(token)
                if not self.waiting[m]:
                    del self.waiting[m]

    def _idle(self) -> bool:
        """No stream left: the thread ends (a new stream starts another)."""
        with self.lock:
            if self.waiting and not self.stopping.is_set():
                return False
            self.thread = None
            return True

    def stop(self) -> None:
        self.stopping.set()

    def wait_listening(self, timeout: float) -> bool:
        """Block until notifications are being received (False after ``timeout``)."""
        return self.listening.wait(timeout)

    def _wake(self, meter: str | None) -> None:
        """Wake the streams of ``meter`` (None: every stream)."""
        with self.lock:
            if meter is None:
                tokens = set().union(*self.waiting.values())
            else:
                tokens = set(self.waiting.get(meter, ()))
        for loop, event in tokens:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the stream's loop is gone
                pass

    def _run(self) -> None:
        while not self._idle():
            try:
                self._listen()
            except Exception as exc:  # the database restarted: listen again shortly
                log.warning("live updates: listening connection lost (%s); retrying", exc)
                self.stopping.wait(1.0)

    def _listen(self) -> None:
        raw = self.engine.raw_connection()
        try:
            dbapi = raw.driver_connection
            dbapi.autocommit = True
            with dbapi.cursor() as cur:
                # LISTEN is refused in a read-only transaction; this session only listens
                cur.execute("set default_transaction_read_only = off")
                cur.execute(f"listen {NOTIFY_CHANNEL}")
            self.listening.set()
            self._wake(None)  # anything committed before LISTEN took effect is seen now
            while self.waiting and not self.stopping.is_set():
                if select.select([dbapi], [], [], 1.0)[0]:
                    dbapi.poll()
                    while dbapi.notifies:
                        self._wake(dbapi.notifies.pop(0).payload)
        finally:
            self.listening.clear()
            raw.invalidate()  # never back into the pool with LISTEN and read-write on


def listener(request: Request) -> Listener:
    state = request.app.state
    with _APP_LOCK:
        if getattr(state, "live_listener", None) is None:
            state.live_listener = Listener(marts(request).engine)
    return state.live_listener


def _current(m: Marts, who, battery_id: str) -> Live | None:
    with m.connect() as conn:
        b = m.battery(conn, who, battery_id)
        if b is None:
            return None
        return live_state(conn, b, raw_schema=m.raw).wire()


async def _events(
    request: Request, m: Marts, who, battery_id: str, meters: set[str], limit: int | None
) -> AsyncIterator[str]:
    hub = listener(request)
    token = hub.subscribe(meters)
    _, wake = token
    sent, last, quiet = 0, None, 0.0
    try:
        # no first state before LISTEN is in force, else a change right after it is missed
        if not await run_in_threadpool(hub.wait_listening, LISTEN_WAIT_S):
            log.warning("live updates: not listening yet; the stream rechecks every %ss", RECHECK_S)
        yield f"retry: {int(RECHECK_S * 1000)}\n\n"
        while True:
            wake.clear()
            live = await run_in_threadpool(_current, m, who, battery_id)
            if live is None:  # the battery went away or the key's scope changed
                return
            body = live.model_dump_json()
            if body != last:
                yield f"event: live\ndata: {body}\n\n"
                sent, last, quiet = sent + 1, body, 0.0
                if limit is not None and sent >= limit:
                    return
            elif quiet >= KEEPALIVE_S:
                yield ": keep-alive\n\n"
                quiet = 0.0
            try:
                await asyncio.wait_for(wake.wait(), RECHECK_S)
            except TimeoutError:
                quiet += RECHECK_S
    finally:
        hub.unsubscribe(meters, token)


@router.get(
    "/batteries/{id}/live",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "events `live`: a Live"},
        404: {},
    },
    response_class=StreamingResponse,
)
async def live_stream(
    id: str,  # noqa: A002
    request: Request,
    who: ShortWho,
    events: Annotated[
        int | None, Query(ge=1, description="close the stream after this many events")
    ] = None,
) -> StreamingResponse:
    """The battery's live state (level, power, provisional, stale, time) as it changes."""
    m = marts(request)

    def check() -> set[str] | None:
        with m.connect() as conn:
            if m.visible(conn, who, id) is None:
                return None
            return battery_meters(conn, id, raw_schema=m.raw)

    meters = await run_in_threadpool(check)
    if meters is None:
        raise NotFound()
    return StreamingResponse(
        _events(request, m, who, id, meters, events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
