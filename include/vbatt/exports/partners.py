"""Partner configuration: one YAML file per partner in ``partners/``, validated on load.

A partner is a billing system that receives files: which batteries, which formats, how
often, under which ids. The YAML is the only place this is declared; a mistake is
reported with the file, the field and what would be accepted, before anything is
exported.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vbatt.exports.channels import CHANNEL_NAMES, channels_for
from vbatt.exports.model import Channel, Party

FORMATS = ("csv", "mscons", "ise", "sdat")


class PartnerConfigError(ValueError):
    """A partner file that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PartyConfig(_Strict):
    id: str = Field(min_length=1, max_length=35)
    qualifier: str = Field(
        default="293",
        description="EDIFACT 3055 code list: 14 GS1 (GLN), 293 BDEW, 332 DVGW, 305 EIC (ebIX)",
    )
    name: str = ""

    @field_validator("id")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9\-]+", value):
            raise ValueError("only letters, digits and '-' (a GLN, BDEW code or EIC)")
        return value

    def party(self) -> Party:
        return Party(self.id, self.qualifier, self.name)


class FormatConfig(_Strict):
    format: Literal["csv", "mscons", "ise", "sdat"]
    name: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        description="needed when a partner receives one format twice (e.g. csv and csv-dach)",
    )
    options: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        """The folder and ledger key of this entry: its name, else the format."""
        return self.name or self.format


class SftpConfig(_Strict):
    conn_id: str = Field(
        description="Airflow connection (or AIRFLOW_CONN_* variable) of the SFTP server"
    )
    remote_dir: str = "."


class DeliveryConfig(_Strict):
    sftp: SftpConfig | None = None


class BatteryConfig(_Strict):
    metering_point: str = Field(min_length=1, max_length=35)

    @field_validator("metering_point")
    @classmethod
    def _metering_point(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z0-9]+", value):
            raise ValueError(
                "upper-case letters and digits only (e.g. a 33-character Swiss id CH...)"
            )
        if value.startswith("CH") and len(value) != 33:
            raise ValueError(f"a Swiss metering point id has 33 characters, this one {len(value)}")
        return value


class PartnerConfig(_Strict):
    partner_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str
    timezone: str = "Europe/Zurich"
    schedule: Literal["daily", "monthly"] = "daily"
    sender: PartyConfig
    receiver: PartyConfig
    formats: list[FormatConfig] = Field(min_length=1)
    batteries: dict[str, BatteryConfig] | None = Field(
        default=None,
        description="battery_id -> its metering point; omitted: every battery of the partner, "
        "known to the partner by its battery_id",
    )
    channels: list[str] | None = Field(default=None, description="channel names; omitted: all")
    obis: dict[str, str] = Field(default_factory=dict, description="channel -> OBIS code override")
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {value!r} (an IANA name such as Europe/Zurich)"
            ) from None
        return value

    @field_validator("obis")
    @classmethod
    def _obis(cls, value: dict[str, str]) -> dict[str, str]:
        for channel, code in value.items():
            if channel not in CHANNEL_NAMES:
                raise ValueError(f"unknown channel {channel!r}; known: {', '.join(CHANNEL_NAMES)}")
            if not re.fullmatch(r"\d{1,3}-\d{1,3}:\d{1,3}\.\d{1,3}\.\d{1,3}(\*\d{1,3})?", code):
                raise ValueError(f"{channel}: {code!r} is not an OBIS code like 1-1:1.29.0")
        return value

    @model_validator(mode="after")
    def _channels(self) -> PartnerConfig:
        channels_for(self.obis, self.channels)  # raises on unknown names
        keys = [f.key for f in self.formats]
        if twice := sorted({k for k in keys if keys.count(k) > 1}):
            raise ValueError(f"formats {twice} appear twice: give each entry a distinct name")
        return self

    def channel_list(self) -> tuple[Channel, ...]:
        return channels_for(self.obis, self.channels)

    def metering_point(self, battery_id: str) -> str:
        if self.batteries is None:
            return battery_id
        return self.batteries[battery_id].metering_point


def _describe(error: ValidationError) -> str:
    lines = []
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  {where}: {e['msg']}")
    return "\n".join(lines)


def load_partner(path: Path) -> PartnerConfig:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PartnerConfigError(f"{path.name}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PartnerConfigError(
            f"{path.name}: expected a mapping of settings, got {type(data).__name__}"
        )
    for entry in data.get("formats") or []:
        if isinstance(entry, dict) and entry.get("format") == "ise":
            # a partner's own IS-E template path is relative to its partner file
            entry.setdefault("options", {}).setdefault("base_dir", str(path.parent.resolve()))
    try:
        config = PartnerConfig.model_validate(data)
    except ValidationError as exc:
        raise PartnerConfigError(
            f"{path.name}: invalid partner configuration\n{_describe(exc)}"
        ) from None
    if path.stem != config.partner_id:
        raise PartnerConfigError(
            f"{path.name}: partner_id {config.partner_id!r} must match the file name ({path.stem}.yaml)"
        )
    return config


def load_partners(directory: Path) -> dict[str, PartnerConfig]:
    """Every ``*.yaml`` in the folder; one bad file stops the load with its reason."""
    if not directory.is_dir():
        raise PartnerConfigError(
            f"no partner folder at {directory}; create it or set VBATT_PARTNERS_DIR"
        )
    partners = {}
    for path in sorted(directory.glob("*.yaml")):
        config = load_partner(path)
        partners[config.partner_id] = config
    return partners


def get_partner(directory: Path, partner_id: str) -> PartnerConfig:
    path = directory / f"{partner_id}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.yaml"))) or "none"
        raise PartnerConfigError(f"no partner {partner_id!r} in {directory} (known: {known})")
    return load_partner(path)
