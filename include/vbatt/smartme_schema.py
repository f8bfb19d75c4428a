"""The smart-me wire format, declared once for everything that serves it.

The simulated smart-me cloud (``vbatt.simulator``) and the battery API (``vbatt.api``) both
answer like smart-me; the models here are the schemas of
``shared/reference/smart-me/openapi-subset.yaml`` (PascalCase, the legacy ``/api`` dialect),
reduced to the fields either server fills. Both build their answers with these models, so
a field cannot drift between them, and the API's OpenAPI document shows smart-me's shapes.
The client (``vbatt.ingest.smartme``) parses leniently on purpose and does not use them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

OBIS_IMPORT = "1-0:1.8.0*255"
OBIS_EXPORT = "1-0:2.8.0*255"
OBIS_POWER = "1-0:16.7.0*255"  # net active power in kW; readers of registers ignore it
MAX_VALUES_PER_CALL = 1000  # "Only 1000 values can be get in one call" (spec)

DateTimeText = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


def iso(ts: datetime) -> str:
    """smart-me's date format: UTC with ``Z``, whole seconds."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(text: str | None) -> datetime | None:
    """Query dates as smart-me accepts them; naive means UTC. ``+`` may arrive as a space."""
    if not text:
        return None
    try:
        ts = datetime.fromisoformat(text.strip().replace(" ", "+"))
    except ValueError:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def camel(obj: Any) -> Any:
    """PascalCase keys -> camelCase keys, recursively (the current host's dialect)."""
    if isinstance(obj, dict):
        return {k[:1].lower() + k[1:]: camel(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [camel(v) for v in obj]
    return obj


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def wire(self) -> dict[str, Any]:
        """The JSON object as smart-me sends it: absent fields are left out, not null."""
        return self.model_dump(exclude_none=True)


class Device(_Wire):
    """``components.schemas.Device``."""

    Id: str
    Name: str | None = None
    Serial: int | None = None
    DeviceEnergyType: str | None = None
    FamilyType: str | None = None
    MeterSubType: str | None = None
    ActivePower: float | None = None
    ActivePowerUnit: str | None = None
    CounterReading: float | None = None
    CounterReadingImport: float | None = None
    CounterReadingExport: float | None = None
    CounterReadingUnit: str | None = None
    Voltage: float | None = None
    SwitchOn: bool | None = None
    ValueDate: DateTimeText | None = None


class DeviceInPast(_Wire):
    """``components.schemas.DeviceInPast`` (MeterValues)."""

    Id: str
    Serial: int | None = None
    Date: DateTimeText
    CounterReading: float | None = None
    CounterReadingImport: float | None = None
    CounterReadingExport: float | None = None
    CounterReadingUnit: str | None = None


class ValueData(_Wire):
    """``components.schemas.ValueData``: one OBIS value."""

    Obis: str
    Value: float | None = None


class ValuesData(_Wire):
    """``components.schemas.ValuesData`` (ValuesInPastMultiple)."""

    Date: DateTimeText
    DeviceId: str
    Values: list[ValueData]


class ApiMessage(_Wire):
    """smart-me's error body."""

    Message: str
