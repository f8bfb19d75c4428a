"""Decoding smart-me Realtime API bodies (protobuf ``DeviceDataArray``, protobuf-net).

The message layout is ``realtime.proto`` beside this file (``realtime_pb2`` is generated
from it). protobuf-net writes .NET types in its "bcl" shapes, decoded here:

- ``Guid``: the 16 bytes of .NET ``Guid.ToByteArray()`` as two little-endian fixed64; the
  first three groups of the textual GUID are little-endian in those bytes, so the device
  id is ``UUID(bytes_le=...)``, lower case like the ids of the REST API.
- ``DateTime``: a signed offset from 1970-01-01 in units of its scale (days .. 100 ns
  ticks); scale MINMAX means DateTime.MinValue / MaxValue. Kind UTC and UNSPECIFIED are
  UTC (the cloud works in UTC), LOCAL is refused. Below a microsecond is truncated toward
  the past, as ``datetime.fromisoformat`` truncates the seven fractional digits of the
  REST API, so the two copies of one reading are the same instant.
- OBIS codes come as their six bytes ``A-B:C.D.E*F``; ``*255`` is dropped as on the REST
  path (``1-0:1.8.0*255`` is ``1-0:1.8.0``).

A body that is not a ``DeviceDataArray`` (or lacks a required field) raises ``BodyError``;
an item whose time cannot be a reading time carries the problem instead of a time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from google.protobuf.message import DecodeError
from google.protobuf.text_format import MessageToString

from vbatt.ingest import realtime_pb2

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# TimeSpanScale: how many microseconds one unit is (TICKS are 100 ns: divided, see below)
SCALE_MICROSECONDS = {0: 86_400_000_000, 1: 3_600_000_000, 2: 60_000_000, 3: 1_000_000, 4: 1_000}
SCALE_NAMES = {0: "DAYS", 1: "HOURS", 2: "MINUTES", 3: "SECONDS", 4: "MILLISECONDS", 5: "TICKS"}
TICKS = 5
MINMAX = 15
KIND_UNSPECIFIED, KIND_UTC, KIND_LOCAL = 0, 1, 2
# .NET DateTime.MinValue / MaxValue (MaxValue's last tick is below Python's microsecond)
MIN_VALUE = datetime(1, 1, 1, tzinfo=UTC)
MAX_VALUE = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)


class BodyError(ValueError):
    """The body is not a DeviceDataArray: answered 400 with this reason."""


@dataclass(frozen=True, slots=True)
class PushedItem:
    """One ``DeviceData``: the device, its time (or why it has none) and its values."""

    device_id: str
    value_at: datetime | None
    time_problem: str | None
    values: list[tuple[str, float]] = field(default_factory=list)  # (OBIS code, value)
    bad_obis: int = 0  # values whose Obis is not six bytes
    message: object = None  # the decoded ``DeviceData``, for ``record``

    @property
    def record(self) -> str:
        """The item in protobuf text format, for the quarantine: built only when an item
        is refused (rare), not for every push (it costs more than the whole decoding)."""
        return "" if self.message is None else MessageToString(self.message, as_one_line=True)


def guid_text(lo: int, hi: int) -> str:
    """bcl.Guid -> the textual GUID (lower case)."""
    return str(uuid.UUID(bytes_le=lo.to_bytes(8, "little") + hi.to_bytes(8, "little")))


def guid_fields(device_id: str) -> tuple[int, int]:
    """The textual GUID -> bcl.Guid's (lo, hi); what the simulated cloud sends."""
    raw = uuid.UUID(device_id).bytes_le
    return int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little")


def decode_datetime(value: int, scale: int, kind: int) -> datetime:
    """bcl.DateTime -> an aware UTC datetime; ValueError says why it is not one."""
    if kind == KIND_LOCAL:
        raise ValueError("DateTime kind LOCAL: the time zone is unknown, refused")
    if kind not in (KIND_UNSPECIFIED, KIND_UTC):
        raise ValueError(f"DateTime kind {kind} is not UNSPECIFIED (0), UTC (1) or LOCAL (2)")
    if scale == MINMAX:
        if value == 1:
            return MAX_VALUE
        if value == -1:
            return MIN_VALUE
        raise ValueError(f"DateTime scale MINMAX with value {value} (only 1 or -1)")
    if scale == TICKS:
        micros = value // 10  # floor: truncation toward the past, as on the REST path
    elif scale in SCALE_MICROSECONDS:
        micros = value * SCALE_MICROSECONDS[scale]
    else:
        raise ValueError(f"DateTime scale {scale} is not a TimeSpanScale")
    try:
        return EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise ValueError(
            f"DateTime {value} {SCALE_NAMES[scale]} is outside the years 1..9999"
        ) from None


def datetime_fields(ts: datetime) -> tuple[int, int, int]:
    """An aware datetime -> bcl.DateTime (value, scale TICKS, kind UTC), to the microsecond."""
    delta = ts.astimezone(UTC) - EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return micros * 10, TICKS, KIND_UTC


@lru_cache(maxsize=1024)  # a handful of codes in practice: formatted once each
def obis_text(code: bytes) -> str:
    """Six OBIS bytes -> ``A-B:C.D.E`` (``*F`` unless F is 255)."""
    a, b, c, d, e, f = code
    base = f"{a}-{b}:{c}.{d}.{e}"
    return base if f == 255 else f"{base}*{f}"


def obis_bytes(code: str) -> bytes:
    """``A-B:C.D.E[*F]`` -> its six bytes (F = 255 when absent)."""
    ab, cde = code.split(":")
    a, b = ab.split("-")
    cde, _, f = cde.partition("*")
    c, d, e = cde.split(".")
    return bytes(int(x) for x in (a, b, c, d, e, f or 255))


def decode_body(body: bytes) -> list[PushedItem]:
    """A POSTed body -> its items; BodyError if it is not a DeviceDataArray."""
    message = realtime_pb2.DeviceDataArray()
    try:
        message.ParseFromString(body)
    except DecodeError as exc:
        raise BodyError(f"not a protobuf DeviceDataArray: {exc}") from None
    if not message.IsInitialized():
        missing = ", ".join(message.FindInitializationErrors())
        raise BodyError(f"DeviceDataArray misses required fields: {missing}")
    items = []
    for item in message.DeviceDataItems:
        try:
            value_at, problem = (
                decode_datetime(item.DateTime.value, item.DateTime.scale, item.DateTime.kind),
                None,
            )
        except ValueError as exc:
            value_at, problem = None, str(exc)
        values, bad = [], 0
        for v in item.DeviceValues:
            if len(v.Obis) != 6:
                bad += 1
            else:
                values.append((obis_text(v.Obis), v.Value))
        items.append(
            PushedItem(
                device_id=guid_text(item.DeviceId.lo, item.DeviceId.hi),
                value_at=value_at,
                time_problem=problem,
                values=values,
                bad_obis=bad,
                message=item,
            )
        )
    return items


def encode_body(items: list[tuple[str, datetime, list[tuple[str, float]]]]) -> bytes:
    """(device id, time, [(OBIS, value)]) -> a DeviceDataArray body (TICKS, UTC), as the
    smart-me cloud sends it; used by the simulated cloud and the benchmark."""
    message = realtime_pb2.DeviceDataArray()
    for device_id, ts, values in items:
        item = message.DeviceDataItems.add()
        item.DeviceId.lo, item.DeviceId.hi = guid_fields(device_id)
        item.DateTime.value, item.DateTime.scale, item.DateTime.kind = datetime_fields(ts)
        for code, number in values:
            item.DeviceValues.add(Obis=obis_bytes(code), Value=number)
    return message.SerializeToString()
