"""The hook maps an Airflow connection onto SmartMeConfig; no running Airflow needed."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
if str(PLUGINS) not in sys.path:
    sys.path.insert(0, str(PLUGINS))

from airflow.sdk import Connection  # noqa: E402

from smartme_hook import SmartMeHook, config_from_connection  # noqa: E402
from vbatt.ingest.smartme import SmartMeClient  # noqa: E402


def conn(**kwargs: Any) -> Connection:
    extra = kwargs.pop("extra", None)
    return Connection(
        conn_id=kwargs.pop("conn_id", "smartme_test"),
        conn_type="smartme",
        extra=json.dumps(extra) if extra is not None else None,
        **kwargs,
    )


def test_hook_identity() -> None:
    assert SmartMeHook.conn_name_attr == "smartme_conn_id"
    assert SmartMeHook.default_conn_name == "smartme_default"
    assert SmartMeHook.conn_type == "smartme"
    assert SmartMeHook().smartme_conn_id == "smartme_default"


def test_api_key_with_tuning_from_extra() -> None:
    cfg = config_from_connection(
        conn(
            host="https://api.smart-me.com",
            extra={"api_key": "k-123456", "rate": "2.5", "timeout": 10, "max_retries": "7"},
        )
    )
    assert (cfg.auth, cfg.api_key, cfg.base_url) == (
        "api_key",
        "k-123456",
        "https://api.smart-me.com",
    )
    assert (cfg.rate, cfg.timeout, cfg.max_retries) == (2.5, 10.0, 7)
    assert cfg.conn_id == "smartme_test"


def test_login_password_is_basic_auth_and_host_gets_a_scheme() -> None:
    cfg = config_from_connection(conn(host="smart-me.com", login="alice", password="pw-123456"))
    assert (cfg.auth, cfg.username, cfg.password) == ("basic", "alice", "pw-123456")
    assert cfg.base_url == "https://smart-me.com"
    assert cfg.api_root == "https://smart-me.com/api"  # legacy host detected


def test_port_is_kept() -> None:
    cfg = config_from_connection(conn(host="http://127.0.0.1", port=8123, login="a", password="b"))
    assert cfg.base_url == "http://127.0.0.1:8123"


def test_oauth_client_credentials() -> None:
    cfg = config_from_connection(
        conn(
            host="https://api.smart-me.com",
            extra={
                "client_id": "cid",
                "client_secret": "cs-123456",
                "token_url": "https://login.example/oauth/token",
                "api_style": "current",
            },
        )
    )
    assert (cfg.auth, cfg.client_id, cfg.client_secret) == ("oauth2", "cid", "cs-123456")
    assert cfg.resolved_token_url == "https://login.example/oauth/token"
    assert cfg.scope == "device.read"
    assert "cs-123456" not in repr(cfg)


def test_api_key_wins_over_login() -> None:
    cfg = config_from_connection(
        conn(host="https://api.smart-me.com", login="a", password="b", extra={"api_key": "key"})
    )
    assert cfg.auth == "api_key"


def test_missing_credentials_and_host_say_what_to_fix() -> None:
    with pytest.raises(ValueError, match="no credentials"):
        config_from_connection(conn(host="https://api.smart-me.com"))
    with pytest.raises(ValueError, match="host"):
        config_from_connection(conn(login="a", password="b"))
    with pytest.raises(ValueError, match="needs client_secret"):
        config_from_connection(conn(host="https://x.example", extra={"client_id": "c"}))


def test_connection_from_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMARTME_DEFAULT",
        json.dumps(
            {
                "conn_type": "smartme",
                "host": "https://smart-me.com/api",
                "extra": {"api_key": "env-key-123456", "rate": 1},
            }
        ),
    )
    client = SmartMeHook().get_client()
    try:
        assert isinstance(client, SmartMeClient)
        assert client.config.api_key == "env-key-123456" and client.config.rate == 1.0
        assert client.config.conn_id == "smartme_default"
        assert client.config.api_root == "https://smart-me.com/api"
        assert "env-key-123456" not in repr(client)
    finally:
        client.close()


def test_hook_client_reads_from_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    from vbatt.simulator import running
    from vbatt.simulator.app import DEMO_PASSWORD, DEMO_USER
    from vbatt.simulator.households import ground_truth

    with running(meters=2, seed=3) as url:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SMARTME_SIM",
            json.dumps(
                {
                    "conn_type": "smartme",
                    "host": url,
                    "login": DEMO_USER,
                    "password": DEMO_PASSWORD,
                    "extra": {"rate": 50},
                }
            ),
        )
        start = datetime(2025, 3, 1, tzinfo=UTC)
        with SmartMeHook(smartme_conn_id="smartme_sim").get_client() as client:
            result = client.readings("SIM-0002", start, start + timedelta(hours=2))
    assert len(result.readings) == 9 and not result.rejected
    last = result.readings[-1]
    assert (last.import_kwh, last.export_kwh) == ground_truth("SIM-0002", last.ts, seed=3)
