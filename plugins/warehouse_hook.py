"""The warehouse as Airflow sees it: connection ``warehouse_default``, else the embedded one.

Adapters only: the URL goes to the same ``vbatt`` functions the CLI uses, and the
profile mapping hands the same connection to dbt through Cosmos.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

try:  # Airflow 3: hooks live in the task SDK
    from airflow.sdk.bases.hook import BaseHook
except ImportError:  # pragma: no cover - Airflow 2
    from airflow.hooks.base import BaseHook

from cosmos.profiles.postgres.user_pass import PostgresUserPasswordProfileMapping

from vbatt.settings import get_settings
from vbatt.warehouse.embedded import warehouse_url


def url_from_connection(conn: Any) -> str:
    """A psycopg2 SQLAlchemy URL; a host starting with / is a Unix socket directory."""
    user = quote(conn.login or "postgres", safe="")
    password = f":{quote(conn.password, safe='')}" if conn.password else ""
    database = conn.schema or "vbatt"
    if (conn.host or "").startswith("/"):
        return (
            f"postgresql+psycopg2://{user}{password}@/{database}?host={quote(conn.host, safe='/')}"
        )
    port = f":{conn.port}" if conn.port else ""
    return f"postgresql+psycopg2://{user}{password}@{conn.host}{port}/{database}"


class WarehouseHook(BaseHook):
    conn_name_attr = "warehouse_conn_id"
    default_conn_name = "warehouse_default"
    conn_type = "postgres"
    hook_name = "vbatt warehouse"

    def __init__(self, warehouse_conn_id: str | None = None) -> None:
        super().__init__()
        self.warehouse_conn_id = warehouse_conn_id or get_settings().warehouse_conn_id

    def get_url(self) -> str:
        try:
            conn = self.get_connection(self.warehouse_conn_id)
        except Exception:  # noqa: BLE001 - not defined: the project's own warehouse
            return warehouse_url()
        return url_from_connection(conn)


class WarehouseProfileMapping(PostgresUserPasswordProfileMapping):
    """Cosmos profile from ``warehouse_default``; unlike Cosmos's own mapping it accepts
    a connection without password (the embedded cluster's Unix socket)."""

    required_fields = ["host", "user", "dbname"]

    @property
    def secret_fields(self) -> list[str]:  # type: ignore[override]
        return ["password"] if self.conn.password else []

    @property
    def profile(self) -> dict[str, Any]:
        profile = {"port": 5432, **self.mapped_params, **self.profile_args}
        profile["password"] = self.get_env_var_format("password") if self.conn.password else ""
        return self.filter_null(profile)
