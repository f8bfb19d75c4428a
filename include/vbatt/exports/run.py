"""Export a partner's period end to end: read, render, issue, deliver.

The CLI (``vbatt export``) and the ``daily_settlement`` DAG both call :func:`export_partner`,
so a file made by hand and a file made by the schedule are the same file.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from vbatt.exports.data import read_batch
from vbatt.exports.delivery import deliver
from vbatt.exports.issue import Gate, IssueResult, issue_format
from vbatt.exports.model import Period
from vbatt.exports.partners import PartnerConfig


def export_partner(
    engine: Engine,
    partner: PartnerConfig,
    period: Period,
    outbox_dir: Path,
    formats: list[str] | None = None,
    schema: str = "analytics",
    raw_schema: str = "raw",
    gate: Gate | None = None,
    send: bool = True,
) -> tuple[list[IssueResult], list[str]]:
    """Issue the partner's formats (all, or those named by format or entry name) for the
    period and deliver what is waiting; returns the issues and the file names delivered."""
    chosen = [
        f for f in partner.formats if formats is None or f.format in formats or f.key in formats
    ]
    if not chosen:
        offered = ", ".join(f.key for f in partner.formats)
        raise ValueError(
            f"partner {partner.partner_id} receives no format {formats}; it receives {offered}"
        )
    batch = read_batch(engine, partner, period, schema=schema, raw_schema=raw_schema)
    if not any(b.intervals for b in batch.batteries):  # nothing computed yet: issue nothing
        results = [IssueResult(partner.partner_id, f.key, period.label, "empty") for f in chosen]
    else:
        results = [issue_format(engine, batch, fmt, outbox_dir, raw_schema, gate) for fmt in chosen]
    delivered = deliver(engine, partner, outbox_dir, raw_schema) if send else []
    return results, delivered
