"""`vbatt keys create` prints a key once and stores its hash; `vbatt serve --detach` leaves
the API running with a pid file and `vbatt serve --stop` ends it (what make demo uses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import text

from tests.api.conftest import SOLAR_METER, free_port
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
    # made, but the person is told the owner looks unknown (a typo gives a key seeing nothing)
    assert "partner 'cli-partner' has no battery and no partner file yet" in created.stderr

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


def test_write_api_in_the_served_process(api_warehouse, warehouse_url, tmp_path):
    """What `vbatt serve` runs (python -m vbatt.api), as its own process over the test
    warehouse: create 201, version 201, list, read-only 403, bad field 422, other 404."""
    import secrets
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTME_")}
    port = free_port()
    log = (tmp_path / "api.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vbatt.api", "--port", str(port), "--warehouse-url", warehouse_url]
        + ["--marts-schema", api_warehouse.marts, "--raw-schema", api_warehouse.raw],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{url}/api/Health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        writer = {"Authorization": f"ApiKey {api_warehouse.keys['solar-write']}"}
        reader = {"Authorization": f"ApiKey {api_warehouse.keys['ewa']}"}
        bid = f"srv-{secrets.token_hex(3)}"
        body = {
            "battery_id": bid,
            "name": "Served",
            "customer_id": "k-1",
            "meter_id": SOLAR_METER,
            "capacity_kwh": 5,
            "start_date": "2030-01-01",
        }
        with httpx.Client(base_url=url, timeout=30) as c:
            assert c.post("/v1/batteries", json=body, headers=writer).status_code == 201
            version = {"valid_from": "2030-02-01", "capacity_kwh": 0}
            assert (
                c.post(f"/v1/batteries/{bid}/versions", json=version, headers=writer).status_code
                == 201
            )
            items = c.get(f"/v1/batteries/{bid}/versions", headers=writer).json()["items"]
            assert [v["capacity_kwh"] for v in items] == [5.0, 0.0]
            ro = c.post("/v1/batteries/b-ewa-1/versions", json=version, headers=reader)
            assert ro.status_code == 403
            bad = c.post("/v1/batteries", json=body | {"capacity_kwh": -2}, headers=writer)
            assert bad.status_code == 422 and list(bad.json()["errors"]) == ["capacity_kwh"]
            other = c.post(f"/v1/batteries/{bid}/versions", json=version, headers=reader)
            assert other.status_code == 404
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
    assert (
        "does not check that house meters measure both directions"
        in (tmp_path / "api.log").read_text()
    )


def test_keys_for_a_known_partner_carry_no_note(warehouse_url, engine, tmp_path):
    partners = tmp_path / "partners"
    partners.mkdir()
    (partners / "cli-known.yaml").write_text("partner_id: cli-known\n")
    env = os.environ | {"WAREHOUSE_URL": warehouse_url, "VBATT_PARTNERS_DIR": str(partners)}
    known = _run(env, "keys", "create", "--partner", "cli-known")
    assert known.returncode == 0 and "note:" not in known.stderr, known.stderr
    customer = _run(env, "keys", "create", "--partner", "cli-known", "--customer", "nobody")
    assert customer.returncode == 0
    assert "customer 'nobody' has no battery of partner 'cli-known' yet" in customer.stderr
