"""Protobuf wire bytes written by hand (no generated code), to test the decoder against."""

from __future__ import annotations

import struct


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int32/int64: ten bytes, two's complement
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


def key(field: int, wire_type: int) -> bytes:
    return varint(field << 3 | wire_type)


def length_delimited(field: int, payload: bytes) -> bytes:
    return key(field, 2) + varint(len(payload)) + payload


def guid(dotnet_bytes: bytes) -> bytes:
    """bcl.Guid from the 16 bytes of .NET Guid.ToByteArray()."""
    return key(1, 1) + dotnet_bytes[:8] + key(2, 1) + dotnet_bytes[8:]


def datetime_(value: int | None = None, scale: int | None = None, kind: int | None = None):
    out = b""
    if value is not None:
        out += key(1, 0) + varint(zigzag(value))
    if scale is not None:
        out += key(2, 0) + varint(scale)
    if kind is not None:
        out += key(3, 0) + varint(kind)
    return out


def value(obis: bytes, number: float) -> bytes:
    return length_delimited(1, obis) + key(2, 1) + struct.pack("<d", number)


def item(guid_payload: bytes, datetime_payload: bytes, values: list[bytes]) -> bytes:
    out = length_delimited(1, guid_payload) + length_delimited(2, datetime_payload)
    for v in values:
        out += length_delimited(3, v)
    return out


def body(*items: bytes) -> bytes:
    return b"".join(length_delimited(1, i) for i in items)
