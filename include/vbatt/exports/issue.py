"""Issuing a partner's files for a period: exactly once, reproducibly, with corrections.

The export ledger (``raw.export_files``) remembers what each file of an issue contained
(sha256), the values it told the partner (``values_sha256``, see ``fingerprint.py``) and the
context it was rendered with (reference, document date). A re-run renders with that same
context: unchanged data gives byte-identical files and nothing is issued or delivered
again. Changed values (late readings, a backfill, a backdated change of terms) give a
correction: version n+1 with a new reference, its files named ``..._v<n>``; the earlier
version is marked superseded, never deleted. A renderer that now writes the same values
differently (a new release) changes nothing already issued: the issued files stay as sent.
Issues recorded before the values fingerprint existed are judged by their bytes once; an
unchanged re-run adopts the fingerprint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, text

from vbatt.exports.fingerprint import values_fingerprint
from vbatt.exports.formats import renderer
from vbatt.exports.model import ExportBatch, ExportFile, RenderContext
from vbatt.exports.outbox import outbox_path, write_atomically
from vbatt.exports.partners import FormatConfig

Gate = Callable[[ExportBatch, FormatConfig, list[ExportFile]], str | None]


@dataclass
class IssueResult:
    partner_id: str
    format_key: str
    period_label: str
    status: str  # new | correction | unchanged | blocked | empty (no data: nothing issued)
    version: int = 0
    reference: str = ""
    files: list[Path] = field(default_factory=list)
    rows: int = 0
    reason: str = ""  # why blocked


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def versioned(file: ExportFile, version: int) -> ExportFile:
    """A correction's files carry their version, so the original stays on disk beside them."""
    if version == 1:
        return file
    stem, dot, suffix = file.name.rpartition(".")
    name = f"{stem}_v{version}.{suffix}" if dot else f"{file.name}_v{version}"
    return replace(file, name=name)


def _render(batch: ExportBatch, fmt: FormatConfig, ctx: RenderContext) -> list[ExportFile]:
    files = renderer(fmt.format).render(batch, fmt.options, ctx)
    return [versioned(f, ctx.version) for f in files]


def _latest_issue(conn, raw: str, batch: ExportBatch, key: str) -> list[dict]:
    rows = conn.execute(
        text(
            f"select version, reference, created_at, file_name, sha256, rows, status, values_sha256"
            f" from {raw}.export_files"
            f" where partner_id = :p and format_key = :k and period_label = :l and version = ("
            f"   select max(version) from {raw}.export_files"
            f"   where partner_id = :p and format_key = :k and period_label = :l)"
            f" order by file_name"
        ),
        {"p": batch.partner_id, "k": key, "l": batch.period.label},
    )
    return [dict(r._mapping) for r in rows]


def _next_reference(conn, raw: str, partner_id: str) -> str:
    n = conn.execute(
        text(
            f"insert into {raw}.export_references as r (partner_id, last_reference) values (:p, 1)"
            f" on conflict (partner_id) do update set last_reference = r.last_reference + 1"
            f" returning last_reference"
        ),
        {"p": partner_id},
    ).scalar_one()
    return f"VB{n:08d}"


def issue_format(
    engine: Engine,
    batch: ExportBatch,
    fmt: FormatConfig,
    outbox_dir: Path,
    raw_schema: str = "raw",
    gate: Gate | None = None,
    now: datetime | None = None,
) -> IssueResult:
    """Render one format entry of the partner for the batch's period and record it."""
    key, label = fmt.key, batch.period.label
    try:
        return _issue(engine, batch, fmt, outbox_dir, raw_schema, gate, now)
    except (
        _Blocked
    ) as blocked:  # rolled back: nothing written or recorded (its reference stays unused)
        return IssueResult(batch.partner_id, key, label, "blocked", reason=str(blocked))


class _Blocked(Exception):
    pass


def _unchanged(conn, raw, batch, fmt, outbox_dir, latest, values) -> IssueResult | None:
    """The latest issue, when it still says what the batch says; None: issue a correction.

    Same values: the files are re-rendered with the issue's context and put back in the
    outbox where they still render to the recorded bytes (a file removed from the outbox is
    restored); where a newer renderer writes them differently, the file as sent stays.
    """
    first = latest[0]
    ctx = RenderContext(first["reference"], first["created_at"].astimezone(UTC), first["version"])
    files = _render(batch, fmt, ctx)
    recorded = {r["file_name"]: r["sha256"] for r in latest}
    same_bytes = {f.name: sha256(f.content) for f in files} == recorded
    if first["values_sha256"] is None:  # issued before values were fingerprinted
        if not same_bytes:
            return None
        conn.execute(
            text(
                f"update {raw}.export_files set values_sha256 = :values"
                f" where partner_id = :p and format_key = :k and period_label = :l and version = :v"
            ),
            {
                "values": values,
                "p": batch.partner_id,
                "k": fmt.key,
                "l": batch.period.label,
                "v": ctx.version,
            },
        )
    elif first["values_sha256"] != values:
        return None
    for f in files:
        if recorded.get(f.name) == sha256(f.content):
            path = outbox_path(outbox_dir, batch.partner_id, fmt.key, f.name)
            write_atomically(path, f.content)  # restores a file removed from the outbox
    paths = [outbox_path(outbox_dir, batch.partner_id, fmt.key, name) for name in sorted(recorded)]
    rows = sum(r["rows"] for r in latest)
    return IssueResult(
        batch.partner_id,
        fmt.key,
        batch.period.label,
        "unchanged",
        ctx.version,
        ctx.reference,
        paths,
        rows,
    )


def _issue(engine, batch, fmt, outbox_dir, raw_schema, gate, now) -> IssueResult:
    key, label = fmt.key, batch.period.label
    with engine.begin() as conn:
        # one issuer per partner and format entry at a time: versions stay gap-free; the
        # partner's other formats may be issued in parallel (vbatt.exports.run)
        conn.execute(
            text("select pg_advisory_xact_lock(hashtext(:k))"),
            {"k": f"vbatt-export:{batch.partner_id}:{key}"},
        )
        latest = _latest_issue(conn, raw_schema, batch, key)
        values = values_fingerprint(batch)
        if latest and (
            unchanged := _unchanged(conn, raw_schema, batch, fmt, outbox_dir, latest, values)
        ):
            return unchanged
        version = latest[0]["version"] + 1 if latest else 1
        created = (now or datetime.now(UTC)).replace(microsecond=0)
        # the counter is taken in a transaction of its own, so parallel issues of the
        # partner's formats do not wait on its row; a blocked issue leaves a gap
        with engine.begin() as counter:
            reference = _next_reference(counter, raw_schema, batch.partner_id)
        ctx = RenderContext(reference, created, version)
        files = _render(batch, fmt, ctx)
        if gate is not None and (reason := gate(batch, fmt, files)):
            raise _Blocked(reason)
        paths = [outbox_path(outbox_dir, batch.partner_id, key, f.name) for f in files]
        for f, path in zip(files, paths, strict=True):
            write_atomically(path, f.content)
        conn.execute(  # one statement for all files (SDAT-CH: one file per battery)
            text(
                f"insert into {raw_schema}.export_files (partner_id, format_key, period_label, version,"
                f" reference, created_at, file_name, sha256, rows, status, values_sha256)"
                f" values (:p, :k, :l, :v, :r, :c, :n, :s, :rows, 'issued', :values)"
            ),
            [
                {
                    "p": batch.partner_id,
                    "k": key,
                    "l": label,
                    "v": version,
                    "r": ctx.reference,
                    "c": created,
                    "n": f.name,
                    "s": sha256(f.content),
                    "rows": f.rows,
                    "values": values,
                }
                for f in files
            ],
        )
        if latest:
            conn.execute(
                text(
                    f"update {raw_schema}.export_files set status = 'superseded'"
                    f" where partner_id = :p and format_key = :k and period_label = :l and version < :v"
                ),
                {"p": batch.partner_id, "k": key, "l": label, "v": version},
            )
    return IssueResult(
        batch.partner_id,
        key,
        label,
        "correction" if latest else "new",
        version,
        ctx.reference,
        paths,
        sum(f.rows for f in files),
    )
