"""Airflow hook that turns a ``smartme`` connection into a ``SmartMeClient``.

Kept thin on purpose: all behaviour lives in ``vbatt.ingest.smartme`` so it is testable
without Airflow; the hook only maps connection fields to ``SmartMeConfig``:

* host -> base URL (``https://`` is assumed when the scheme is missing; port is kept);
* login/password -> HTTP basic auth;
* extra ``api_key`` -> API key auth (wins over login/password);
* extra ``client_id``/``client_secret`` [``token_url``, ``scope``] -> OAuth2 client credentials;
* extra ``rate``, ``timeout``, ``max_retries``, ``backoff_base``, ``api_style``,
  ``obis_value_unit``, ``interval_minutes`` -> passed through.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

try:  # Airflow 3: hooks live in the task SDK
    from airflow.sdk.bases.hook import BaseHook
except ImportError:  # pragma: no cover - Airflow 2
    from airflow.hooks.base import BaseHook

from vbatt.ingest.smartme import SmartMeClient, SmartMeConfig

_PASS_THROUGH = {
    "rate": float,
    "timeout": float,
    "max_retries": int,
    "backoff_base": float,
    "api_style": str,
    "obis_value_unit": str,
    "interval_minutes": int,
    "scope": str,
    "token_url": str,
}


def _extra(conn: Any) -> dict[str, Any]:
    extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else json.loads(conn.extra or "{}")
    return dict(extra or {})


def _base_url(conn: Any) -> str:
    host = (conn.host or "").strip().rstrip("/")
    if not host:
        raise ValueError(f"connection {conn.conn_id}: host (the smart-me base URL) is empty")
    if "://" not in host:
        host = f"https://{host}"
    parts = urlsplit(host)
    if conn.port and parts.port is None:
        host = urlunsplit(parts._replace(netloc=f"{parts.netloc}:{conn.port}"))
    return host


def config_from_connection(conn: Any) -> SmartMeConfig:
    """Map an Airflow ``Connection`` onto ``SmartMeConfig`` (no network access)."""
    extra = _extra(conn)
    kwargs: dict[str, Any] = {"base_url": _base_url(conn), "conn_id": conn.conn_id}
    if extra.get("api_key"):
        kwargs |= {"auth": "api_key", "api_key": extra["api_key"]}
    elif extra.get("client_id") or extra.get("client_secret"):
        kwargs |= {
            "auth": "oauth2",
            "client_id": extra.get("client_id"),
            "client_secret": extra.get("client_secret"),
        }
    elif conn.login:
        kwargs |= {"auth": "basic", "username": conn.login, "password": conn.password}
    else:
        raise ValueError(
            f"connection {conn.conn_id} has no credentials: set login/password, or extra "
            "api_key, or extra client_id/client_secret"
        )
    for key, cast in _PASS_THROUGH.items():
        if extra.get(key) not in (None, ""):
            kwargs[key] = cast(extra[key])
    return SmartMeConfig(**kwargs)


class SmartMeHook(BaseHook):
    """Gives tasks a configured smart-me client for connection ``smartme_conn_id``."""

    conn_name_attr = "smartme_conn_id"
    default_conn_name = "smartme_default"
    conn_type = "smartme"
    hook_name = "smart-me cloud"

    def __init__(self, smartme_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.smartme_conn_id = smartme_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema"],
            "relabeling": {"host": "Base URL", "login": "Username", "password": "Password"},
            "placeholders": {
                "host": "https://api.smart-me.com",
                "extra": '{"api_key": "...", "rate": 5, "timeout": 30, "max_retries": 5}',
            },
        }

    def get_config(self) -> SmartMeConfig:
        return config_from_connection(self.get_connection(self.smartme_conn_id))

    def get_conn(self) -> SmartMeClient:
        return self.get_client()

    def get_client(self) -> SmartMeClient:
        return SmartMeClient(self.get_config())
