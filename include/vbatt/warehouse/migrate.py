"""Versioned, idempotent migrations of the raw layer.

Each ``migrations/NNNN_name.sql`` runs once per raw schema, inside a transaction, and is
recorded in ``<raw>.schema_migrations``; re-running applies only what is missing. The
raw schema's name is a parameter so that ``vbatt simulate`` can build an isolated copy.
"""

from __future__ import annotations

import re
from importlib import resources

from sqlalchemy import Engine, text

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def migration_files() -> list[tuple[str, str]]:
    folder = resources.files("vbatt.warehouse") / "migrations"
    files = sorted(p for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(p.name.removesuffix(".sql"), p.read_text()) for p in files]


def check_schema_name(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"not a plain lower-case schema name: {schema!r}")
    return schema


def migrate(engine: Engine, raw_schema: str = "raw") -> list[str]:
    """Apply pending migrations; return the versions applied now."""
    raw = check_schema_name(raw_schema)
    applied_now = []
    with engine.begin() as conn:
        # One migrator at a time per database (CLI and Airflow tasks may race).
        conn.execute(text("select pg_advisory_xact_lock(hashtext('vbatt-migrate'))"))
        conn.execute(text(f"create schema if not exists {raw}"))
        conn.execute(
            text(
                f"create table if not exists {raw}.schema_migrations ("
                " version text primary key, applied_at timestamptz not null default now())"
            )
        )
        done = {r[0] for r in conn.execute(text(f"select version from {raw}.schema_migrations"))}
        for version, sql in migration_files():
            if version in done:
                continue
            conn.exec_driver_sql(sql.replace("{raw}", raw))
            conn.execute(
                text(f"insert into {raw}.schema_migrations (version) values (:v)"), {"v": version}
            )
            applied_now.append(version)
    return applied_now
