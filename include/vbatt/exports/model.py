"""What an export is made of, independent of any file format.

The warehouse is read once per partner and period into an :class:`ExportBatch`; every
format (CSV, MSCONS, IS-E, SDAT-CH) renders that same batch, so all files of a period
carry the same numbers and a format module never touches the database. A renderer is a
pure function ``render(batch, options, ctx) -> list[ExportFile]``: the same batch and
context give the same bytes, which is what makes re-exports byte-identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

PeriodKind = Literal["day", "month"]


@dataclass(frozen=True)
class Channel:
    """A series a partner receives; ``obis`` is the default code, a partner may remap it."""

    name: str  # charge | discharge | overflow | shortfall | level | charged_total | ...
    kind: Literal["profile", "register"]
    obis: str  # e.g. "1-1:1.29.0"
    unit: str  # "kWh"
    description: str


@dataclass(frozen=True)
class Party:
    """A market participant as EDIFACT/ebIX names it: an id and its code list."""

    id: str  # e.g. 13-digit GLN/BDEW code, or a 16-character EIC like 12X-SAK-N------6
    qualifier: str  # EDIFACT 3055: "14" GS1, "293" BDEW, "332" DVGW, "305" EIC ...
    name: str = ""


@dataclass(frozen=True)
class Period:
    """A local day or month of the partner's timezone, as a half-open UTC range."""

    kind: PeriodKind
    label: str  # "2025-06-01" or "2025-06"
    first_day: date
    last_day: date  # inclusive
    start_utc: datetime  # tz-aware, UTC
    end_utc: datetime  # exclusive
    timezone: str  # IANA name of the partner's timezone

    @property
    def expected_intervals(self) -> int:
        return int((self.end_utc - self.start_utc).total_seconds() // 900)


@dataclass(frozen=True)
class IntervalRow:
    """One quarter hour of a battery (battery_intervals); energies in kWh."""

    start: datetime  # UTC
    end: datetime  # UTC
    import_kwh: float
    export_kwh: float
    charge: float
    discharge: float
    overflow: float
    shortfall: float
    forfeited: float
    level: float  # at the end of the interval
    estimated: bool  # substitute value: exports flag it (QTY+67, STS, status columns)


@dataclass(frozen=True)
class Registers:
    """The battery as a meter at one instant (running sums since the battery's start)."""

    at: datetime  # UTC instant the registers are valid for
    level: float
    charged_total: float
    discharged_total: float
    overflow_total: float
    shortfall_total: float
    forfeited_total: float


@dataclass(frozen=True)
class BatteryExport:
    battery_id: str
    metering_point: str  # the id the partner knows the battery by (e.g. 33-char Swiss id)
    name: str
    customer_id: str
    meter_id: str
    timezone: str
    capacity_kwh: float  # 0 = unlimited
    intervals: tuple[IntervalRow, ...]  # ordered by start, only those inside the period
    registers_start: Registers  # at period.start_utc (or the battery's start)
    registers_end: Registers  # at the end of the last interval inside the period


@dataclass(frozen=True)
class ExportBatch:
    partner_id: str
    partner_name: str
    sender: Party
    receiver: Party
    period: Period
    batteries: tuple[BatteryExport, ...]  # ordered by battery_id
    channels: tuple[Channel, ...]  # the partner's channels, with its OBIS mapping applied

    def channel(self, name: str) -> Channel:
        for channel in self.channels:
            if channel.name == name:
                return channel
        raise KeyError(name)


@dataclass(frozen=True)
class RenderContext:
    """What makes an issue of a file unique, chosen by the delivery ledger, not the renderer.

    A re-run with unchanged data gets the same context back (same reference, same
    created_at), so the bytes are identical; changed data gets a new reference and
    version > 1 (a correction).
    """

    reference: str  # interchange/document reference, unique per partner (persisted counter)
    created_at: datetime  # UTC; the document date written into the file
    version: int = 1  # 1 = original, 2.. = corrections of the same period

    @property
    def is_correction(self) -> bool:
        return self.version > 1


@dataclass(frozen=True)
class ExportFile:
    name: str  # deterministic file name, no directories
    content: bytes
    rows: int  # data rows / values written, for the export ledger and the GX export suite
    values: dict[str, float] = field(default_factory=dict)  # channel -> sum written (kWh)
    media_type: str = "text/plain"


FormatOptions = dict[str, Any]  # the partner's per-format settings from its YAML
