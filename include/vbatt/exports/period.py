"""Export periods: a local day or month of the partner's timezone as a UTC range.

Partners bill local days; a day in Europe/Zurich is 92, 96 or 100 quarter hours, so the
range is computed from local midnights, never as 24 hours from a UTC date.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from vbatt.exports.model import Period


def _midnight_utc(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def day_period(day: date, timezone: str) -> Period:
    tz = ZoneInfo(timezone)
    return Period(
        "day",
        day.isoformat(),
        day,
        day,
        _midnight_utc(day, tz),
        _midnight_utc(day + timedelta(days=1), tz),
        timezone,
    )


def month_period(year: int, month: int, timezone: str) -> Period:
    tz = ZoneInfo(timezone)
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return Period(
        "month",
        f"{year:04d}-{month:02d}",
        first,
        following - timedelta(days=1),
        _midnight_utc(first, tz),
        _midnight_utc(following, tz),
        timezone,
    )


def parse_period(text: str, timezone: str) -> Period:
    """``2025-06-01`` is a day, ``2025-06`` a month; anything else is refused, and a day
    the calendar lacks (``2025-06-31``) is named as such, not as Python's bare complaint."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"period {text}: no such day; give YYYY-MM-DD or YYYY-MM") from None
        return day_period(day, timezone)
    if m := re.fullmatch(r"(\d{4})-(\d{2})", text):
        year, month = int(m[1]), int(m[2])
        if 1 <= month <= 12:
            return month_period(year, month, timezone)
    raise ValueError(f"period {text!r}: give a day as YYYY-MM-DD or a month as YYYY-MM")
