"""The rule book's constraints on a battery configuration, checked before it is stored.

One place for them: the batteries CSV (``vbatt batteries``, ``vbatt simulate``) and
every other path into ``raw.batteries`` (``upsert_batteries``: the demo, partners'
integrations) ask here, so a bad configuration is refused with the battery and the field
named instead of failing the next ledger run for everyone. The database constraints of
migration 0001 stay as the last guard.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

REPEATS = ("yearly", "none")
# rule book, "Configuration over time": fixed for the battery's life, or versioned with a
# valid_from; end_date is neither (set, moved or cleared on the battery itself)
FIXED_FIELDS = (
    "battery_id",
    "partner_id",
    "customer_id",
    "start_date",
    "timezone",
    "initial_level_kwh",
)
VERSIONED_FIELDS = ("name", "meter_id", "capacity_kwh", "reset_date", "reset_repeat")
# the columns of raw.batteries (migration 0001) and of the batteries CSV, in this order
BATTERY_FIELDS = (
    "battery_id",
    "name",
    "partner_id",
    "customer_id",
    "meter_id",
    "capacity_kwh",
    "start_date",
    "reset_date",
    "reset_repeat",
    "end_date",
    "timezone",
    "initial_level_kwh",
)
# raw.batteries.timezone's default (migration 0001), for rows that leave it out
DEFAULT_TIMEZONE = "Europe/Zurich"


@dataclass(frozen=True)
class ConfigProblem:
    battery_id: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"battery {self.battery_id!r}, {self.field}: {self.message}"


class BatteryConfigError(ValueError):
    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__(
            "battery configuration refused, nothing stored:\n" + "\n".join(str(p) for p in problems)
        )


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def field_problems(row: dict) -> list[tuple[str, str]]:
    """(field, message) for each rule the configuration breaks; parsed values expected."""
    found: list[tuple[str, str]] = []
    for field in ("battery_id", "meter_id", "start_date"):
        if not row.get(field):
            found.append((field, "is required"))
    if row.get("capacity_kwh") is None:  # 0 would mean unlimited: never a silent default
        found.append(("capacity_kwh", "is required (0 = unlimited)"))
    capacity, initial = row.get("capacity_kwh") or 0.0, row.get("initial_level_kwh") or 0.0
    for field, value in (("capacity_kwh", capacity), ("initial_level_kwh", initial)):
        if not _is_number(value):
            found.append((field, f"{value!r} is not a finite number"))
        elif value < 0:
            found.append((field, f"{value:g} is negative"))
    # the initial level is the first version's: a later version may clip it (a forfeit)
    first = row.get("valid_from") in (None, row.get("start_date"))
    if first and _is_number(capacity) and _is_number(initial) and 0 < capacity < initial:
        found.append(("initial_level_kwh", f"{initial} exceeds the capacity {capacity}"))
    for field in ("start_date", "reset_date", "end_date"):
        value = row.get(field)
        if value is not None and not isinstance(value, date):
            found.append((field, f"{value!r} is not a date"))
    start, end = row.get("start_date"), row.get("end_date")
    if isinstance(start, date) and isinstance(end, date) and end <= start:
        found.append(("end_date", f"{end} is not after start_date {start}"))
    repeat = row.get("reset_repeat") or "yearly"
    if repeat not in REPEATS:
        found.append(("reset_repeat", f"{repeat!r}: use yearly or none"))
    timezone = row.get("timezone")  # None: check_batteries fills in the default
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            found.append(("timezone", f"{timezone!r} is not an IANA time zone"))
    return found


def check_batteries(rows: Iterable[dict], known_meters: set[str] | None = None) -> list[dict]:
    """The rows, or BatteryConfigError naming every problem of every battery."""
    # the defaults of raw.batteries, filled in here: the loader binds every column, and an
    # explicit NULL would reach the database as a constraint error naming no battery
    rows = [
        {
            **row,
            "reset_repeat": row.get("reset_repeat") or "yearly",
            "timezone": row.get("timezone") or DEFAULT_TIMEZONE,
            "initial_level_kwh": row.get("initial_level_kwh") or 0.0,
        }
        for row in rows
    ]
    problems: list[ConfigProblem] = []
    seen: set[tuple] = set()
    for row in rows:
        battery = str(row.get("battery_id") or "?")
        problems += [ConfigProblem(battery, f, m) for f, m in field_problems(row)]
        # several rows of a battery are its versions, one per valid_from
        version = (battery, row.get("valid_from") or row.get("start_date"))
        if version in seen:
            field = "valid_from" if row.get("valid_from") else "battery_id"
            problems.append(ConfigProblem(battery, field, "appears twice"))
        seen.add(version)
        meter = row.get("meter_id")
        if known_meters is not None and meter and meter not in known_meters:
            problems.append(ConfigProblem(battery, "meter_id", f"{meter!r} has no readings"))
    if problems:
        raise BatteryConfigError(problems)
    return rows
