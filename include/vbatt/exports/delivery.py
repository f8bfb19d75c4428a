"""Delivery of issued files: the outbox always, and SFTP where the partner has it.

A file is delivered once: the export ledger marks it ``delivered`` with where and when,
and a later run only retries files still ``issued`` (an upload that failed). Uploads go
to a temporary name and are renamed, so the partner's side never sees half a file.
"""

from __future__ import annotations

import posixpath
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, text

from vbatt.exports.outbox import outbox_path
from vbatt.exports.partners import PartnerConfig


def pending(engine: Engine, partner_id: str, raw_schema: str = "raw") -> list[dict]:
    with engine.connect() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(
                text(
                    f"select format_key, period_label, version, file_name from {raw_schema}.export_files"
                    f" where partner_id = :p and status = 'issued' order by period_label, format_key, file_name"
                ),
                {"p": partner_id},
            )
        ]


def _mark(engine: Engine, raw_schema: str, partner_id: str, row: dict, target: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                f"update {raw_schema}.export_files set status = 'delivered', delivered_to = :t, delivered_at = :at"
                f" where partner_id = :p and format_key = :k and period_label = :l and version = :v"
                f" and file_name = :n and status = 'issued'"
            ),
            {
                "t": target,
                "at": datetime.now(UTC),
                "p": partner_id,
                "k": row["format_key"],
                "l": row["period_label"],
                "v": row["version"],
                "n": row["file_name"],
            },
        )


def deliver(
    engine: Engine, partner: PartnerConfig, outbox_dir: Path, raw_schema: str = "raw"
) -> list[str]:
    """Deliver every file of the partner still waiting; return the names delivered now."""
    rows = pending(engine, partner.partner_id, raw_schema)
    if not rows:
        return []
    sftp = partner.delivery.sftp
    if sftp is None:  # the partner collects from the outbox: being there is delivery
        for row in rows:
            _mark(engine, raw_schema, partner.partner_id, row, "outbox")
        return [r["file_name"] for r in rows]
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    delivered = []
    hook = SFTPHook(ssh_conn_id=sftp.conn_id)
    with hook.get_managed_conn() as client:
        for row in rows:
            local = outbox_path(outbox_dir, partner.partner_id, row["format_key"], row["file_name"])
            remote_dir = posixpath.join(sftp.remote_dir, row["format_key"])
            _makedirs(client, remote_dir)
            remote = posixpath.join(remote_dir, row["file_name"])
            client.put(str(local), remote + ".part")
            client.posix_rename(remote + ".part", remote)
            _mark(engine, raw_schema, partner.partner_id, row, f"sftp://{sftp.conn_id}/{remote}")
            delivered.append(row["file_name"])
    return delivered


def _makedirs(client, path: str) -> None:
    parts = [p for p in path.split("/") if p and p != "."]
    current = "/" if path.startswith("/") else "."
    for part in parts:
        current = posixpath.join(current, part)
        try:
            client.stat(current)
        except OSError:
            client.mkdir(current)
