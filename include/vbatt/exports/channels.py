"""The channels a partner can receive, with their default OBIS codes.

The battery is a virtual meter of its own: energy *into* the battery (charge) is its
import, energy drawn back (discharge) its export, mirroring how smart-me shows a battery
(CounterReadingImport = charged total). Overflow and shortfall are real grid energy that
the battery did not absorb; they go on channel 5 ("virtual"), the way smart-me numbers
virtual tariffs. The level has no standard OBIS code: C = 128 is the manufacturer-specific
range. docs/formats/channels.md explains each; a partner may remap any code in its YAML.
"""

from __future__ import annotations

from vbatt.exports.model import Channel

PROFILE_CHANNELS: tuple[Channel, ...] = (
    Channel(
        "charge",
        "profile",
        "1-1:1.29.0",
        "kWh",
        "Energy the customer stored: surplus credited to the battery.",
    ),
    Channel(
        "discharge",
        "profile",
        "1-1:2.29.0",
        "kWh",
        "Energy drawn back from the battery to cover import.",
    ),
    Channel(
        "overflow",
        "profile",
        "1-5:2.29.0",
        "kWh",
        "Feed-in beyond capacity: really exported to the grid.",
    ),
    Channel(
        "shortfall",
        "profile",
        "1-5:1.29.0",
        "kWh",
        "Import the battery could not cover: really bought.",
    ),
)
REGISTER_CHANNELS: tuple[Channel, ...] = (
    Channel("level", "register", "1-1:128.8.0", "kWh", "Battery level at the reading instant."),
    Channel(
        "charged_total",
        "register",
        "1-1:1.8.0",
        "kWh",
        "Charge since the battery's start, never reset.",
    ),
    Channel(
        "discharged_total",
        "register",
        "1-1:2.8.0",
        "kWh",
        "Discharge since the start, never reset.",
    ),
    Channel("overflow_total", "register", "1-5:2.8.0", "kWh", "Overflow since the start."),
    Channel("shortfall_total", "register", "1-5:1.8.0", "kWh", "Shortfall since the start."),
)
ALL_CHANNELS: tuple[Channel, ...] = PROFILE_CHANNELS + REGISTER_CHANNELS
CHANNEL_NAMES: tuple[str, ...] = tuple(c.name for c in ALL_CHANNELS)


def channels_for(
    obis_overrides: dict[str, str] | None = None, names: list[str] | None = None
) -> tuple[Channel, ...]:
    """The partner's channels: all (or ``names``), with its OBIS codes where it maps them."""
    overrides = obis_overrides or {}
    unknown = set(overrides) - set(CHANNEL_NAMES) | set(names or ()) - set(CHANNEL_NAMES)
    if unknown:
        raise ValueError(f"unknown channel(s) {sorted(unknown)}; known: {', '.join(CHANNEL_NAMES)}")
    chosen = [c for c in ALL_CHANNELS if names is None or c.name in names]
    return tuple(
        Channel(c.name, c.kind, overrides.get(c.name, c.obis), c.unit, c.description)
        for c in chosen
    )
