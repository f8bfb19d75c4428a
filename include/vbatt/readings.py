"""The one shape in which every source hands meter readings to the warehouse.

A reading is a pair of cumulative registers at an instant (rule book, "Inputs"). Sources
(smart-me API, CSV, MSCONS) produce ``Reading`` objects; the loader writes them to
``raw.meter_readings``. Values the warehouse must refuse become ``Rejected`` rows with a
reason, so nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Reading:
    meter_id: str
    ts: datetime  # timezone-aware; stored as UTC
    import_kwh: float  # OBIS 1-0:1.8.0, cumulative
    export_kwh: float  # OBIS 1-0:2.8.0, cumulative


@dataclass(frozen=True, slots=True)
class Rejected:
    """Input that could not become a Reading, kept verbatim with the reason."""

    meter_id: str | None
    raw: str  # the offending record as received (a CSV line, a JSON object, a segment)
    reason: str
    where: str = ""  # file:line or URL, so a person can find it
