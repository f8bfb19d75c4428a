"""The native API's shapes (``/v1``). Field names are the marts' column names, and the SQL
selects exactly these fields, so a model is the one place that says what a row carries
(JSON, CSV header and OpenAPI schema alike)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, create_model


class _Row(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Battery(_Row):
    """A battery as a meter (battery_registers) with its configuration (raw.batteries)."""

    battery_id: str
    name: str
    partner_id: str
    customer_id: str
    meter_id: str
    capacity_kwh: float
    timezone: str
    start_date: date
    end_date: date | None
    level_kwh: float | None
    charged_total_kwh: float | None
    discharged_total_kwh: float | None
    overflow_total_kwh: float | None
    shortfall_total_kwh: float | None
    forfeited_total_kwh: float | None
    active_power_kw: float | None
    reading_at: datetime | None
    intervals: int | None
    estimated_intervals: int | None


class Interval(_Row):
    """One quarter hour of battery_intervals."""

    interval_start: datetime
    interval_end: datetime
    import_kwh: float
    export_kwh: float
    net_kwh: float
    charge_kwh: float
    discharge_kwh: float
    overflow_kwh: float
    shortfall_kwh: float
    forfeited_kwh: float
    level_kwh: float
    power_kw: float
    estimated: bool
    period_start: datetime


class Day(_Row):
    """One local day of battery_daily."""

    local_date: date
    import_kwh: float
    export_kwh: float
    charge_kwh: float
    discharge_kwh: float
    overflow_kwh: float
    shortfall_kwh: float
    forfeited_kwh: float
    level_end_kwh: float
    level_min_kwh: float
    level_max_kwh: float
    intervals: int
    estimated_intervals: int
    expected_intervals: int


class Settlement(_Row):
    """One settlement period of settlement_periods."""

    period_start: datetime
    period_end: datetime | None
    first_local_date: date
    last_local_date: date
    import_kwh: float
    export_kwh: float
    charge_kwh: float
    discharge_kwh: float
    overflow_kwh: float
    shortfall_kwh: float
    forfeited_kwh: float
    level_end_kwh: float
    intervals: int
    estimated_intervals: int
    is_closed: bool


# a settlement period of one of the key's batteries (the fleet's billing CSV): battery_id
# first, then the columns of Settlement
BatterySettlement = create_model(
    "BatterySettlement",
    __base__=_Row,
    battery_id=(str, ...),
    **{name: (f.annotation, ...) for name, f in Settlement.model_fields.items()},
)


class FleetTotals(BaseModel):
    """The current settlement periods (each battery's latest) summed over the batteries."""

    periods: int
    charge_kwh: float
    discharge_kwh: float
    overflow_kwh: float
    shortfall_kwh: float
    forfeited_kwh: float


class Fleet(BaseModel):
    """The key's batteries at a glance: how many, energy stored now, current periods."""

    batteries: int
    active_batteries: int  # no end_date, or one after today in the battery's timezone
    level_kwh: float  # stored now: the latest level of every battery, summed
    current_periods: FleetTotals


class BatterySettlementPage(BaseModel):
    items: list[BatterySettlement]
    next: str | None


class SeriesPoint(_Row):
    """A chart bucket: sums of energy, mean power, level at the bucket's end."""

    t: datetime
    import_kwh: float
    export_kwh: float
    charge_kwh: float
    discharge_kwh: float
    power_kw: float
    level_kwh: float
    intervals: int
    estimated_intervals: int


Period = Literal["day", "week", "month", "year"]


class Series(BaseModel):
    battery_id: str
    period: Period
    first_date: date  # local dates of the battery's timezone, inclusive
    last_date: date
    start: datetime
    end: datetime
    resolution_minutes: int
    points: list[SeriesPoint]


class BatteryPage(BaseModel):
    items: list[Battery]
    next: str | None  # URL of the next page, None on the last


class IntervalPage(BaseModel):
    battery_id: str
    items: list[Interval]
    next: str | None


class DayPage(BaseModel):
    battery_id: str
    items: list[Day]
    next: str | None


class SettlementPage(BaseModel):
    battery_id: str
    items: list[Settlement]
    next: str | None


class LiveStep(BaseModel):
    """A quarter hour past the ledger as the live rule computed it (``partial``: the
    running one, ending at the newest reading); provisional, never stored."""

    interval_start: datetime
    interval_end: datetime
    import_kwh: float
    export_kwh: float
    charge_kwh: float
    discharge_kwh: float
    level_kwh: float
    power_kw: float
    partial: bool


class Live(BaseModel):
    """The battery now (docs/rules.md, "The live battery"): the ledger advanced by the
    energy measured since. ``provisional`` while it is past the ledger (``ledger_at``);
    ``stale`` when its newest value is old."""

    level_kwh: float
    power_kw: float
    at: datetime | None
    provisional: bool
    stale: bool
    ledger_at: datetime | None
    capacity_kwh: float
    steps: list[LiveStep]


class BatteryLive(Battery):
    """``/v1/batteries/{id}``: the ledger's registers and, beside them, the live state."""

    live: Live
