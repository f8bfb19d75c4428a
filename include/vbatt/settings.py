"""The one place that reads the environment.

Everything configurable about a deployment (where the warehouse is, where the project
lives, Airflow connection ids, ingest tuning) is resolved here, so the CLI, the DAGs and
dbt agree without each reading environment variables on its own. The ledger's own
parameters (interval length, defaults of the rule book) are dbt vars, not settings.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path


def _project_root() -> Path:
    """The checkout holding ``dbt/``: VBATT_HOME, else the tree this package lives in."""
    if home := os.environ.get("VBATT_HOME"):
        return Path(home).resolve()
    return Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Settings:
    root: Path
    warehouse_url: str | None  # an external PostgreSQL; None = the embedded cluster
    warehouse_dir: Path  # where the embedded cluster keeps its data
    dbt_project_dir: Path
    dbt_target_path: Path
    drop_dir: Path  # file drops picked up by the file_drop DAG
    drop_refuse_empty: bool  # file_drop refuses a file without one usable value (else loads it)
    metering_points_file: Path  # SDAT-CH metering points -> meters (docs/inputs.md)
    outbox_dir: Path
    smartme_conn_id: str
    warehouse_conn_id: str
    ingest_lookback_minutes: int
    dbt_threads: int
    task_retries: int  # Airflow task retries; the demo and tests run with 0
    partners_dir: Path  # one YAML per partner (formats, ids, delivery)
    api_run_dir: Path  # pid file and log of a detached `vbatt serve`
    expectations_dir: Path  # the Great Expectations suites (JSON), one file per suite
    data_docs_dir: Path  # HTML validation reports (git-ignored)
    max_household_kw: float  # quality gate: more power (kW) than a household draws or feeds in
    max_estimated_share: float  # quality gate: share of estimated intervals per battery-day
    # scale-out and operations (docs/scaling.md, docs/operations.md)
    ingest_shard_size: int  # meters per mapped meter_ingest task
    smartme_pool: str  # Airflow pool that caps concurrent smart-me fetches across workers
    smartme_pool_slots: int
    alert_webhook_url: str  # POSTed a JSON message when a task fails or a deadline passes
    alert_emails: tuple[str, ...]  # mailed the same (needs Airflow's [smtp] settings)
    settlement_deadline_minutes: int  # daily_settlement must finish this long after queueing
    backup_dir: Path  # where `vbatt warehouse backup` writes without a file name
    export_workers: int  # processes issuing a partner's formats side by side
    # smart-me Realtime API receiver (docs/realtime.md): off unless both are set
    realtime_user: str
    realtime_password: str
    realtime_retention_days: int  # full-resolution realtime days kept; 0 = all

    @property
    def embedded(self) -> bool:
        return self.warehouse_url is None


@cache
def get_settings() -> Settings:
    root = _project_root()
    env = os.environ.get
    return Settings(
        root=root,
        warehouse_url=env("WAREHOUSE_URL") or None,
        warehouse_dir=Path(env("VBATT_WAREHOUSE_DIR", root / ".warehouse")),
        dbt_project_dir=root / "dbt",
        dbt_target_path=Path(env("VBATT_DBT_TARGET", root / "dbt" / "target")),
        drop_dir=Path(env("VBATT_DROP_DIR", root / "data" / "drop")),
        drop_refuse_empty=_flag("VBATT_DROP_REFUSE_EMPTY", env("VBATT_DROP_REFUSE_EMPTY", "")),
        metering_points_file=Path(
            env("VBATT_METERING_POINTS", root / "partners" / "metering_points.csv")
        ),
        outbox_dir=Path(env("VBATT_OUTBOX_DIR", root / "outbox")),
        smartme_conn_id=env("VBATT_SMARTME_CONN_ID", "smartme_default"),
        warehouse_conn_id=env("VBATT_WAREHOUSE_CONN_ID", "warehouse_default"),
        ingest_lookback_minutes=int(env("VBATT_INGEST_LOOKBACK_MINUTES", "120")),
        dbt_threads=int(env("VBATT_DBT_THREADS", "2")),
        task_retries=int(env("VBATT_TASK_RETRIES", "3")),
        partners_dir=Path(env("VBATT_PARTNERS_DIR", root / "partners")),
        api_run_dir=Path(env("VBATT_API_RUN_DIR", root / ".api")),
        expectations_dir=root / "expectations",
        data_docs_dir=Path(env("VBATT_DATA_DOCS_DIR", root / "build" / "data_docs")),
        max_household_kw=float(env("VBATT_MAX_HOUSEHOLD_KW", "60")),
        max_estimated_share=float(env("VBATT_MAX_ESTIMATED_SHARE", "0.25")),
        ingest_shard_size=positive_whole_number(
            "VBATT_INGEST_SHARD_SIZE", env("VBATT_INGEST_SHARD_SIZE", "250")
        ),
        smartme_pool=env("VBATT_SMARTME_POOL", "smartme_api"),
        smartme_pool_slots=positive_whole_number(
            "VBATT_SMARTME_POOL_SLOTS", env("VBATT_SMARTME_POOL_SLOTS", "4")
        ),
        alert_webhook_url=env("VBATT_ALERT_WEBHOOK_URL", ""),
        alert_emails=tuple(
            e.strip() for e in env("VBATT_ALERT_EMAILS", "").split(",") if e.strip()
        ),
        settlement_deadline_minutes=positive_whole_number(
            "VBATT_SETTLEMENT_DEADLINE_MINUTES", env("VBATT_SETTLEMENT_DEADLINE_MINUTES", "180")
        ),
        backup_dir=Path(env("VBATT_BACKUP_DIR", root / "backups")),
        export_workers=positive_whole_number(
            "VBATT_EXPORT_WORKERS", env("VBATT_EXPORT_WORKERS", str(min(2, os.cpu_count() or 1)))
        ),
        realtime_user=env("VBATT_REALTIME_USER", ""),
        realtime_password=env("VBATT_REALTIME_PASSWORD", ""),
        realtime_retention_days=_non_negative(
            "VBATT_REALTIME_RETENTION_DAYS", env("VBATT_REALTIME_RETENTION_DAYS", "0")
        ),
    )


def _flag(name: str, value: str) -> bool:
    text = value.strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name} must be true or false, not {value!r}")


def positive_whole_number(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ValueError(f"{name} must be a positive whole number, not {value!r}")
    return number


def _non_negative(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise ValueError(f"{name} must be a whole number of 0 or more, not {value!r}")
    return number


def smartme_credentials() -> dict[str, str]:
    """The smart-me cloud for the CLI (Airflow uses the connection smartme_default), as the
    keyword arguments of ``vbatt.ingest.smartme.SmartMeConfig``: SMARTME_URL plus
    SMARTME_API_KEY, or SMARTME_USER and SMARTME_PASSWORD."""
    env = os.environ.get
    url = env("SMARTME_URL", "https://api.smart-me.com")
    if env("SMARTME_API_KEY"):
        return {"base_url": url, "auth": "api_key", "api_key": env("SMARTME_API_KEY")}
    if env("SMARTME_USER"):
        return {
            "base_url": url,
            "auth": "basic",
            "username": env("SMARTME_USER"),
            "password": env("SMARTME_PASSWORD", ""),
        }
    raise ValueError("set SMARTME_API_KEY, or SMARTME_USER and SMARTME_PASSWORD, for vbatt fetch")


def provide_runtime_dir() -> None:
    """A runtime directory (``XDG_RUNTIME_DIR``) where the session has none.

    The embedded warehouse's server library asks platformdirs for one when it is imported;
    root shells, cron, containers and CI have no ``XDG_RUNTIME_DIR``, and platformdirs then
    warns (``RuntimeDirWarning``) on every command that opens the warehouse: noise nobody
    can act on. Given here as the private directory platformdirs would fall back to
    (``<tmp>/runtime-<uid>``, mode 0700, owned by the user), so nothing else changes. One
    that is set is left alone: if it is wrong, its warning is one to act on.
    """
    if os.environ.get("XDG_RUNTIME_DIR") or not hasattr(os, "getuid"):
        return
    path = Path(tempfile.gettempdir()) / f"runtime-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
    except OSError:
        return
    if path.is_symlink() or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return  # not ours to use: platformdirs says why
    os.environ["XDG_RUNTIME_DIR"] = str(path)
