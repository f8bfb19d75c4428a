"""Decoding Realtime API bodies against hand-encoded protobuf (tests/realtime/wire.py)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.realtime import wire
from vbatt.ingest.realtime_intake import to_values
from vbatt.ingest.realtime_pb import MAX_VALUE, MIN_VALUE, BodyError, decode_body, encode_body
from vbatt.ingest.smartme import parse_timestamp

# textual GUID and the bytes .NET's Guid.ToByteArray() gives for it
GUID_TEXT = "00112233-4455-6677-8899-aabbccddeeff"
GUID_DOTNET = bytes.fromhex("33221100554477668899aabbccddeeff")
IMPORT = bytes([1, 0, 1, 8, 0, 255])
EXPORT = bytes([1, 0, 2, 8, 0, 255])
POWER = bytes([1, 0, 16, 7, 0, 255])
VOLTAGE = bytes([1, 0, 32, 7, 0, 255])
TICKS_2026 = (1_796_040_000 * 10_000_000) + 1_234_567  # 2026-11-30T12:00:00.1234567Z


def one(dt: bytes, values: list[bytes] | None = None):
    body = wire.body(wire.item(wire.guid(GUID_DOTNET), dt, values or []))
    (item,) = decode_body(body)
    return item


def test_guid_byte_order():
    assert one(wire.datetime_(0)).device_id == GUID_TEXT


def test_ticks_truncate_like_the_rest_path():
    item = one(wire.datetime_(TICKS_2026, scale=5, kind=1))
    assert item.value_at == datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
    assert item.value_at == parse_timestamp("2026-11-30T12:00:00.1234567Z")


def test_ticks_before_1970_truncate_toward_the_past():
    item = one(wire.datetime_(-1, scale=5))
    assert item.value_at == parse_timestamp("1969-12-31T23:59:59.9999999Z")


@pytest.mark.parametrize(
    ("value", "scale", "expected"),
    [
        (20_422, None, datetime(2025, 11, 30, tzinfo=UTC)),  # DAYS is the default scale
        (490_140, 1, datetime(2025, 11, 30, 12, tzinfo=UTC)),
        (-90, 2, datetime(1969, 12, 31, 22, 30, tzinfo=UTC)),
        (1_764_504_000, 3, datetime(2025, 11, 30, 12, tzinfo=UTC)),
        (1_764_504_000_250, 4, datetime(2025, 11, 30, 12, 0, 0, 250_000, tzinfo=UTC)),
        (None, None, datetime(1970, 1, 1, tzinfo=UTC)),  # value 0, every field defaulted
        (1, 15, MAX_VALUE),
        (-1, 15, MIN_VALUE),
    ],
)
def test_scales(value, scale, expected):
    item = one(wire.datetime_(value, scale=scale))
    assert (item.value_at, item.time_problem) == (expected, None)


@pytest.mark.parametrize(
    ("dt", "problem"),
    [
        (wire.datetime_(0, kind=2), "LOCAL"),
        (wire.datetime_(0, kind=7), "kind 7"),
        (wire.datetime_(0, scale=9), "scale 9"),
        (wire.datetime_(2, scale=15), "MINMAX"),
        (wire.datetime_(10**16, scale=0), "outside the years"),
    ],
)
def test_times_that_are_refused(dt, problem):
    item = one(dt)
    assert item.value_at is None and problem in item.time_problem


def test_obis_codes_negative_values_and_unused_codes():
    item = one(
        wire.datetime_(TICKS_2026, scale=5),
        [
            wire.value(IMPORT, 12.5),
            wire.value(EXPORT, 3.25),
            wire.value(POWER, -2.75),
            wire.value(VOLTAGE, 231.0),
            wire.value(bytes([1, 0, 1, 8, 1, 255]), 7.0),  # a tariff register
            wire.value(bytes([1, 0, 1, 8, 0, 1]), 1.0),  # F is kept unless 255
        ],
    )
    assert item.values == [
        ("1-0:1.8.0", 12.5),
        ("1-0:2.8.0", 3.25),
        ("1-0:16.7.0", -2.75),
        ("1-0:32.7.0", 231.0),
        ("1-0:1.8.1", 7.0),
        ("1-0:1.8.0*1", 1.0),
    ]
    values, rejected, counts = to_values([item], {GUID_TEXT: "m1"})
    assert [(v.import_kwh, v.export_kwh, v.power_kw) for v in values] == [(12.5, 3.25, -2.75)]
    assert (counts.unused_values, rejected) == (3, [])


def test_unknown_device_one_register_negative_energy_and_refused_time():
    items = decode_body(
        wire.body(
            wire.item(wire.guid(bytes(16)), wire.datetime_(0), [wire.value(IMPORT, 1.0)]),
            wire.item(
                wire.guid(GUID_DOTNET), wire.datetime_(TICKS_2026, 5), [wire.value(IMPORT, 2.0)]
            ),
            wire.item(
                wire.guid(GUID_DOTNET),
                wire.datetime_(TICKS_2026 + 10_000_000, 5),
                [wire.value(IMPORT, -1.0), wire.value(POWER, 0.5)],
            ),
            wire.item(wire.guid(GUID_DOTNET), wire.datetime_(0, kind=2), [wire.value(IMPORT, 1)]),
        )
    )
    values, rejected, counts = to_values(items, {GUID_TEXT: "m1"})
    assert counts.items == 4 and counts.unknown_devices == 1
    assert [(v.import_kwh, v.export_kwh, v.power_kw, v.is_reading) for v in values] == [
        (2.0, None, None, False),
        (None, None, 0.5, False),
    ]
    assert [r.reason for r in rejected] == [
        "register 1-0:1.8.0 is negative: -1.0",
        "DateTime kind LOCAL: the time zone is unknown, refused",
    ]
    assert "DeviceId" in rejected[0].raw and rejected[0].meter_id == "m1"


def test_empty_bodies_and_arrays():
    assert decode_body(b"") == []
    assert decode_body(wire.length_delimited(1, b"")[:0]) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff\xff\xff", "not a protobuf DeviceDataArray"),
        (b"GET / HTTP/1.1", "not a protobuf DeviceDataArray"),
        (wire.body(wire.length_delimited(2, wire.datetime_(0))), "DeviceId"),
        (wire.body(wire.length_delimited(1, wire.guid(GUID_DOTNET))), "DateTime"),
        (
            wire.body(
                wire.item(wire.guid(GUID_DOTNET), wire.datetime_(0), [wire.key(2, 1) + bytes(8)])
            ),
            "Obis",
        ),
    ],
)
def test_bodies_that_are_not_device_data_arrays(body, reason):
    with pytest.raises(BodyError, match=reason):
        decode_body(body)


def test_encoder_writes_what_the_hand_encoder_writes():
    ts = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
    assert encode_body([(GUID_TEXT, ts, [("1-0:1.8.0", 12.5)])]) == wire.body(
        wire.item(
            wire.guid(GUID_DOTNET),
            wire.datetime_(TICKS_2026 - 7, scale=5, kind=1),
            [wire.value(IMPORT, 12.5)],
        )
    )


def test_generated_module_is_what_the_proto_generates(tmp_path):
    include = Path(__file__).resolve().parents[2] / "include"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{include}",
            f"--python_out={tmp_path}",
            str(include / "vbatt" / "ingest" / "realtime.proto"),
        ],
        check=True,
    )
    generated = (tmp_path / "vbatt" / "ingest" / "realtime_pb2.py").read_text()
    assert generated == (include / "vbatt" / "ingest" / "realtime_pb2.py").read_text()
