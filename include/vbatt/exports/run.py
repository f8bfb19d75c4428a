"""Export a partner's period end to end: read, render, issue, deliver.

The CLI (``vbatt export``) and the ``daily_settlement`` DAG both call :func:`export_partner`,
so a file made by hand and a file made by the schedule are the same file.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from sqlalchemy import Engine, create_engine

from vbatt.exports.data import read_batch
from vbatt.exports.delivery import deliver
from vbatt.exports.issue import Gate, IssueResult, issue_format
from vbatt.exports.model import Period
from vbatt.exports.partners import FormatConfig, PartnerConfig
from vbatt.settings import get_settings
from vbatt.warehouse.db import forget_inherited_connections

log = logging.getLogger(__name__)


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
    workers: int | None = None,
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
        workers = get_settings().export_workers if workers is None else workers
        # the batch (a million objects for 10,000 batteries) stays alive and unchanged while
        # the formats render: keep the cyclic GC from walking it again and again (and, in
        # forked workers, from copying every page it touches)
        gc.freeze()
        try:
            results = _issue_all(engine, batch, chosen, outbox_dir, raw_schema, gate, workers)
        finally:
            gc.unfreeze()
    delivered = deliver(engine, partner, outbox_dir, raw_schema) if send else []
    return results, delivered


class ExportHeldBack(RuntimeError):
    """The quality gate held back some of a partner's files; the message says which and why."""


def export_due(url: str, partner_id: str, settled_day) -> list[dict]:
    """What ``daily_settlement`` does per partner once a local day is settled: issue and
    deliver every period now due (with the quality gate), and report each format entry."""
    from vbatt.exports.gate import export_gate
    from vbatt.exports.partners import get_partner
    from vbatt.exports.reissue import mark_reissued, periods_to_reissue
    from vbatt.exports.schedule import periods_due
    from vbatt.warehouse.db import get_engine

    settings = get_settings()
    partner = get_partner(settings.partners_dir, partner_id)
    summary, held = [], []
    due = periods_due(partner, settled_day)
    # issued periods touched by a backdated change of battery terms: issued again
    with get_engine(url).begin() as conn:
        reissue, requests = periods_to_reissue(conn, partner)
    labels = {p.label for p in due}
    for period in [p for p in reissue if p.label not in labels] + due:
        results, _delivered = export_partner(
            get_engine(url), partner, period, settings.outbox_dir, gate=export_gate(url)
        )
        for r in results:
            summary.append(
                {
                    "format": r.format_key,
                    "period": r.period_label,
                    "status": r.status,
                    "version": r.version,
                    "files": [p.name for p in r.files],
                    "reason": r.reason,
                }
            )
            if r.status == "blocked":
                held.append(f"{r.format_key} {r.period_label}: {r.reason}")
    if held:
        raise ExportHeldBack(
            f"{partner_id}: files held back, nothing of them sent: " + "; ".join(held)
        )
    with get_engine(url).begin() as conn:
        mark_reissued(conn, requests)
    return summary


# What the forked workers inherit (set just before the fork; nothing is pickled but results)
_JOB: tuple | None = None


def _issue_in_child(index: int) -> IssueResult:
    engine, batch, formats, outbox_dir, raw_schema, gate = _JOB
    forget_inherited_connections(engine)
    own = create_engine(engine.url)
    try:
        return issue_format(own, batch, formats[index], outbox_dir, raw_schema, gate)
    finally:
        own.dispose()


def _issue_all(
    engine: Engine,
    batch,
    formats: list[FormatConfig],
    outbox_dir: Path,
    raw_schema: str,
    gate: Gate | None,
    workers: int,
) -> list[IssueResult]:
    """Each format entry in its own process (rendering is pure Python, one core each);
    the batch is shared by fork, not copied. Where processes cannot be forked (inside a
    daemonic worker, say), the entries are issued one after the other."""
    global _JOB
    if workers > 1 and len(formats) > 1 and "fork" in multiprocessing.get_all_start_methods():
        _JOB = (engine, batch, formats, outbox_dir, raw_schema, gate)
        try:
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(min(workers, len(formats)), mp_context=context) as pool:
                return list(pool.map(_issue_in_child, range(len(formats))))
        except AssertionError as exc:  # "daemonic processes are not allowed to have children"
            log.info("issuing formats one by one: %s", exc)
        finally:
            _JOB = None
    return [issue_format(engine, batch, fmt, outbox_dir, raw_schema, gate) for fmt in formats]
