"""The quality gate before a partner's files go out (issue: nothing wrong reaches a bill).

Each format entry's rendered files are read back (:mod:`vbatt.exports.readback`) and
compared with the warehouse by the ``exports`` suite of Great Expectations. A failure
holds back that entry of that partner only: nothing is written, recorded or delivered,
and the summary says which series differ.
"""

from __future__ import annotations

from vbatt.exports.issue import Gate
from vbatt.exports.model import ExportBatch, ExportFile
from vbatt.exports.partners import FormatConfig
from vbatt.exports.readback import contents


def export_gate(url: str | None, schema: str = "analytics", raw_schema: str = "raw") -> Gate:
    def gate(batch: ExportBatch, fmt: FormatConfig, files: list[ExportFile]) -> str | None:
        import pandas as pd

        from vbatt.quality import check_export

        rows = contents(batch, fmt, files)
        found = {r["channel"] for r in rows}
        # what the entry must carry: the partner's profile channels (or the entry's own
        # choice), so a channel missing from the files entirely is caught too; IS-E
        # layouts choose their channels in the template
        expected = {c.name for c in batch.channels if c.kind == "profile"}
        if fmt.options.get("channels"):
            expected &= set(fmt.options["channels"])
        if fmt.format == "ise":
            expected = found
        if not expected:  # a layout without quarter hours (registers only): nothing to compare
            return None
        result = check_export(
            url,
            batch.partner_id,
            batch.period.start_utc,
            batch.period.end_utc,
            pd.DataFrame(rows, columns=["battery_id", "channel", "value_count", "sum_kwh"]),
            schema=schema,
            raw_schema=raw_schema,
            channels=sorted(expected | found),
            battery_ids=[b.battery_id for b in batch.batteries],
        )
        return None if result.ok else result.summary

    return gate
