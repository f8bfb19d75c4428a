"""The live battery as the API serves it: the rule's inputs read from the warehouse.

The rule itself is ``live_rule.py``; this module reads what it needs: the ledger's anchor
(``battery_registers``: level, power and the end of the latest computed quarter hour),
the battery's terms (``battery_terms``: the one place that says which terms are in
force), the meters' newest realtime state (``raw.meter_live``) and their readings since
the anchor (every source, ``vbatt.warehouse.realtime.readings_in_spans``).

The live view engages only when a meter of the battery has a realtime value newer than
the ledger ("live data"); otherwise the ledger's own values stand, not provisional. That
keeps ``/api/Devices`` one query for the list plus, for the batteries whose meters did
push since the ledger ran, their terms (two queries) and readings (one query per widening
of the look-back), however many batteries the list has. A battery whose stored dates are
too extreme for the arithmetic (OverflowError) answers with the ledger's values and a log
line, so it cannot fail the whole list.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, text

from vbatt.api.live_rule import (
    MAX_AHEAD,
    QUARTER,
    Anchor,
    Frame,
    LiveLevel,
    MeterPower,
    Terms,
    advance,
    local_midnight,
)
from vbatt.api.models import Battery, Live, LiveStep
from vbatt.warehouse.migrate import check_schema_name
from vbatt.warehouse.realtime import latest_live, readings_in_spans
from vbatt.warehouse.versions import list_versions, list_versions_many

log = logging.getLogger("vbatt.api.live")

# No new value for this long: the dashboard says the value is stale (a push every second
# is the norm; polling alone brings a value every 15 minutes, the ledger one more later).
STALE_AFTER = timedelta(minutes=30)
# How far before the anchor to look for the reading that brackets it, widened in turn
LOOKBACK = (timedelta(minutes=5), timedelta(hours=2), timedelta(days=2), timedelta(days=40))
FUTURE_SLACK = timedelta(minutes=5)  # a meter's clock a little ahead of ours


def battery_terms(
    conn: Connection, battery_id: str, *, raw_schema: str = "raw"
) -> tuple[Terms, ...]:
    """The versions of the battery's terms in force (meter, capacity, resets from each
    valid_from): the one place the live view learns them (vbatt.warehouse.versions)."""
    return _terms(list_versions(conn, battery_id, raw_schema=raw_schema))


def batteries_terms(
    conn: Connection, battery_ids: Sequence[str], *, raw_schema: str = "raw"
) -> dict[str, tuple[Terms, ...]]:
    """:func:`battery_terms` of many batteries in two queries."""
    found = list_versions_many(conn, battery_ids, raw_schema=raw_schema)
    return {b: _terms(versions) for b, versions in found.items()}


def _terms(versions: list[dict]) -> tuple[Terms, ...]:
    return tuple(
        Terms(v["valid_from"], v["meter_id"], v["capacity_kwh"], v["reset_date"], v["reset_repeat"])
        for v in versions
    )


def _meters_ever(conn: Connection, battery_ids: Sequence[str], raw: str) -> dict[str, set[str]]:
    """Every meter a battery has or had in any version record: one query for a whole list,
    to see which batteries have live data at all before reading their versions."""
    out: dict[str, set[str]] = {}
    rows = conn.execute(
        text(
            f"select battery_id, meter_id from {raw}.batteries"
            " where battery_id = any(cast(:ids as text[]))"
            f" union select battery_id, meter_id from {raw}.battery_versions"
            " where battery_id = any(cast(:ids as text[]))"
        ),
        {"ids": list(battery_ids)},
    )
    for r in rows:
        out.setdefault(r.battery_id, set()).add(r.meter_id)
    return out


def anchor_of(b: Battery) -> Anchor:
    """Where the ledger stands (battery_registers: level is the initial level before any
    row)."""
    return Anchor(b.reading_at, b.level_kwh or 0.0, b.active_power_kw or 0.0)


def _readings(
    conn: Connection, wanted: set[tuple[str, datetime, datetime]], raw: str
) -> dict[tuple[str, datetime, datetime], list[tuple[datetime, float, float]]]:
    """For each (meter, since, until): the meter's readings from the last one at or before
    ``since`` up to ``until``; one query per widening of the look-back (LOOKBACK), for the
    spans whose bracketing reading is not found yet."""
    found: dict[tuple[str, datetime, datetime], list] = {}
    left = set(wanted)
    for back in LOOKBACK:
        if not left:
            break
        spans = {(m, since - back, until): (m, since, until) for m, since, until in left}
        for span, rows in readings_in_spans(conn, list(spans), raw_schema=raw).items():
            key = spans[span]
            found[key] = rows
            if rows and rows[0][0] <= key[1]:
                left.discard(key)
    return found


@dataclass(frozen=True)
class Now:
    """A battery's live state and the capacity in force at its time."""

    battery: Battery
    level: LiveLevel
    capacity_kwh: float
    computed_at: datetime

    @property
    def stale(self) -> bool:
        return self.level.at is None or self.computed_at - self.level.at > STALE_AFTER

    def wire(self) -> Live:
        """The shape of ``/v1`` and the SSE stream."""
        return Live(
            level_kwh=self.level.level_kwh,
            power_kw=self.level.power_kw,
            at=self.level.at,
            provisional=self.level.provisional,
            stale=self.stale,
            ledger_at=self.level.ledger_at,
            capacity_kwh=self.capacity_kwh,
            steps=[
                LiveStep(
                    interval_start=s.interval_start,
                    interval_end=s.interval_end,
                    import_kwh=s.import_kwh,
                    export_kwh=s.export_kwh,
                    charge_kwh=s.charge_kwh,
                    discharge_kwh=s.discharge_kwh,
                    level_kwh=s.level_kwh,
                    power_kw=(s.charge_kwh - s.discharge_kwh)
                    / ((s.interval_end - s.interval_start).total_seconds() / 3600),
                    partial=s.partial,
                )
                for s in self.level.steps
            ],
        )

    def as_battery(self) -> Battery:
        """The battery with the live level, power and time in place of the ledger's (what
        the smart-me endpoints serve)."""
        return self.battery.model_copy(
            update={
                "level_kwh": self.level.level_kwh,
                "active_power_kw": self.level.power_kw,
                "reading_at": self.level.at,
            }
        )


def live_states(
    conn: Connection,
    batteries: Sequence[Battery],
    *,
    raw_schema: str = "raw",
    now: datetime | None = None,
    terms_always: bool = False,
) -> dict[str, Now]:
    """The live state of each battery (see the module's docstring for when it engages).
    A battery's versions are read when it has live data (or ``terms_always``: the capacity
    in force matters to the one battery of /v1 and its stream, not to a list of Devices)."""
    raw = check_schema_name(raw_schema)
    now = now or datetime.now(UTC)
    meters = _meters_ever(conn, [b.battery_id for b in batteries], raw)
    pushed = latest_live(conn, sorted({m for ms in meters.values() for m in ms}), raw_schema=raw)
    since: dict[str, datetime] = {}
    engaged: set[str] = set()
    for b in batteries:
        try:
            at = anchor_of(b).at or local_midnight(b.start_date, b.timezone)
        except OverflowError:  # a stored start_date near year 1 or 9999
            continue  # no `since`: answered without live values below
        since[b.battery_id] = at
        newer = any(pushed[m].value_at > at for m in meters.get(b.battery_id, ()) if m in pushed)
        if newer and now - at <= MAX_AHEAD + QUARTER:
            engaged.add(b.battery_id)
    # the list's batteries together: their terms in two queries, their readings in one per
    # look-back width, not a few queries per battery
    terms = batteries_terms(
        conn,
        [b.battery_id for b in batteries if terms_always or b.battery_id in engaged],
        raw_schema=raw,
    )
    until = now + FUTURE_SLACK
    readings = _readings(
        conn,
        {(t.meter_id, since[b], until) for b in engaged if b in terms for t in terms[b]},
        raw,
    )
    out: dict[str, Now] = {}
    for b in batteries:
        anchor = anchor_of(b)
        versions = terms.get(b.battery_id)
        try:
            if b.battery_id not in since:
                raise OverflowError("its start_date is out of range")
            if b.battery_id in engaged and versions:
                frame = Frame(b.start_date, b.timezone, versions, b.end_date)
                own = {t.meter_id for t in versions}
                mine = {m: readings[(m, since[b.battery_id], until)] for m in own}
                power = {
                    m: MeterPower(pushed[m].value_at, pushed[m].power_kw)
                    for m in own
                    if m in pushed and pushed[m].power_kw is not None
                }
                level = advance(frame, anchor, mine, power)
            else:
                level = _ledger_level(anchor)
            capacity = b.capacity_kwh
            if versions:
                capacity = _in_force_capacity(versions, level.at or since[b.battery_id], b.timezone)
        except OverflowError as exc:
            # stored dates so extreme that the arithmetic leaves Python's datetime range
            # (rows from before the configured dates were bounded): this battery answers
            # with the ledger's values, the list's others as usual
            log.warning("battery %r answered without live values: %s", b.battery_id, exc)
            level, capacity = _ledger_level(anchor), b.capacity_kwh
        out[b.battery_id] = Now(b, level, capacity, now)
    return out


def _ledger_level(anchor: Anchor) -> LiveLevel:
    """The ledger's own values, not provisional (no live data)."""
    return LiveLevel(anchor.level_kwh, anchor.power_kw, anchor.at, False, anchor.at)


def _in_force_capacity(versions: tuple[Terms, ...], at: datetime, tz: str) -> float:
    current = versions[0]
    for v in sorted(versions, key=lambda v: v.valid_from):
        if local_midnight(v.valid_from, tz) <= at:
            current = v
    return current.capacity_kwh


def live_state(
    conn: Connection, battery: Battery, *, raw_schema: str = "raw", now: datetime | None = None
) -> Now:
    return live_states(conn, [battery], raw_schema=raw_schema, now=now, terms_always=True)[
        battery.battery_id
    ]


def battery_meters(conn: Connection, battery_id: str, *, raw_schema: str = "raw") -> set[str]:
    """Every meter of the battery's versions (what a live stream listens to)."""
    return {t.meter_id for t in battery_terms(conn, battery_id, raw_schema=raw_schema)}
