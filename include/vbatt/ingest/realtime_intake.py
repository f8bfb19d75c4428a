"""From decoded Realtime API items to durable rows: validation, and the batching writer.

The receiver answers 2xx only once a push is durable, and quickly (smart-me retries slow
receivers). Requests therefore hand their values to one ``RealtimeWriter`` per process
and await it: while a batch is being committed, the next requests queue up and go
together in the next transaction (group commit), so the cost per push stays small at a
thousand pushes a second and no request waits for more than about two commits. One
transaction is in flight per process; a batch lingers 2 ms before it goes, so a few more
requests join it (at 1,000 pushes/s on two workers: about 3.7 pushes per transaction
instead of 3.1, and less CPU in PostgreSQL and the server; benchmarks/realtime.py).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from vbatt.ingest.realtime_pb import PushedItem
from vbatt.readings import Rejected
from vbatt.smartme_schema import OBIS_EXPORT, OBIS_IMPORT, OBIS_POWER
from vbatt.warehouse.realtime import IntakeCounts, PushedValue, known_meters, store_batch

log = logging.getLogger("vbatt.realtime")

IMPORT = OBIS_IMPORT.removesuffix("*255")
EXPORT = OBIS_EXPORT.removesuffix("*255")
POWER = OBIS_POWER.removesuffix("*255")
WHERE = "POST /smartme/realtime"
FUTURE_SLACK = timedelta(days=1)  # a clock a little ahead is fine; a day is not a reading


def _energy_problem(code: str, value: float) -> str | None:
    if not math.isfinite(value):
        return f"register {code} is not finite: {value!r}"
    if value < 0:
        return f"register {code} is negative: {value!r}"
    return None


def to_values(
    items: Sequence[PushedItem], known: dict[str, str], *, now: datetime | None = None
) -> tuple[list[PushedValue], list[Rejected], IntakeCounts]:
    """Items -> values of known meters, values refused (with the reason), and the counts
    (the refused ones are counted when they are stored: append_values).

    Unknown devices and OBIS codes the product does not use are counted and dropped; an
    item whose time is not a reading time, or a register that is negative or not finite,
    goes to the quarantine (``raw.rejected_readings``) with the rest of the item kept.
    """
    now = now or datetime.now(UTC)
    counts = IntakeCounts(bodies=1, items=len(items))
    values: list[PushedValue] = []
    rejected: list[Rejected] = []
    for item in items:
        meter_id = known.get(item.device_id)
        if meter_id is None:
            counts.unknown_devices += 1
            continue
        if item.bad_obis:
            rejected.append(Rejected(meter_id, item.record, "an Obis code is not 6 bytes", WHERE))
        problem = item.time_problem
        if problem is None and item.value_at > now + FUTURE_SLACK:
            problem = f"DateTime {item.value_at.isoformat()} is more than a day in the future"
        if problem is None and item.value_at.year in (1, 9999):
            problem = "DateTime is .NET's MinValue or MaxValue, not a reading time"
        if problem is not None:
            rejected.append(Rejected(meter_id, item.record, problem, WHERE))
            continue
        registers: dict[str, float] = {}
        for code, value in item.values:
            if code not in (IMPORT, EXPORT, POWER):
                counts.unused_values += 1
                continue
            if code in registers:  # the first of a repeated code counts, as on the REST path
                counts.unused_values += 1
                continue
            bad = (
                _energy_problem(code, value)
                if code != POWER
                else (None if math.isfinite(value) else f"register {code} is not finite")
            )
            if bad:
                rejected.append(Rejected(meter_id, item.record, bad, WHERE))
                continue
            registers[code] = value
        if not registers:
            continue
        values.append(
            PushedValue(
                meter_id,
                item.value_at,
                registers.get(IMPORT),
                registers.get(EXPORT),
                registers.get(POWER),
            )
        )
    return values, rejected, counts


@dataclass
class _Pending:
    values: list[PushedValue]
    rejected: list[Rejected]
    counts: IntakeCounts
    done: asyncio.Future


@dataclass
class RealtimeWriter:
    """One per process and event loop: batches the requests' values into transactions."""

    engine: Engine
    raw_schema: str = "raw"
    known_ttl_s: float = 30.0  # how long the list of known meters is trusted
    unknown_retry_s: float = 2.0  # an unknown device re-reads it at most this often
    linger_s: float = 0.002  # a batch waits this long for company: fewer, larger commits
    _pending: list[_Pending] = field(default_factory=list)
    _wake: asyncio.Event | None = None
    _task: asyncio.Task | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _known: dict[str, str] = field(default_factory=dict)
    _known_at: float = -math.inf
    _known_lock: asyncio.Lock | None = None
    _known_lock_loop: asyncio.AbstractEventLoop | None = None
    _refresh: asyncio.Task | None = None

    async def known(self, device_ids: Sequence[str]) -> dict[str, str]:
        """Lower-case device id -> the meter id of a battery (refreshed when stale).

        The common case (a list that has every device) answers without the lock; a stale
        list is refreshed in the background meanwhile, so no push waits for the query. A
        device not in the list waits for a fresh one (at most every unknown_retry_s)."""
        age = time.monotonic() - self._known_at
        if all(d in self._known for d in device_ids):
            loop = asyncio.get_running_loop()
            refreshing = self._refresh is not None and not self._refresh.done()
            if age > self.known_ttl_s and not (refreshing and self._refresh.get_loop() is loop):
                self._refresh = loop.create_task(self._refresh_known())
            return self._known
        if self._known_lock_loop is not asyncio.get_running_loop():
            self._known_lock, self._known_lock_loop = asyncio.Lock(), asyncio.get_running_loop()
        async with self._known_lock:  # one refresh at a time; the others wait for its result
            age = time.monotonic() - self._known_at
            missing = any(d not in self._known for d in device_ids)
            if age > self.known_ttl_s or (missing and age > self.unknown_retry_s):
                self._known = await asyncio.to_thread(self._read_known)
                self._known_at = time.monotonic()
        return self._known

    async def _refresh_known(self) -> None:
        try:
            known = await asyncio.to_thread(self._read_known)
        except Exception:  # the next stale call tries again; the list in hand stays
            log.exception("realtime: the list of known meters was not refreshed")
            return
        self._known, self._known_at = known, time.monotonic()

    def _read_known(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            return known_meters(conn, raw_schema=self.raw_schema)

    async def write(
        self, values: list[PushedValue], rejected: list[Rejected], counts: IntakeCounts
    ) -> None:
        """Return once the values are committed (raise if the transaction failed)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (tests): a flusher of its own
            self._loop, self._wake, self._task, self._pending = loop, asyncio.Event(), None, []
        pending = _Pending(values, rejected, counts, loop.create_future())
        self._pending.append(pending)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())
        await pending.done

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if self.linger_s:  # a moment for more requests to join the batch
                await asyncio.sleep(self.linger_s)
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            values = [v for p in batch for v in p.values]
            rejected = [r for p in batch for r in p.rejected]
            counts = IntakeCounts()
            for p in batch:
                counts.add(p.counts)
            try:
                await asyncio.to_thread(
                    store_batch,
                    self.engine,
                    values,
                    rejected=rejected,
                    counts=counts,
                    raw_schema=self.raw_schema,
                )
            except Exception as exc:  # every request of the batch answers 503, smart-me retries
                log.exception("realtime batch of %d pushes not stored", len(batch))
                for p in batch:
                    if not p.done.done():
                        p.done.set_exception(exc)
            else:
                for p in batch:
                    if not p.done.done():
                        p.done.set_result(None)
