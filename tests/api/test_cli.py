"""`vbatt keys create` prints a key once and stores its hash; `vbatt serve --detach` leaves
the API running with a pid file and `vbatt serve --stop` ends it (what make demo uses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import text

from tests.api.conftest import free_port
from vbatt.api.keys import hash_key

VBATT = str(Path(sys.executable).with_name("vbatt"))


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [VBATT, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_keys_and_detached_server(warehouse_url, engine, tmp_path):
    env = os.environ | {
        "WAREHOUSE_URL": warehouse_url,
        "VBATT_API_RUN_DIR": str(tmp_path / "api"),
        "COLUMNS": "200",
    }
    created = _run(env, "keys", "create", "--partner", "cli-partner", "--label", "test")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("vb_") and len(key) > 40
    with engine.connect() as conn:
        row = conn.execute(
            text("select partner_id, customer_id from raw.api_keys where key_hash = :h"),
            {"h": hash_key(key)},
        ).one()
    assert (row.partner_id, row.customer_id) == ("cli-partner", None)

    alone = _run(env, "keys", "create", "--customer", "c")
    assert alone.returncode == 2 and "--partner" in alone.stderr  # a customer is a partner's

    port = free_port()
    started = _run(env, "serve", "--detach", "--port", str(port))
    try:
        assert started.returncode == 0, started.stderr
        assert f"http://127.0.0.1:{port}" in started.stdout
        assert httpx.get(f"http://127.0.0.1:{port}/api/Health").status_code == 200
        devices = httpx.get(
            f"http://127.0.0.1:{port}/api/Devices", headers={"Authorization": "ApiKey nope"}
        )
        assert devices.status_code == 401
        pid = int((tmp_path / "api" / "api.pid").read_text().split()[0])
    finally:
        stopped = _run(env, "serve", "--stop")
    assert stopped.returncode == 0 and f"pid {pid}" in stopped.stdout
    assert not (tmp_path / "api" / "api.pid").exists()
    try:
        httpx.get(f"http://127.0.0.1:{port}/api/Health", timeout=2)
        raise AssertionError("the API still answers after --stop")
    except httpx.ConnectError:
        pass
    assert "no detached API" in _run(env, "serve", "--stop").stdout


def test_keys_create_write_scope(warehouse_url, engine):
    env = os.environ | {"WAREHOUSE_URL": warehouse_url, "COLUMNS": "200"}
    writer = _run(env, "keys", "create", "--partner", "cli-writer", "--write")
    assert writer.returncode == 0, writer.stderr
    assert "read and write" in writer.stdout
    reader = _run(env, "keys", "create", "--partner", "cli-writer")
    assert reader.returncode == 0 and "read-only" in reader.stdout
    scopes = {}
    with engine.connect() as conn:
        for out in (writer, reader):
            key = out.stdout.strip().splitlines()[-1]
            scopes[key] = conn.execute(
                text("select scope from raw.api_keys where key_hash = :h"), {"h": hash_key(key)}
            ).scalar_one()
    assert sorted(scopes.values()) == ["read", "write"]
    customer = _run(env, "keys", "create", "--partner", "p", "--customer", "c", "--write")
    assert customer.returncode == 2 and "read-only" in customer.stderr
