"""Periods to issue again after a backdated change of battery terms (rule book,
"Configuration over time": the periods a backdated change touches are re-issued as
corrections).

A change recorded with ``backdate`` leaves a request in ``raw.reissue_requests``
(vbatt.warehouse.versions). Once the ledger has run after it, ``daily_settlement`` issues
every period the partner was sent from the request's date on again, with its other
periods due: a period whose values changed becomes a correction, the others are
recognised as issued and stay as sent (vbatt.exports.issue compares values, not bytes).
"""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.exc import ProgrammingError

from vbatt.exports.model import Period
from vbatt.exports.partners import PartnerConfig
from vbatt.exports.period import parse_period


def _ledger_computed_at(conn: Connection, schema: str):
    try:
        with conn.begin_nested():
            return conn.execute(
                text(f"select max(computed_at) from {schema}_intermediate.int_battery_ledger")
            ).scalar()
    except ProgrammingError:  # no ledger yet
        return None


def periods_to_reissue(
    conn: Connection, partner: PartnerConfig, schema: str = "analytics", raw_schema: str = "raw"
) -> tuple[list[Period], list[int]]:
    """The partner's issued periods touched by backdated changes the ledger has picked up
    (in time order), and the requests they answer."""
    ledger_at = _ledger_computed_at(conn, schema)
    if ledger_at is None:
        return [], []
    requests = conn.execute(
        text(
            f"select request_id, from_date from {raw_schema}.reissue_requests"
            " where partner_id = :p and done_at is null and requested_at < :ledger_at"
        ),
        {"p": partner.partner_id, "ledger_at": ledger_at},
    ).all()
    if not requests:
        return [], []
    since = min(r.from_date for r in requests)
    labels = conn.execute(
        text(f"select distinct period_label from {raw_schema}.export_files where partner_id = :p"),
        {"p": partner.partner_id},
    ).scalars()
    periods = [parse_period(label, partner.timezone) for label in labels]
    touched = sorted((p for p in periods if p.last_day >= since), key=lambda p: p.start_utc)
    return touched, [r.request_id for r in requests]


def mark_reissued(conn: Connection, request_ids: list[int], raw_schema: str = "raw") -> None:
    if request_ids:
        conn.execute(
            text(
                f"update {raw_schema}.reissue_requests set done_at = clock_timestamp()"
                " where request_id = any(:ids)"
            ),
            {"ids": request_ids},
        )
