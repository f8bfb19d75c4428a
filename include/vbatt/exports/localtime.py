"""Local wall-clock time for files read by people and by local-time systems.

The warehouse keeps UTC instants; a partner in Europe/Zurich thinks in local days. In
the autumn the hour 02:00-03:00 happens twice, so a local time alone is ambiguous: every
local timestamp we write comes with its UTC offset (``+02:00`` for the first pass,
``+01:00`` for the repeated one), which marks the repeated hour without inventing a
notation of our own.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def to_local(instant: datetime, timezone: str) -> datetime:
    """The aware local time of a UTC instant (naive datetimes are refused: no guessing)."""
    if instant.tzinfo is None:
        raise ValueError(f"naive datetime {instant.isoformat()}: exports need UTC instants")
    return instant.astimezone(zone(timezone))


def offset_text(local: datetime) -> str:
    """The UTC offset of an aware datetime as ``+HH:MM``."""
    offset = local.utcoffset()
    if offset is None:
        raise ValueError("naive datetime has no UTC offset")
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def utc_text(instant: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, seconds precision: ``2025-06-01T22:00:00Z``."""
    if instant.tzinfo is None:
        raise ValueError(f"naive datetime {instant.isoformat()}: exports need UTC instants")
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_midnight(day: date, timezone: str) -> datetime:
    """00:00 local of ``day`` as a UTC instant (midnight always exists in the zones we serve)."""
    return datetime.combine(day, time(0), tzinfo=zone(timezone)).astimezone(UTC)


def quarter_hours_in_day(day: date, timezone: str) -> int:
    """92, 96 or 100 in Europe/Zurich: the length of the local day in quarter hours."""
    start = local_midnight(day, timezone)
    end = local_midnight(day + timedelta(days=1), timezone)
    return int((end - start).total_seconds() // 900)
