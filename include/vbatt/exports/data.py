"""Read a partner's period from the warehouse marts into an ExportBatch.

One query for the intervals, one for the registers before the period; every format
renders the result, so a CSV and an MSCONS file of the same period can never disagree.
Sums before the period come from ``battery_daily`` when the battery keeps the partner's
timezone (its days then tile the time before the period exactly) and from the intervals
otherwise, so registers are exact whatever the timezones.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from vbatt.exports.model import BatteryExport, ExportBatch, IntervalRow, Period, Registers
from vbatt.exports.partners import PartnerConfig

_TOTALS = ("charge", "discharge", "overflow", "shortfall", "forfeited")


# a battery version's field in force on :last_day (raw.batteries holds the newest version's)
_IN_FORCE = (
    "select v.{field} from {raw}.battery_versions v"
    " where v.battery_id = batteries.battery_id and v.valid_from <= :last_day"
    " order by v.valid_from desc, v.record_id desc limit 1"
)


class ExportDataError(ValueError):
    """The warehouse cannot give what the partner's configuration asks for."""


def read_batch(
    engine: Engine,
    partner: PartnerConfig,
    period: Period,
    schema: str = "analytics",
    raw_schema: str = "raw",
) -> ExportBatch:
    marts = f"{schema}_marts"
    params = {
        "partner": partner.partner_id,
        "start": period.start_utc,
        "end": period.end_utc,
        "first_day": period.first_day,
        "last_day": period.last_day,
        "tz": period.timezone,
    }
    with engine.begin() as conn:
        batteries = [
            dict(r._mapping)
            for r in conn.execute(
                text(
                    f"select battery_id, name, partner_id, customer_id, timezone,"
                    # the meter and capacity of the version in force on the period's last day
                    f" coalesce(({_IN_FORCE.format(raw=raw_schema, field='meter_id')}), meter_id)"
                    f" as meter_id,"
                    f" coalesce(({_IN_FORCE.format(raw=raw_schema, field='capacity_kwh')}),"
                    f" capacity_kwh) as capacity_kwh,"
                    f" initial_level_kwh, start_date < cast(:end as timestamptz) at time zone timezone"
                    f" and (end_date is null or end_date > :first_day) as active"
                    f" from {raw_schema}.batteries where partner_id = :partner or battery_id = any(:listed)"
                    f" order by battery_id"
                ),
                {**params, "listed": sorted(partner.batteries or ())},
            )
        ]
        if partner.batteries is not None:
            found = {b["battery_id"]: b["partner_id"] for b in batteries}
            missing = sorted(set(partner.batteries) - set(found))
            foreign = sorted(
                b
                for b in partner.batteries
                if found.get(b, partner.partner_id) != partner.partner_id
            )
            if missing or foreign:
                problems = [f"unknown to the warehouse: {', '.join(missing)}"] if missing else []
                problems += [f"belong to another partner: {', '.join(foreign)}"] if foreign else []
                raise ExportDataError(
                    f"partners/{partner.partner_id}.yaml lists batteries that are not its own ("
                    + "; ".join(problems)
                    + "); fix the YAML or raw.batteries (vbatt batteries FILE)"
                )
            batteries = [b for b in batteries if b["battery_id"] in partner.batteries]
        # a battery that ended before the period, or starts after it, has nothing to export
        batteries = [b for b in batteries if b["active"] and b["partner_id"] == partner.partner_id]
        ids = [b["battery_id"] for b in batteries]
        params["ids"] = ids
        intervals = _intervals(conn, marts, params)
        before = _registers_before(conn, marts, raw_schema, params)
    exports = []
    for b in batteries:
        rows = intervals.get(b["battery_id"], [])
        sums, level = before.get(b["battery_id"], ({k: 0.0 for k in _TOTALS}, None))
        start = Registers(
            period.start_utc,
            level if level is not None else b["initial_level_kwh"],
            sums["charge"],
            sums["discharge"],
            sums["overflow"],
            sums["shortfall"],
            sums["forfeited"],
        )
        exports.append(
            BatteryExport(
                battery_id=b["battery_id"],
                metering_point=partner.metering_point(b["battery_id"]),
                name=b["name"],
                customer_id=b["customer_id"],
                meter_id=b["meter_id"],
                timezone=b["timezone"],
                capacity_kwh=b["capacity_kwh"],
                intervals=tuple(rows),
                registers_start=start,
                registers_end=_advance(start, rows),
            )
        )
    return ExportBatch(
        partner_id=partner.partner_id,
        partner_name=partner.name,
        sender=partner.sender.party(),
        receiver=partner.receiver.party(),
        period=period,
        batteries=tuple(exports),
        channels=partner.channel_list(),
    )


def _intervals(conn, marts: str, params: dict) -> dict[str, list[IntervalRow]]:
    """The period's quarter hours per battery, through the DBAPI cursor: a day of 10,000
    batteries is a million rows, and per-row attribute lookups or timestamp parsing would
    dominate the export. Instants arrive as epoch seconds and become one shared datetime
    per quarter hour of the period."""
    out: dict[str, list[IntervalRow]] = defaultdict(list)
    instants: dict[int, datetime] = {}

    def instant(epoch: int) -> datetime:
        found = instants.get(epoch)
        if found is None:
            found = instants[epoch] = datetime.fromtimestamp(epoch, UTC)
        return found

    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(
            f"select battery_id, extract(epoch from interval_start)::bigint,"
            f" extract(epoch from interval_end)::bigint, import_kwh, export_kwh, charge_kwh,"
            f" discharge_kwh, overflow_kwh, shortfall_kwh, forfeited_kwh, level_kwh, estimated"
            f" from {marts}.battery_intervals where battery_id = any(%(ids)s)"
            f" and interval_start >= %(start)s and interval_start < %(end)s"
            f" order by battery_id, interval_start",
            params,
        )
        while chunk := cursor.fetchmany(50_000):
            for battery_id, start, end, *values in chunk:
                out[battery_id].append(IntervalRow(instant(start), instant(end), *values))
    finally:
        cursor.close()
    return out


def _advance(start: Registers, rows: list[IntervalRow]) -> Registers:
    """Registers after the period's intervals: a running sum in interval order, like the ledger's."""
    if not rows:
        return start
    c, d, o, s, f = (
        start.charged_total,
        start.discharged_total,
        start.overflow_total,
        start.shortfall_total,
        start.forfeited_total,
    )
    for r in rows:
        c, d, o, s, f = (
            c + r.charge,
            d + r.discharge,
            o + r.overflow,
            s + r.shortfall,
            f + r.forfeited,
        )
    return Registers(rows[-1].end, rows[-1].level, c, d, o, s, f)


def _registers_before(
    conn, marts: str, raw_schema: str, params: dict
) -> dict[str, tuple[dict[str, float], float | None]]:
    """Totals since each battery's start up to the period, and the level at its start."""
    daily = ", ".join(f"coalesce(sum({k}_kwh order by local_date), 0) as {k}" for k in _TOTALS)
    by_interval = ", ".join(
        f"coalesce(sum({k}_kwh order by interval_start), 0) as {k}" for k in _TOTALS
    )
    rows = conn.execute(
        text(
            f"with b as (select battery_id, timezone = :tz as same_tz from {raw_schema}.batteries"
            f"   where battery_id = any(:ids))"
            f" select b.battery_id, s.*, last.level_kwh as level from b"
            f" cross join lateral ("
            f"   select {daily} from {marts}.battery_daily d"
            f"   where b.same_tz and d.battery_id = b.battery_id and d.local_date < :first_day"
            f"   union all"
            f"   select {by_interval} from {marts}.battery_intervals i"
            f"   where not b.same_tz and i.battery_id = b.battery_id and i.interval_start < :start"
            f" ) s"
            f" left join lateral ("
            f"   select level_kwh from {marts}.battery_intervals i"
            f"   where i.battery_id = b.battery_id and i.interval_start < :start"
            f"   order by i.interval_start desc limit 1"
            f" ) last on true"
        ),
        params,
    )
    out: dict[str, tuple[dict[str, float], float | None]] = {}
    for r in rows:
        # one row per branch of the union; the branch not taken sums nothing (all zeros)
        sums = {k: r._mapping[k] for k in _TOTALS}
        if r.battery_id in out:
            sums = {k: out[r.battery_id][0][k] + sums[k] for k in _TOTALS}
        out[r.battery_id] = (sums, r.level)
    return out
