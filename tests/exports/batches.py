"""Hand-made export batches for the format tests, computed with the test oracle.

The interval rows come from ``tests/oracle.py`` (the rule book in plain Python) over a
deterministic, irregular load pattern, so the batteries charge, overflow, discharge and
fall short, and every row obeys the ledger invariants, as the warehouse's rows do.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from tests import oracle
from vbatt.exports import period
from vbatt.exports.channels import channels_for
from vbatt.exports.model import (
    BatteryExport,
    ExportBatch,
    IntervalRow,
    Party,
    Period,
    Registers,
    RenderContext,
)

QUARTER = timedelta(minutes=15)
ZURICH = "Europe/Zurich"
SENDER = Party("12X-0000001216-O", "305", "Netz Beispiel AG")
RECEIVER = Party("12X-LIPPUNEREM-T", "305", "Abrechnung Beispiel")
CONTEXT = RenderContext(reference="VB000042", created_at=datetime(2025, 11, 2, 5, 30, tzinfo=UTC))


def day_period(day: date, timezone: str = ZURICH) -> Period:
    return period.day_period(day, timezone)


def month_period(year: int, month: int, timezone: str = ZURICH) -> Period:
    return period.month_period(year, month, timezone)


def metering_point(n: int) -> str:
    """A 33-character Swiss metering point id: CH, DSO 100790, postcode 12345, 20 digits."""
    return f"CH10079012345{n:020d}"


def _meter_intervals(meter_id: str, start: datetime, end: datetime, seed: int, estimate_every: int):
    """Night import, midday export with clouds: enough to fill, overflow and empty a battery."""
    rng = random.Random(seed)
    intervals = []
    t = start
    n = 0
    while t < end:
        hour = t.astimezone(ZoneInfo(ZURICH)).hour + t.minute / 60
        sun = max(0.0, math.sin((hour - 6) / 14 * math.pi)) if 6 <= hour <= 20 else 0.0
        export = round(sun * rng.uniform(0.2, 1.6), 7)
        imported = round(rng.uniform(0.02, 0.45) * (0.3 if sun > 0.5 else 1.0), 7)
        estimated = estimate_every > 0 and n % estimate_every == 5
        intervals.append(oracle.OracleInterval(meter_id, t, imported, export, estimated))
        t += QUARTER
        n += 1
    return intervals


def _registers(rows, at: datetime) -> Registers:
    done = [r for r in rows if r.interval_start < at]
    return Registers(
        at=at,
        level=done[-1].level if done else 0.0,
        charged_total=math.fsum(r.charge for r in done),
        discharged_total=math.fsum(r.discharge for r in done),
        overflow_total=math.fsum(r.overflow for r in done),
        shortfall_total=math.fsum(r.shortfall for r in done),
        forfeited_total=math.fsum(r.forfeited for r in done),
    )


def battery(
    n: int,
    period: Period,
    *,
    capacity: float = 5.0,
    history_days: int = 3,
    estimate_every: int = 37,
):
    """Battery ``B<n>`` started ``history_days`` before the period, rows until the period's end."""
    spec = oracle.Battery(
        battery_id=f"B{n}",
        meter_id=f"M{n}",
        capacity_kwh=capacity,
        start_date=period.first_day - timedelta(days=history_days),
        timezone=ZURICH,
        name=f"Batterie {n} Müller",
    )
    start = oracle.start_instant(spec)
    rows = oracle.ledger(
        spec, _meter_intervals(spec.meter_id, start, period.end_utc, 1000 + n, estimate_every)
    )
    inside = [r for r in rows if period.start_utc <= r.interval_start < period.end_utc]
    last_end = inside[-1].interval_start + QUARTER if inside else period.start_utc
    return (
        BatteryExport(
            battery_id=spec.battery_id,
            metering_point=metering_point(n),
            name=spec.name,
            customer_id=f"C{n}",
            meter_id=spec.meter_id,
            timezone=ZURICH,
            capacity_kwh=capacity,
            intervals=tuple(
                IntervalRow(
                    start=r.interval_start,
                    end=r.interval_start + QUARTER,
                    import_kwh=r.import_kwh,
                    export_kwh=r.export_kwh,
                    charge=r.charge,
                    discharge=r.discharge,
                    overflow=r.overflow,
                    shortfall=r.shortfall,
                    forfeited=r.forfeited,
                    level=r.level,
                    estimated=r.estimated,
                )
                for r in inside
            ),
            registers_start=_registers(rows, period.start_utc),
            registers_end=_registers(rows, last_end),
        ),
        spec,
        rows,
    )


def batch(period: Period, count: int = 2, **kwargs) -> ExportBatch:
    batteries = tuple(battery(n, period, **kwargs)[0] for n in range(1, count + 1))
    return ExportBatch(
        partner_id="ewb",
        partner_name="EW Beispiel",
        sender=SENDER,
        receiver=RECEIVER,
        period=period,
        batteries=batteries,
        channels=channels_for(),
    )


SUMMER_DAY = date(2025, 6, 1)  # 96 quarter hours
SPRING_DAY = date(2025, 3, 30)  # 92: clocks go forward
AUTUMN_DAY = date(2025, 10, 26)  # 100: 02:00-03:00 twice
