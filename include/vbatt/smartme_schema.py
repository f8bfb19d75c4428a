"""The smart-me wire format, declared once for everything that serves it.

The simulated smart-me cloud (``vbatt.simulator``) and the battery API (``vbatt.api``) both
answer like smart-me; the models here are the schemas of smart-me's published description
(PascalCase, the legacy ``/api`` dialect; ``camel`` turns them into the current host's
camelCase), reduced to the fields either server fills. Both build their answers with these
models, so a field cannot drift between them, and the API's OpenAPI document shows
smart-me's shapes. The client (``vbatt.ingest.smartme``) parses leniently on purpose and
does not use the models, only ``parse_instant`` and ``enum_name``.

Enumerations: smart-me's current description (``openapi-v1-2026.json``) and its real answers
carry them as integers (``"DeviceEnergyType": 1``); the older description lists the member
names (``"MeterTypeElectricity"``). Servers here send the integers; readers accept both,
in any casing (``enum_name``).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
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


# .NET writes up to seven fractional digits (ticks of 100 ns): 2026-07-25T13:06:32.0500519Z
_INSTANT = re.compile(
    r"(\d{4}-\d\d-\d\d)(?:[T ](\d\d:\d\d(?::\d\d)?)(?:[.,](\d{1,7}))?)?(Z|[+-]\d\d:?\d\d)?",
    re.IGNORECASE,
)


def parse_instant(text: str | None) -> datetime | None:
    """A smart-me date (answer or query): ISO 8601 with up to seven fractional digits,
    truncated to the microsecond toward the past (as the realtime path truncates .NET ticks,
    so both copies of one reading are the same instant); naive means UTC; a query's ``+``
    may arrive as a space.
    ``None`` when it is not such a date (more than seven digits included)."""
    if not isinstance(text, str) or not text.strip():
        return None
    text = text.strip()
    if text[-6:-5] == " " and text[-5:-4].isdigit():  # "...T10:00:00 02:00": a lost "+"
        text = text[:-6] + "+" + text[-5:]
    m = _INSTANT.fullmatch(text)
    if m is None:
        return None
    day, clock, fraction, zone = m.groups()
    offset = "+00:00" if zone is None or zone.upper() == "Z" else zone
    try:
        ts = datetime.fromisoformat(f"{day}T{clock or '00:00'}{offset}")
    except ValueError:
        return None
    if fraction:
        ts += timedelta(microseconds=int(fraction.ljust(7, "0")) // 10)
    return ts.astimezone(UTC)


_DEVICE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "vbatt:battery")


def device_uuid(device_id: str) -> str:
    """A device id as the current description types it (``format: uuid``): the id itself
    when it is a UUID, else a name-based UUID (version 5) of it, the same on every call."""
    try:
        return str(uuid.UUID(device_id))
    except ValueError:
        return str(uuid.uuid5(_DEVICE_NAMESPACE, device_id))


def _members(text: str) -> dict[int, str]:
    return dict(enumerate(text.split()))


# Codes of the current description with the member names of the older one.
METER_ENERGY_TYPES = _members(
    "MeterTypeUnknown MeterTypeElectricity MeterTypeWater MeterTypeGas MeterTypeHeat"
    " MeterTypeHCA MeterTypeAllMeters MeterTypeTemperature MeterTypeMBusGateway"
    " MeterTypeRS485Gateway MeterTypeCustomDevice MeterTypeCompressedAir MeterTypeSolarLog"
    " MeterTypeVirtualMeter"
)
METER_SUB_TYPES = _members(
    "MeterSubTypeUnknown MeterSubTypeCold MeterSubTypeHeat MeterSubTypeChargingStation"
    " MeterSubTypeElectricity MeterSubTypeWater MeterSubTypeGas MeterSubTypeElectricityHeat"
    " MeterSubTypeTemperature MeterSubTypeVirtualBattery"
)
METER_FAMILY_TYPES = {
    0: "MeterFamilyTypeUnknown",
    1: "MeterFamilyTypeSmartMeConnectV1",
    2: "MeterFamiliyTypeSmartMeMeter",  # sic, smart-me's spelling
    3: "MeterFamiliyTypeSmartMeMeterWithSwitch",
    4: "MeterFamilyTypeMBusGatewayV1",
    5: "MeterFamilyTypeRS485GatewayV1",
    6: "MeterFamilyTypeKamstrupModule",
    7: "MeterFamilyTypeSmartMe3PhaseMeter80A",
    8: "MeterFamilyTypeSmartMe3PhaseMeter32A",
    9: "MeterFamilyTypeSmartMe3PhaseTelstarTransformer",
    10: "MeterFamilyTypeLandisGyrModule",
    11: "MeterFamilyTypeFnnOpticalModule",
    12: "MeterFamilyTypeSmartMe3PhaseTelstar80AWiFi",
    14: "MeterFamilyTypeSmartMe3PhaseTelstar80AMobile",
    16: "MeterFamilyTypeSmartMe1PhaseMeter80AV2WiFi",
    17: "MeterFamilyTypeSmartMe1PhaseMeter32AV2WiFi",
    18: "MeterFamilyTypeSmartMe1PhaseMeter80AGprs",
    19: "MeterFamilyTypeSmartMe1PhaseMeter32AGprs",
    70: "MeterFamilyTypeMithralHallV1",
    1001: "MeterFamilyTypeRestApiMeter",
    1002: "MeterFamilyTypeVirtualBillingMeter",
}
ENERGY_TYPE_ELECTRICITY = 1
SUB_TYPE_ELECTRICITY = 4
SUB_TYPE_VIRTUAL_BATTERY = 9
# smart-me's virtual meters (computed from other meters' values, no hardware) are family
# 1002 "Virtual billing Meter"; 1001 "REST API Meter" is a device that pushes its own values.
FAMILY_TYPE_VIRTUAL_METER = 1002
FAMILY_TYPE_3_PHASE_80A = 7


def enum_name(value: Any, members: dict[int, str]) -> str | None:
    """An enumeration as sent (integer, digits, or member name in any casing) -> the member
    name; an integer smart-me added later stays readable as its digits. ``None`` if absent
    or not an enumeration value at all."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, int):
        return members.get(value, str(value))
    if isinstance(value, str) and value.strip():
        folded = value.strip().lower()
        for name in members.values():
            if name.lower() == folded:
                return name
        return value.strip()
    return None


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
    DeviceEnergyType: int | str | None = None  # servers here send the integer
    FamilyType: int | str | None = None
    MeterSubType: int | str | None = None
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
