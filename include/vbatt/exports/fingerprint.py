"""What an issue says, apart from how it says it: a fingerprint of the batch's values.

A period already sent to a partner is re-issued only when what it tells the partner
changes: the quarter hours' flows, levels and estimated flags, the registers, the set of
batteries and their metering points. How a format writes those values (rounding, column
order, a new header field, the name or meter shown beside a battery) is rendering: a new
release of a renderer changes the bytes of a re-run, not its values, so it must not send
a correction. The export ledger keeps this fingerprint beside each issue's sha256s.

Values enter at 1e-9 kWh (the rule book's tolerance), so a rebuild whose floating-point
sums differ in the 15th digit is the same issue.
"""

from __future__ import annotations

import hashlib

from vbatt.exports.model import ExportBatch, Registers

_SCALE = 1e9  # 1e-9 kWh


def _kwh(value: float) -> str:
    return str(round(value * _SCALE))


def _registers(r: Registers) -> str:
    values = (r.level, r.charged_total, r.discharged_total, r.overflow_total)
    values += (r.shortfall_total, r.forfeited_total)
    return r.at.isoformat() + ":" + ",".join(_kwh(v) for v in values)


def values_fingerprint(batch: ExportBatch) -> str:
    """sha256 of the batch's values in a fixed text form (ordered as the batch is)."""
    digest = hashlib.sha256()
    digest.update(f"{batch.partner_id}|{batch.period.label}\n".encode())
    for battery in batch.batteries:
        digest.update(f"B|{battery.battery_id}|{battery.metering_point}\n".encode())
        digest.update(f"R|{_registers(battery.registers_start)}\n".encode())
        digest.update(f"R|{_registers(battery.registers_end)}\n".encode())
        for row in battery.intervals:
            flows = (row.import_kwh, row.export_kwh, row.charge, row.discharge, row.overflow)
            flows += (row.shortfall, row.forfeited, row.level)
            line = ",".join(_kwh(v) for v in flows)
            digest.update(f"{row.start.isoformat()}|{line}|{int(row.estimated)}\n".encode())
    return digest.hexdigest()
